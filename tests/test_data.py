"""Tests of the drum process, setup_data.py and the two dataset loaders."""
import hashlib
import json
import re
import shutil
import string
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage, stats

import setup_data
from problem1.dataset import FontDataset
from problem2.dataset import DrumPatternDataset
from provided import drum_process

STYLES = ["regular", "bold", "italic", "narrow", "wide", "serif", "sans", "mono", "script", "display"]
INK_THRESHOLD = 0.5  # a pixel with ink coverage above this (gray value below 128) counts as ink


def file_hashes(root: Path) -> dict[str, str]:
    """Return relative path -> SHA-256 of every file under ``root``."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def rerun_dirs(tmp_path_factory):
    """Seed 641 written a second time (one --only run per dataset, same folder) and seed 642 once."""
    same = tmp_path_factory.mktemp("seed641")
    setup_data.main(["--seed", "641", "--output-dir", str(same), "--only", "fonts"])
    setup_data.main(["--seed", "641", "--output-dir", str(same), "--only", "drums"])
    other = tmp_path_factory.mktemp("seed642")
    setup_data.main(["--seed", "642", "--output-dir", str(other)])
    yield {"same": same, "other": other}
    # 13,000 files: remove them now rather than leave them to pytest's cleanup of old temp folders.
    shutil.rmtree(same)
    shutil.rmtree(other)


@pytest.fixture(scope="module")
def font_train(font_dir) -> FontDataset:
    return FontDataset(font_dir, "train")


@pytest.fixture(scope="module")
def font_val(font_dir) -> FontDataset:
    return FontDataset(font_dir, "val")


# --- drum_process -------------------------------------------------------------------------

def test_hit_table_values():
    p = drum_process.style_hit_probabilities()
    kick, snare, hihat, tom_low, ride, clap = (drum_process.INSTRUMENTS.index(name) for name in
                                               ("kick", "snare", "hihat_closed", "tom_low", "ride", "clap"))
    rock, jazz, hiphop, electronic, latin = range(5)
    assert p.shape == (5, 16, 9)
    assert p[rock, 0, kick] == 1.0
    assert p[rock, 2, kick] == 0.7
    assert p[rock, 8, snare] == 1.0
    assert p[jazz, 8, snare] == 0.0
    assert p[jazz, 10, kick] == 0.6
    assert p[jazz, 9, ride] == 1.0
    assert p[hiphop, 6, hihat] == 0.8
    assert p[hiphop, 7, clap] == 0.4
    assert p[electronic, 2, hihat] == 1.0
    assert p[electronic, 0, hihat] == 0.0
    assert p[latin, 11, tom_low] == 0.6


def test_hit_table_counts():
    p = drum_process.style_hit_probabilities()
    # Listed hits per style: rock 4+4+3+8+1, jazz 1+1+2+6, hiphop 2+2+8+1, electronic 4+2+4+2, latin 5+2+8+5.
    assert (p > 0).sum(axis=(1, 2)).tolist() == [20, 10, 13, 12, 20]
    assert (p == 1).sum(axis=(1, 2)).tolist() == [15, 9, 4, 10, 15]


def test_cell_probabilities_formula():
    q = drum_process.cell_hit_probabilities()
    p = drum_process.style_hit_probabilities()
    assert np.allclose(q[p == 1.0], 0.95)
    assert np.allclose(q[p == 0.0], 0.05)
    assert np.allclose(q[p == 0.7], 0.7 * 0.95 + 0.3 * 0.05)
    assert np.allclose(drum_process.cell_hit_probabilities(noise=0.0), p)


def test_sample_patterns_without_noise():
    p = drum_process.style_hit_probabilities()
    styles = np.repeat(np.arange(5), 50)
    patterns = drum_process.sample_patterns(styles, np.random.default_rng(0), noise=0.0)
    assert patterns.dtype == np.uint8
    assert patterns.shape == (250, 16, 9)
    assert np.all(patterns[p[styles] == 1.0] == 1)
    assert np.all(patterns[p[styles] == 0.0] == 0)


def test_sample_patterns_silent_gets_kick(monkeypatch):
    monkeypatch.setattr(drum_process, "style_hit_probabilities", lambda: np.zeros((5, 16, 9)))
    patterns = drum_process.sample_patterns(np.zeros(3, dtype=int), np.random.default_rng(0), noise=0.0)
    expected = np.zeros((16, 9), dtype=np.uint8)
    expected[0, 0] = 1
    assert all(np.array_equal(pattern, expected) for pattern in patterns)


def test_sample_patterns_invalid_style():
    with pytest.raises(ValueError, match="0-4"):
        drum_process.sample_patterns(np.array([0, 5]), np.random.default_rng(0))


# --- letter dataset on disk ---------------------------------------------------------------

def test_font_metadata_keys(font_dir):
    metadata = json.loads((font_dir / "metadata.json").read_text())
    assert metadata["letters"] == list(string.ascii_uppercase)
    assert metadata["font_styles"] == STYLES
    assert metadata["image_size"] == 28
    assert metadata["seed"] == 641
    assert sorted(metadata["style_fonts"]) == sorted(STYLES)
    for entry in metadata["train_samples"] + metadata["val_samples"]:
        assert sorted(entry) == ["filename", "font_style", "letter", "letter_idx"]


def test_font_counts_and_names(font_dir):
    metadata = json.loads((font_dir / "metadata.json").read_text())
    for split, per_letter in (("train", 200), ("val", 60)):
        entries = metadata[f"{split}_samples"]
        assert len(entries) == 26 * per_letter
        assert sorted(path.name for path in (font_dir / split).iterdir()) == sorted(e["filename"] for e in entries)
        for letter_idx, letter in enumerate(string.ascii_uppercase):
            of_letter = [e for e in entries if e["letter_idx"] == letter_idx]
            expected = [f"{letter}_{e['font_style']}_{index:04d}.png" for index, e in enumerate(of_letter)]
            assert [e["filename"] for e in of_letter] == expected
            assert all(e["letter"] == letter for e in of_letter)


def test_font_styles_uniform(font_dir):
    metadata = json.loads((font_dir / "metadata.json").read_text())
    counts = [sum(e["font_style"] == style for e in metadata["train_samples"]) for style in STYLES]
    assert stats.chisquare(counts).pvalue > 1e-3


def test_font_png_format(font_dir):
    for path in sorted((font_dir / "val").iterdir())[:20]:
        with Image.open(path) as image:
            assert image.mode == "L"
            assert image.size == (28, 28)


def test_glyphs_not_blank_or_clipped(font_train, font_val):
    for dataset in (font_train, font_val):
        ink = 1.0 - dataset.images[:, 0].numpy()
        mask = ink > INK_THRESHOLD
        border = np.concatenate([mask[:, 0, :], mask[:, -1, :], mask[:, :, 0], mask[:, :, -1]], axis=1)
        assert not border.any()
        assert mask.any(axis=(1, 2)).all()
        heights = np.array([np.ptp(np.flatnonzero(image_rows)) + 1 for image_rows in mask.any(axis=2)])
        assert heights.min() >= 16
        assert 19 <= heights.mean() <= 23
        assert ink.max(axis=(1, 2)).min() > 0.9  # every image has fully dark pixels


def test_background_white_with_light_noise(font_train):
    pixels = font_train.images.numpy()
    assert np.median(pixels) > 0.95
    assert (pixels > 0.5).mean() > 0.6  # most of the canvas is paper


def centred_ink(dataset: FontDataset) -> np.ndarray:
    """Return ink maps [N, 28, 28] shifted so that each ink centroid sits at the image centre."""
    ink = 1.0 - dataset.images[:, 0].numpy().astype(np.float64)
    centred = np.empty_like(ink)
    for index, image in enumerate(ink):
        cy, cx = ndimage.center_of_mass(image)
        centred[index] = ndimage.shift(image, (13.5 - cy, 13.5 - cx), order=1)
    return centred


def test_styles_distinguishable(font_train, font_val):
    # Nearest-centroid style classifier given the letter: train centroids per
    # (letter, style), classify val. Chance is 10%, and jitter alone would keep it there.
    train_ink, val_ink = centred_ink(font_train), centred_ink(font_val)
    train_style = np.array([STYLES.index(name) for name in font_train.style_names])
    val_style = np.array([STYLES.index(name) for name in font_val.style_names])
    train_letter, val_letter = font_train.labels.numpy(), font_val.labels.numpy()

    centroids = np.zeros((26, 10, 28, 28))
    for letter in range(26):
        for style in range(10):
            centroids[letter, style] = train_ink[(train_letter == letter) & (train_style == style)].mean(axis=0)
    distances = np.abs(val_ink[:, None] - centroids[val_letter]).mean(axis=(2, 3))
    predicted = distances.argmin(axis=1)

    assert (predicted == val_style).mean() > 0.85
    for style in range(10):
        assert (predicted[val_style == style] == style).mean() > 0.6, STYLES[style]


def test_style_figure(tmp_path):
    path = tmp_path / "styles.png"
    setup_data.main(["--figure", str(path)])
    with Image.open(path) as image:
        width, height = image.size
    assert path.stat().st_size < 200_000
    assert height == 20 + 10 * 56
    assert width > 26 * 56


# --- drum dataset on disk -----------------------------------------------------------------

def test_drum_npz_contents(drum_dir):
    with np.load(drum_dir / "patterns.npz") as archive:
        assert archive["train_patterns"].shape == (800, 16, 9)
        assert archive["val_patterns"].shape == (200, 16, 9)
        styles = np.concatenate([archive["train_styles"], archive["val_styles"]])
        assert np.bincount(styles).tolist() == [200] * 5
        indices = np.concatenate([archive["train_pattern_idx"], archive["val_pattern_idx"]])
        assert sorted(indices.tolist()) == list(range(1000))
        assert np.array_equal(archive["cell_probabilities"], drum_process.cell_hit_probabilities())
        assert float(archive["noise_probability"]) == 0.05
        assert int(archive["seed"]) == 641


def test_drum_json_matches_npz(drum_dir):
    document = json.loads((drum_dir / "patterns.json").read_text())
    assert document["instruments"] == list(drum_process.INSTRUMENTS)
    assert document["styles"] == ["rock", "jazz", "hiphop", "electronic", "latin"]
    assert document["timesteps"] == 16
    assert document["noise_probability"] == 0.05
    assert document["seed"] == 641
    assert np.array_equal(np.array(document["cell_probabilities"]), drum_process.cell_hit_probabilities())
    with np.load(drum_dir / "patterns.npz") as archive:
        for split in ("train", "val"):
            entries = document[f"{split}_patterns"]
            patterns = np.array([entry["pattern"] for entry in entries])
            assert np.array_equal(patterns, archive[f"{split}_patterns"])
            assert [entry["style_idx"] for entry in entries] == archive[f"{split}_styles"].tolist()
            assert [entry["pattern_idx"] for entry in entries] == archive[f"{split}_pattern_idx"].tolist()
            assert all(entry["style"] == document["styles"][entry["style_idx"]] for entry in entries)
            assert np.allclose([entry["density"] for entry in entries], patterns.mean(axis=(1, 2)))


def test_drum_frequencies_match_probabilities(drum_dir):
    # Per style, the 144 cell counts are independent binomials, so the summed
    # squared z-scores follow a chi-square law with 144 degrees of freedom.
    with np.load(drum_dir / "patterns.npz") as archive:
        patterns = np.concatenate([archive["train_patterns"], archive["val_patterns"]])
        styles = np.concatenate([archive["train_styles"], archive["val_styles"]])
        q = archive["cell_probabilities"]
    bound = stats.chi2.ppf(0.999, df=144)
    for style in range(5):
        of_style = patterns[styles == style]
        counts = of_style.sum(axis=0)
        n = len(of_style)
        statistic = ((counts - n * q[style]) ** 2 / (n * q[style] * (1 - q[style]))).sum()
        assert statistic < bound, drum_process.STYLES[style]


# --- determinism and atomic writes --------------------------------------------------------

def test_same_seed_identical_bytes(data_dir, rerun_dirs):
    hashes = file_hashes(rerun_dirs["same"])
    assert len(hashes) == 5200 + 1560 + 1 + 2
    # Compare only the generated files: other tools may cache files of their own next to the data.
    cached = file_hashes(data_dir)
    cached_generated = {name: cached.get(name) for name in hashes}
    stale_hint = "tests/.cache may contain data from an older setup_data.py: delete it and rerun"
    assert cached_generated == hashes, stale_hint


def test_other_seed_differs(data_dir, rerun_dirs):
    first, second = file_hashes(data_dir), file_hashes(rerun_dirs["other"])
    for name in ("fonts/metadata.json", "drums/patterns.npz", "drums/patterns.json"):
        assert first[name] != second[name], name
    first_images = FontDataset(data_dir / "fonts", "val").images.numpy()
    second_images = FontDataset(rerun_dirs["other"] / "fonts", "val").images.numpy()
    assert np.abs(first_images - second_images).mean() > 0.05


def test_only_writes_one_dataset(tmp_path):
    setup_data.main(["--seed", "5", "--output-dir", str(tmp_path), "--only", "drums"])
    assert sorted(path.name for path in tmp_path.iterdir()) == ["drums"]


def test_interrupted_write_keeps_old_data(tmp_path):
    target = tmp_path / "drums"
    setup_data.main(["--seed", "5", "--output-dir", str(tmp_path), "--only", "drums"])
    before = file_hashes(target)

    def failing_write(folder, seed):
        (folder / "patterns.json").write_text("{")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        setup_data.write_dataset_atomically(target, failing_write, 5)
    assert file_hashes(target) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["drums"]


def test_interrupted_first_write_leaves_nothing(tmp_path):
    def failing_write(folder, seed):
        (folder / "metadata.json").write_text("{}")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        setup_data.write_dataset_atomically(tmp_path / "fonts", failing_write, 5)
    assert list(tmp_path.iterdir()) == []


# --- loaders on generated data ------------------------------------------------------------

def test_font_loader_shapes(font_train, font_val):
    assert font_train.images.shape == (5200, 1, 28, 28)
    assert font_val.images.shape == (1560, 1, 28, 28)
    assert str(font_train.images.dtype) == "torch.float32"
    assert str(font_train.labels.dtype) == "torch.int64"
    assert float(font_train.images.min()) >= 0.0
    assert float(font_train.images.max()) <= 1.0
    assert np.bincount(font_train.labels.numpy()).tolist() == [200] * 26


def test_font_loader_item(font_train):
    image, letter_idx = font_train[201]
    assert tuple(image.shape) == (1, 28, 28)
    assert letter_idx == 1
    assert isinstance(letter_idx, int)
    assert font_train.style_names[201] == re.match(r"B_(\w+)_0001\.png", font_train.filenames[201]).group(1)
    assert font_train.letters == list(string.ascii_uppercase)
    assert font_train.font_styles == STYLES


def test_drum_loader(drum_dir):
    train = DrumPatternDataset(drum_dir, "train")
    val = DrumPatternDataset(drum_dir, "val")
    assert tuple(train.patterns.shape) == (800, 16, 9)
    assert len(val) == 200
    pattern, style, density = train[3]
    assert tuple(pattern.shape) == (16, 9)
    assert isinstance(style, int)
    assert density == pytest.approx(float(pattern.mean()))
    assert train.instruments == list(drum_process.INSTRUMENTS)
    assert train.style_names == list(drum_process.STYLES)
    assert np.array_equal(train.cell_probabilities, drum_process.cell_hit_probabilities())


def test_drum_loader_json_only(drum_dir, tmp_path):
    shutil.copy(drum_dir / "patterns.json", tmp_path / "patterns.json")
    from_json = DrumPatternDataset(tmp_path, "val")
    from_npz = DrumPatternDataset(drum_dir, "val")
    assert from_json.source.name == "patterns.json"
    assert np.array_equal(from_json.patterns.numpy(), from_npz.patterns.numpy())
    assert np.array_equal(from_json.styles.numpy(), from_npz.styles.numpy())
    assert np.allclose(from_json.cell_probabilities, from_npz.cell_probabilities)


# --- loaders on the course starter's files ------------------------------------------------

def test_course_fonts_load(course_data_dir):
    train = FontDataset(course_data_dir / "fonts", "train")
    val = FontDataset(course_data_dir / "fonts", "val")
    assert tuple(train.images.shape) == (52, 1, 28, 28)
    assert len(val) == 52
    assert np.bincount(train.labels.numpy()).tolist() == [2] * 26
    assert train.style_names[0] == "script"


def test_course_drums_load(course_data_dir, tmp_path):
    train = DrumPatternDataset(course_data_dir / "drums", "train")
    assert tuple(train.patterns.shape) == (800, 16, 9)
    assert train.cell_probabilities is None
    shutil.copy(course_data_dir / "drums" / "patterns.json", tmp_path / "patterns.json")
    from_json = DrumPatternDataset(tmp_path, "train")
    assert len(from_json) == 40
    assert from_json.cell_probabilities is None


# --- loaders on bad input -----------------------------------------------------------------

@pytest.fixture
def font_copy(course_data_dir, tmp_path) -> Path:
    return Path(shutil.copytree(course_data_dir / "fonts", tmp_path / "fonts"))


@pytest.fixture
def drum_copy(course_data_dir, tmp_path) -> Path:
    return Path(shutil.copytree(course_data_dir / "drums", tmp_path / "drums"))


def test_font_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="python setup_data.py --seed 641"):
        FontDataset(tmp_path / "absent", "train")


def test_font_missing_metadata(font_copy):
    (font_copy / "metadata.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"metadata\.json not found: run python setup_data\.py --seed 641"):
        FontDataset(font_copy, "train")


def test_font_missing_image(font_copy):
    (font_copy / "val" / "A_serif_0000.png").unlink()
    with pytest.raises(FileNotFoundError, match="A_serif_0000.png"):
        FontDataset(font_copy, "val")


def test_font_unknown_split(font_copy):
    with pytest.raises(ValueError, match="unknown split 'test'"):
        FontDataset(font_copy, "test")


@pytest.mark.parametrize("text", ["{not json", "[]", '{"letters": ["A"]}'])
def test_font_malformed_metadata(font_copy, text):
    (font_copy / "metadata.json").write_text(text)
    with pytest.raises(ValueError, match="metadata.json"):
        FontDataset(font_copy, "train")


def test_font_bad_letter_idx(font_copy):
    metadata = json.loads((font_copy / "metadata.json").read_text())
    metadata["train_samples"][0]["letter_idx"] = 26
    (font_copy / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match="letter_idx 26"):
        FontDataset(font_copy, "train")


def test_font_wrong_image_size(font_copy):
    Image.new("L", (32, 32), 255).save(font_copy / "train" / "A_script_0000.png")
    with pytest.raises(ValueError, match=r"A_script_0000\.png is 32x32 pixels, expected 28x28"):
        FontDataset(font_copy, "train")


def test_font_unreadable_image(font_copy):
    (font_copy / "train" / "A_script_0000.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="A_script_0000.png"):
        FontDataset(font_copy, "train")


def test_drum_missing_files(drum_copy):
    (drum_copy / "patterns.npz").unlink()
    (drum_copy / "patterns.json").unlink()
    with pytest.raises(FileNotFoundError, match="python setup_data.py --seed 641"):
        DrumPatternDataset(drum_copy, "train")


def test_loaders_hint_dataset_folder(data_dir):
    with pytest.raises(FileNotFoundError, match="pass the fonts folder itself"):
        FontDataset(data_dir, "train")
    with pytest.raises(FileNotFoundError, match="pass the drums folder itself"):
        DrumPatternDataset(data_dir, "train")


def test_drum_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="python setup_data.py --seed 641"):
        DrumPatternDataset(tmp_path / "absent", "train")


def test_drum_unknown_split(drum_copy):
    with pytest.raises(ValueError, match="unknown split 'validation'"):
        DrumPatternDataset(drum_copy, "validation")


def test_drum_npz_wrong_shape(drum_copy):
    np.savez(drum_copy / "patterns.npz", train_patterns=np.zeros((4, 16, 8)), train_styles=np.zeros(4, dtype=int),
             val_patterns=np.zeros((4, 16, 9)), val_styles=np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match=r"patterns\.npz: train patterns have shape \(4, 16, 8\)"):
        DrumPatternDataset(drum_copy, "train")


def test_drum_npz_missing_array(drum_copy):
    np.savez(drum_copy / "patterns.npz", train_patterns=np.zeros((4, 16, 9)))
    with pytest.raises(ValueError, match="missing array 'train_styles'"):
        DrumPatternDataset(drum_copy, "train")


def test_drum_npz_not_binary(drum_copy):
    np.savez(drum_copy / "patterns.npz", train_patterns=np.full((4, 16, 9), 2), train_styles=np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="values other than 0 and 1"):
        DrumPatternDataset(drum_copy, "train")


def test_drum_npz_bad_style(drum_copy):
    np.savez(drum_copy / "patterns.npz", train_patterns=np.zeros((4, 16, 9)), train_styles=np.array([0, 1, 2, 5]))
    with pytest.raises(ValueError, match="style labels span 0-5"):
        DrumPatternDataset(drum_copy, "train")


def test_drum_npz_corrupt(drum_copy):
    (drum_copy / "patterns.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="patterns.npz"):
        DrumPatternDataset(drum_copy, "train")


def test_drum_json_wrong_shape(drum_copy):
    (drum_copy / "patterns.npz").unlink()
    document = json.loads((drum_copy / "patterns.json").read_text())
    document["val_patterns"][2]["pattern"] = [[0] * 9] * 15
    (drum_copy / "patterns.json").write_text(json.dumps(document))
    with pytest.raises(ValueError, match=r"patterns\.json: val_patterns\[2\] pattern has shape \(15, 9\)"):
        DrumPatternDataset(drum_copy, "val")


def test_drum_json_malformed(drum_copy):
    (drum_copy / "patterns.npz").unlink()
    (drum_copy / "patterns.json").write_text('{"train_patterns": [')
    with pytest.raises(ValueError, match="malformed data file .*patterns.json"):
        DrumPatternDataset(drum_copy, "train")
