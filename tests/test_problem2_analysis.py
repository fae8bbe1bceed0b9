"""Latent analysis, creative experiments and the generate CLI, on hand-made values and a tiny trained VAE."""
import json
import wave

import mido
import numpy as np
import pytest
import torch

from problem2 import analyze_latent, creative, generate
from problem2.dataset import DrumPatternDataset
from problem2.training_utils import style_centroids
from provided.drum_oracle import DrumOracle
from provided.drum_process import STYLES



@pytest.fixture(scope="module")
def tiny_checkpoint(tiny_vae_run_dir):
    return tiny_vae_run_dir / "best_model.pth"


@pytest.fixture(scope="module")
def model(tiny_checkpoint):
    return generate.load_model(tiny_checkpoint)


@pytest.fixture(scope="module")
def train_data(drum_dir):
    return generate.load_patterns(drum_dir, "train")


@pytest.fixture(scope="module")
def small_data(train_data):
    """20 training patterns per style, so the slow steps (t-SNE, k-NN) stay fast."""
    patterns, styles = train_data
    chosen = torch.cat([(styles == s).nonzero().flatten()[:20] for s in range(len(STYLES))])
    return patterns[chosen], styles[chosen]


@pytest.fixture(scope="module")
def oracle(drum_dir):
    return DrumOracle.from_data_dir(drum_dir)


@pytest.fixture(scope="module")
def centroids(model, train_data):
    return style_centroids(model, *train_data).numpy()


def assert_figures_written(result, names):
    assert sorted(result["figures"]) == sorted(names)
    for path in result["figures"].values():
        with open(path, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


# --- statistics on hand-made codes ---------------------------------------------------------

def test_variance_decomposition_hand_computed():
    codes = np.array([[0.0], [2.0], [10.0], [12.0]])
    stats = analyze_latent.style_variance_decomposition(codes, [0, 0, 1, 1])
    # Class means 1 and 11 lie 5 from the overall mean 6, so between = 25. Each class has variance 1.
    assert stats["between_style_variance"] == pytest.approx(25.0)
    assert stats["within_style_variance"] == pytest.approx(1.0)
    assert stats["variance_ratio"] == pytest.approx(25.0)
    assert stats["style_variance_fraction"] == pytest.approx(25.0 / 26.0)


def test_variance_decomposition_sums_to_total():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(60, 3))
    labels = rng.integers(0, 5, 60)
    stats = analyze_latent.style_variance_decomposition(codes, labels)
    total = stats["between_style_variance"] + stats["within_style_variance"]
    assert total == pytest.approx(codes.var(axis=0).sum())


def test_knn_separated_clusters_perfect():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(5), 10)
    codes = labels[:, None] * 100.0 + rng.normal(size=(50, 2))
    assert analyze_latent.knn_style_accuracy(codes, labels) == 1.0


def test_knn_random_codes_near_chance():
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(5), 60)
    accuracy = analyze_latent.knn_style_accuracy(rng.normal(size=(300, 4)), labels)
    assert 0.08 < accuracy < 0.35


def test_knn_rejects_single_member_style():
    with pytest.raises(ValueError, match="at least 2"):
        analyze_latent.knn_style_accuracy(np.zeros((5, 2)), [0, 0, 1, 1, 2])


def test_linear_interpolation_midpoint():
    path = analyze_latent.interpolate_vectors([0.0, 2.0], [4.0, 6.0], [0.0, 0.5, 1.0], "linear")
    assert torch.allclose(path, torch.tensor([[0.0, 2.0], [2.0, 4.0], [4.0, 6.0]]))


def test_spherical_interpolation_stays_on_circle():
    path = analyze_latent.interpolate_vectors([1.0, 0.0], [0.0, 1.0], [0.0, 0.5, 1.0], "spherical")
    half = 2 ** -0.5
    assert torch.allclose(path, torch.tensor([[1.0, 0.0], [half, half], [0.0, 1.0]]), atol=1e-6)


def test_spherical_parallel_falls_back_to_linear():
    path = analyze_latent.interpolate_vectors([1.0, 0.0], [3.0, 0.0], [0.5], "spherical")
    assert torch.allclose(path, torch.tensor([[2.0, 0.0]]))


def test_crossover_interpolates_sign_change():
    # -0.4 at 0.5 and +0.2 at 1.0: zero two thirds of the way, at 0.5 + 0.5 * 2/3
    assert creative._crossover([0.0, 0.5, 1.0], [-1.0, -0.4, 0.2]) == pytest.approx(0.5 + 1 / 3)
    assert creative._crossover([0.0, 1.0], [-1.0, -0.5]) is None
    assert creative._crossover([0.0, 0.5, 1.0], [0.1, -0.2, 0.3]) == 0.0


def test_parse_blend_normalises_weights():
    weights = generate.parse_blend("rock:1,jazz:3")
    assert np.allclose(weights, [0.25, 0.75, 0.0, 0.0, 0.0])


@pytest.mark.parametrize("text, message", [
    ("funk:1", "choose one of rock, jazz, hiphop, electronic, latin"),
    ("rock", "style:weight"),
    ("rock:-1", "number >= 0"),
    ("rock:0,jazz:0", "sum to 0"),
])
def test_parse_blend_rejects_bad_input(text, message):
    with pytest.raises(ValueError, match=message):
        generate.parse_blend(text)


def test_oracle_styles_marks_silent_pattern():
    patterns = np.zeros((2, 16, 9), dtype=np.uint8)
    patterns[1, [0, 4, 8, 12], 0] = 1
    patterns[1, [4, 12], 1] = 1
    patterns[1, 0:16:2, 2] = 1
    posterior, predicted = generate.oracle_styles(DrumOracle.from_generative_process(), patterns)
    assert predicted[0] == -1
    assert posterior[0].sum() == 0.0
    assert predicted[1] == STYLES.index("rock")


def test_json_ready_drops_arrays():
    ready = analyze_latent.json_ready({"a": np.float32(1.5), "b": np.zeros(3), "c": [np.int64(2)]})
    assert ready == {"a": 1.5, "c": [2]}


# --- generation helpers on the tiny model --------------------------------------------------

def test_decode_threshold_matches_probabilities(model):
    z_high = torch.zeros(3, model.z_high_dim)
    z_low = torch.randn(3, model.z_low_dim, generator=torch.Generator().manual_seed(0))
    patterns, probabilities = generate.decode_patterns(model, z_high, z_low)
    assert patterns.shape == (3, 16, 9)
    assert np.array_equal(patterns, (probabilities > 0.5).astype(np.uint8))


def test_generate_from_weights_is_seeded(model, centroids):
    weights = np.eye(5)[0]
    first, _ = generate.generate_from_weights(model, centroids, weights, 4, mode="sample", seed=3)
    second, _ = generate.generate_from_weights(model, centroids, weights, 4, mode="sample", seed=3)
    assert np.array_equal(first, second)


def test_collect_patterns_from_loader(drum_dir):
    dataset = DrumPatternDataset(drum_dir, "val")
    loader = torch.utils.data.DataLoader(dataset, batch_size=64)
    patterns, styles = generate.collect_patterns(loader)
    assert torch.equal(patterns, dataset.patterns)
    assert torch.equal(styles, dataset.styles)


# --- analysis functions on the tiny model ---------------------------------------------------

def test_visualize_latent_hierarchy_outputs(model, small_data, tmp_path):
    result = analyze_latent.visualize_latent_hierarchy(model, small_data, out_dir=tmp_path, n_variations=3,
                                                       max_points=60)
    for key in ("silhouette_z_high", "silhouette_z_low", "silhouette_tsne_z_high", "silhouette_tsne_z_low"):
        assert -1.0 <= result[key] <= 1.0
    assert result["n_points"] == 60
    assert_figures_written(result, ["tsne", "style_rows"])


def test_interpolate_styles_outputs(model, small_data, oracle, tmp_path):
    patterns, styles = small_data
    rock = analyze_latent.first_pattern_of(small_data, "rock")
    jazz = analyze_latent.first_pattern_of(small_data, "jazz")
    result = analyze_latent.interpolate_styles(model, rock, jazz, n_steps=4, oracle=oracle, out_dir=tmp_path)
    assert result["alphas"] == [0.0, 1 / 3, 2 / 3, 1.0]
    assert (result["source_style"], result["target_style"]) == ("rock", "jazz")
    for method in ("linear", "spherical"):
        for path in ("z_high", "z_low", "both"):
            posterior = np.asarray(result["posterior"][method][path])
            assert posterior.shape == (4, 5)
            assert len(result["target_posterior"][method][path]) == 4
    assert_figures_written(result, ["linear", "spherical", "posterior"])


def test_measure_disentanglement_outputs(model, small_data, tmp_path):
    result = analyze_latent.measure_disentanglement(model, small_data, out_dir=tmp_path)
    for level in ("z_high", "z_low", "z_low_residual"):
        assert 0.0 <= result[level]["knn_accuracy"] <= 1.0
        assert 0.0 <= result[level]["style_variance_fraction"] <= 1.0
    assert result["chance_accuracy"] == pytest.approx(0.2)
    with open(result["json_path"]) as handle:
        saved = json.load(handle)
    assert saved["z_high"] == result["z_high"]
    assert_figures_written(result, ["bars"])


def test_controllable_generation_outputs(model, small_data, oracle, tmp_path):
    result = analyze_latent.controllable_generation(
        model, ["rock", "latin"], data_loader=small_data, oracle=oracle, out_dir=tmp_path,
        n_per_style=3, n_eval=12, temperatures=(0.0, 1.0, 2.0))
    assert result["styles"] == ["rock", "latin"]
    assert sorted(result["oracle_accuracy"]) == ["latin", "rock"]
    assert len(result["expected_density"]["rock"]) == 3
    assert len(result["centroids"]["latin"]) == model.z_high_dim
    assert 0.0 <= result["oracle_accuracy_mean"] <= 1.0
    assert_figures_written(result, ["samples", "complexity"])


def test_controllable_generation_rejects_unknown_style(model, small_data):
    with pytest.raises(ValueError, match="choose one of"):
        analyze_latent.controllable_generation(model, ["polka"], data_loader=small_data)


def test_latent_traversal_outputs(model, small_data, oracle, tmp_path):
    result = analyze_latent.latent_traversal(model, small_data, level="z_low", dims=[0, 5], n_values=3,
                                             oracle=oracle, out_dir=tmp_path)
    assert result["dims"] == [0, 5]
    assert result["offsets"] == [-2.5, 0.0, 2.5]
    assert len(result["expected_density"]) == 2
    assert len(result["instrument_hits"][1]["kick"]) == 3
    assert_figures_written(result, ["grid", "curves"])


def test_latent_traversal_rejects_bad_dim(model, small_data):
    with pytest.raises(ValueError, match="invalid dims"):
        analyze_latent.latent_traversal(model, small_data, level="z_high", dims=[4])


# --- creative experiments on the tiny model -------------------------------------------------

def test_genre_blending_outputs(model, centroids, oracle, tmp_path):
    result = creative.genre_blending(model, "rock", "jazz", centroids, oracle=oracle, out_dir=tmp_path,
                                     n_steps=5, n_samples=8)
    assert result["alphas"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert len(result["posterior_b"]) == 5
    assert result["patterns"].shape == (5, 16, 9)
    assert result["crossover_alpha"] is None or 0.0 <= result["crossover_alpha"] <= 1.0
    assert_figures_written(result, ["blend"])


def test_style_transfer_outputs(model, small_data, centroids, oracle, tmp_path):
    sources = small_data[0][:3]
    result = creative.style_transfer(model, sources, "latin", centroids, oracle=oracle, out_dir=tmp_path)
    assert result["n_patterns"] == 3
    for method in ("swap", "residual"):
        assert 0.0 <= result[method]["target_accuracy"] <= 1.0
        assert result["patterns"][method].shape == (3, 16, 9)
    assert_figures_written(result, ["transfer"])


def test_humanize_zero_scale_keeps_pattern(model, small_data, oracle, tmp_path):
    result = creative.humanize_variations(model, small_data[0][0], scales=(0.0, 1.0), n_variations=3,
                                          oracle=oracle, out_dir=tmp_path)
    assert result["mean_cell_changes"][0] == 0.0
    assert result["patterns"].shape == (2, 3, 16, 9)
    assert_figures_written(result, ["variations"])


def test_long_sequence_outputs(model, centroids, oracle, tmp_path):
    result = creative.long_sequence(model, "electronic", centroids, n_bars=4, oracle=oracle, out_dir=tmp_path)
    assert result["sequence"].shape == (64, 9)
    assert len(result["bar_styles"]) == 4
    assert 0.0 <= result["style_consistency"] <= 1.0
    assert_figures_written(result, ["sequence"])


def test_long_sequence_sampled_bars_differ(model, centroids, oracle, tmp_path):
    result = creative.long_sequence(model, "rock", centroids, n_bars=3, decode="sample", oracle=oracle,
                                    out_dir=tmp_path)
    assert result["decode"] == "sample"
    assert result["mean_cell_changes_between_bars"] > 0


def test_long_sequence_rejects_bad_correlation(model, centroids):
    with pytest.raises(ValueError, match="correlation"):
        creative.long_sequence(model, "rock", centroids, correlation=1.0)


# --- command lines ---------------------------------------------------------------------------

def test_generate_cli_writes_files(tiny_checkpoint, drum_dir, tmp_path):
    outputs = generate.main(["--style", "jazz", "--n", "2", "--bpm", "100", "--loops", "2",
                             "--model", str(tiny_checkpoint), "--drum-dir", str(drum_dir),
                             "--out", str(tmp_path)])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "jazz_00.mid", "jazz_00.png", "jazz_00.wav", "jazz_01.mid", "jazz_01.png", "jazz_01.wav"]
    assert mido.MidiFile(outputs[0]["midi"]).length == pytest.approx(2 * 16 * 0.15)
    with wave.open(str(outputs[1]["wav"]), "rb") as handle:
        assert handle.getnframes() == round(4.8 * 44100) + 44100  # two bars at 100 BPM plus the 1 s tail


def test_generate_cli_blend_names_files(tiny_checkpoint, drum_dir, tmp_path):
    generate.main(["--blend", "rock:0.5,latin:0.5", "--n", "1", "--humanize", "--model", str(tiny_checkpoint),
                   "--drum-dir", str(drum_dir), "--out", str(tmp_path)])
    assert (tmp_path / "blend_rock50_latin50_00.wav").exists()


def test_generate_cli_rejects_unknown_style(tiny_checkpoint, capsys):
    with pytest.raises(SystemExit):
        generate.main(["--style", "polka", "--model", str(tiny_checkpoint)])
    assert "choose one of rock, jazz, hiphop, electronic, latin" in capsys.readouterr().err


@pytest.mark.parametrize("option, value", [("--loops", "0"), ("--bpm", "-5"), ("--n", "0")])
def test_generate_cli_rejects_bad_number(tiny_checkpoint, capsys, option, value):
    with pytest.raises(SystemExit):
        generate.main([option, value, "--model", str(tiny_checkpoint)])
    assert f"invalid {option}" in capsys.readouterr().err


def test_generate_cli_missing_model_names_command(tmp_path, capsys):
    with pytest.raises(SystemExit):
        generate.main(["--model", str(tmp_path / "none.pth")])
    assert "python problem2/train.py" in capsys.readouterr().err


def test_analyze_cli_missing_model_names_command(tmp_path, capsys):
    # A full command-line run takes about 30 s on a 2-core CPU, and the notebook test covers the same functions.
    with pytest.raises(SystemExit):
        analyze_latent.main(["--model", str(tmp_path / "none.pth")])
    assert "python problem2/train.py" in capsys.readouterr().err


def test_analyze_cli_rejects_unknown_style(tiny_checkpoint, capsys):
    with pytest.raises(SystemExit):
        analyze_latent.main(["--model", str(tiny_checkpoint), "--styles", "rock", "polka"])
    assert "choose one of" in capsys.readouterr().err
