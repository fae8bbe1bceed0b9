"""Generate the letter and drum datasets, deterministically for a seed.

    python setup_data.py --seed 641                  # both datasets into data/
    python setup_data.py --only fonts --output-dir /tmp/data
    python setup_data.py --figure docs/font_styles.png  # 10 styles x 26 letters sheet

Letters (``<output-dir>/fonts/``): 28x28 grayscale PNGs, dark glyph on white,
``train/`` 200 and ``val/`` 60 images per letter, each image's style drawn
uniformly from ``FONT_STYLES``, plus ``metadata.json``. Every style is rendered
from a TrueType font that ships with matplotlib, so no download is needed.

Drums (``<output-dir>/drums/``): 200 patterns per style from
``provided.drum_process``, shuffled and split 800 train / 200 val, written as
``patterns.json`` and ``patterns.npz`` together with the per-style cell hit
probabilities after noise.

Each dataset is written into a hidden temporary folder next to its target and
renamed into place only when complete, so an interrupted run never leaves a
partial ``fonts/`` or ``drums/`` folder behind.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import string
import tempfile
import time
import zipfile
from pathlib import Path

import matplotlib
import numpy as np
import PIL
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from provided import drum_process
from provided.paths import DEFAULT_DATA_DIR

DEFAULT_SEED = 641

LETTERS = tuple(string.ascii_uppercase)
IMAGE_SIZE = 28  # pixels, width and height
TRAIN_PER_LETTER = 200
VAL_PER_LETTER = 60

# Style name -> (TrueType file in matplotlib's mpl-data/fonts/ttf, horizontal scale).
# narrow and wide are horizontal rescales of the regular face.
FONT_STYLES = {
    "regular": ("DejaVuSans.ttf", 1.0),
    "bold": ("DejaVuSans-Bold.ttf", 1.0),
    "italic": ("DejaVuSans-Oblique.ttf", 1.0),
    "narrow": ("DejaVuSans.ttf", 0.6),
    "wide": ("DejaVuSans.ttf", 1.5),
    "serif": ("STIXGeneral.ttf", 1.0),
    "sans": ("cmss10.ttf", 1.0),
    "mono": ("cmtt10.ttf", 1.0),
    "script": ("cmti10.ttf", 1.0),
    "display": ("DejaVuSerif-Bold.ttf", 1.0),
}

# Glyph rendering and per-sample jitter. Lengths after RENDER_FONT_SIZE are pixels of the 28x28 image.
RENDER_FONT_SIZE = 96  # font size (px) of the cached glyphs, so a cap height near 70 px, over 3x the target
TARGET_HEIGHT = 21.0  # ink height of an unjittered glyph
SIZE_JITTER = 0.10  # ink height is TARGET_HEIGHT times a factor uniform in [0.9, 1.1]
MIN_HEIGHT = 18  # a glyph too wide for the canvas shrinks no lower than this, then is squeezed
MARGIN = 1  # rows and columns at each border that stay free of ink
MAX_ROTATION = 4.0  # degrees, uniform in [-4, 4]
MAX_SHIFT = 2  # pixels, integer uniform in [-2, 2] per axis, clamped to keep the glyph inside
PIXEL_NOISE_STD = 0.03  # Gaussian pixel noise, in units of the [0, 1] intensity range

DRUMS_PER_STYLE = 200
DRUM_TRAIN_COUNT = 800  # the other 200 shuffled patterns form the validation split

# Zip entries of patterns.npz get this fixed date, so the file bytes depend only on the data.
_ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)


# --- Fonts: high-resolution glyphs ---------------------------------------------------------

def font_directory() -> Path:
    """Return the folder of TrueType fonts that matplotlib ships."""
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def render_glyph(font: ImageFont.FreeTypeFont, letter: str) -> Image.Image:
    """Render ``letter`` as an ink mask ("L" image, 255 = ink, 0 = paper), cropped to its ink."""
    left, top, right, bottom = font.getbbox(letter)
    pad = RENDER_FONT_SIZE // 4  # room for ink that overhangs the reported box (italics)
    canvas = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    ImageDraw.Draw(canvas).text((pad - left, pad - top), letter, font=font, fill=255)
    ink_box = canvas.getbbox()
    if ink_box is None:
        return canvas.crop((0, 0, 0, 0))
    return canvas.crop(ink_box)


def load_style_glyphs(style: str) -> dict[str, Image.Image]:
    """Render the 26 high-resolution glyphs of one style, letter -> ink mask.

    Raises FileNotFoundError when the font file is missing and ValueError when
    the font has no real glyph for some letter (empty, or the same shape as
    another letter, which is what a font's missing-glyph box looks like).
    """
    file_name, width_scale = FONT_STYLES[style]
    path = font_directory() / file_name
    if not path.exists():
        raise FileNotFoundError(
            f"font file {path} for style {style!r} not found: reinstall matplotlib (pip install -r requirements.txt)"
        )
    font = ImageFont.truetype(str(path), RENDER_FONT_SIZE)

    glyphs = {}
    for letter in LETTERS:
        glyph = render_glyph(font, letter)
        if glyph.width == 0 or glyph.height == 0:
            raise ValueError(f"font {file_name} (style {style!r}) has no glyph for {letter!r}")
        if width_scale != 1.0:
            new_width = max(1, round(glyph.width * width_scale))
            glyph = glyph.resize((new_width, glyph.height), Image.Resampling.LANCZOS)
        glyphs[letter] = glyph

    fingerprints = {}
    for letter, glyph in glyphs.items():
        key = (glyph.size, glyph.tobytes())
        if key in fingerprints:
            raise ValueError(
                f"font {file_name} (style {style!r}) draws {letter!r} and {fingerprints[key]!r} identically: "
                "it lacks real glyphs for them"
            )
        fingerprints[key] = letter
    return glyphs


def load_all_glyphs() -> dict[str, dict[str, Image.Image]]:
    """Render the 260 high-resolution glyphs once, style -> letter -> ink mask."""
    return {style: load_style_glyphs(style) for style in FONT_STYLES}


# --- Fonts: one 28x28 sample ---------------------------------------------------------------

def fit_size(width: int, height: int, target_height: float) -> tuple[int, int]:
    """Return the (width, height) in pixels that a ``width`` x ``height`` glyph is resized to.

    The glyph is scaled uniformly to ``target_height``. When it is then wider
    than the canvas allows, it shrinks uniformly down to ``MIN_HEIGHT`` at most
    and any excess width is squeezed horizontally.
    """
    max_extent = IMAGE_SIZE - 2 * MARGIN
    scale = target_height / height
    if width * scale > max_extent:
        scale = max(max_extent / width, MIN_HEIGHT / height)
    new_width = min(max_extent, max(1, round(width * scale)))
    new_height = min(max_extent, max(1, round(height * scale)))
    return new_width, new_height


def compose_glyph(glyph: Image.Image, angle: float, target_height: float, shift: tuple[int, int]) -> np.ndarray:
    """Place a high-resolution glyph on the canvas, returning ink coverage float64 [28, 28] in [0, 1].

    ``angle`` is a counter-clockwise rotation in degrees. ``shift`` is the
    (dx, dy) offset in pixels from the centred position. It is clamped so that
    the glyph stays inside the ``MARGIN``-pixel border.
    """
    # Rotate the ink mask, not the final image: the corners the rotation
    # uncovers are filled with 0 (no ink), so they stay white in the output.
    rotated = glyph.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=0)
    ink_box = rotated.getbbox()
    if ink_box is not None:
        rotated = rotated.crop(ink_box)

    width, height = fit_size(rotated.width, rotated.height, target_height)
    small = rotated.resize((width, height), Image.Resampling.LANCZOS)

    dx, dy = shift
    x0 = int(np.clip((IMAGE_SIZE - width) // 2 + dx, MARGIN, IMAGE_SIZE - MARGIN - width))
    y0 = int(np.clip((IMAGE_SIZE - height) // 2 + dy, MARGIN, IMAGE_SIZE - MARGIN - height))
    ink = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float64)
    ink[y0:y0 + height, x0:x0 + width] = np.asarray(small, dtype=np.float64) / 255.0
    return ink


def ink_to_image(ink: np.ndarray) -> np.ndarray:
    """Convert ink coverage in [0, 1] to a uint8 image, dark glyph (0) on white (255)."""
    return np.round(np.clip(1.0 - ink, 0.0, 1.0) * 255.0).astype(np.uint8)


def render_sample(glyph: Image.Image, rng: np.random.Generator) -> np.ndarray:
    """Render one jittered 28x28 sample of ``glyph``, uint8, dark on white."""
    target_height = TARGET_HEIGHT * rng.uniform(1.0 - SIZE_JITTER, 1.0 + SIZE_JITTER)
    angle = rng.uniform(-MAX_ROTATION, MAX_ROTATION)
    dx, dy = rng.integers(-MAX_SHIFT, MAX_SHIFT + 1, size=2)
    ink = compose_glyph(glyph, angle, target_height, (int(dx), int(dy)))
    noise = rng.normal(0.0, PIXEL_NOISE_STD, size=ink.shape)
    return ink_to_image(ink - noise)


# --- File formats ------------------------------------------------------------------------

def write_json(document, path: Path, indent: int | None) -> None:
    """Write ``document`` as UTF-8 JSON (not atomic by itself: the staging folder makes the dataset atomic)."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=indent)
        handle.write("\n")


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed .npz readable by numpy.load, with fixed zip timestamps.

    numpy.savez stamps each zip entry with the current time, so two runs would
    differ in bytes. This writes the same .npy entries with a fixed date.
    """
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE_TIME)
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue())


# --- Fonts: the dataset --------------------------------------------------------------------

def write_font_split(folder: Path, split: str, per_letter: int, glyphs, rng: np.random.Generator) -> list[dict]:
    """Write ``per_letter`` images of every letter into ``folder/split`` and return their metadata entries."""
    split_dir = folder / split
    split_dir.mkdir()
    styles = list(FONT_STYLES)
    entries = []
    with tqdm(total=per_letter * len(LETTERS), desc=f"fonts {split}", unit="img") as progress:
        for letter_idx, letter in enumerate(LETTERS):
            for index in range(per_letter):
                style = styles[int(rng.integers(len(styles)))]
                image = render_sample(glyphs[style][letter], rng)
                filename = f"{letter}_{style}_{index:04d}.png"
                Image.fromarray(image, mode="L").save(split_dir / filename, format="PNG")
                entries.append({"filename": filename, "letter": letter, "letter_idx": letter_idx, "font_style": style})
                progress.update()
    return entries


def write_fonts(folder: Path, seed: int) -> int:
    """Write the complete letter dataset into the empty folder ``folder`` and return the image count."""
    rng = np.random.default_rng([seed, 0])  # stream 0: letters, independent of the drum stream
    glyphs = load_all_glyphs()
    train = write_font_split(folder, "train", TRAIN_PER_LETTER, glyphs, rng)
    val = write_font_split(folder, "val", VAL_PER_LETTER, glyphs, rng)
    metadata = {
        "letters": list(LETTERS),
        "font_styles": list(FONT_STYLES),
        "image_size": IMAGE_SIZE,
        "train_samples": train,
        "val_samples": val,
        "seed": seed,
        "style_fonts": {style: file_name for style, (file_name, _) in FONT_STYLES.items()},
        "style_width_scale": {style: scale for style, (_, scale) in FONT_STYLES.items()},
        "font_source": f"matplotlib {matplotlib.__version__} mpl-data/fonts/ttf, rendered with Pillow {PIL.__version__}",
    }
    write_json(metadata, folder / "metadata.json", indent=2)
    return len(train) + len(val)


# --- Drums ---------------------------------------------------------------------------------

def write_drums(folder: Path, seed: int) -> int:
    """Write the complete drum dataset into the empty folder ``folder`` and return the pattern count."""
    rng = np.random.default_rng([seed, 1])  # stream 1: drums
    n_styles = len(drum_process.STYLES)
    style_idx = np.repeat(np.arange(n_styles), DRUMS_PER_STYLE)
    patterns = np.empty((len(style_idx), drum_process.TIMESTEPS, len(drum_process.INSTRUMENTS)), dtype=np.uint8)
    for start in tqdm(range(0, len(style_idx), DRUMS_PER_STYLE), desc="drums", unit="style"):
        stop = start + DRUMS_PER_STYLE
        patterns[start:stop] = drum_process.sample_patterns(style_idx[start:stop], rng)

    order = rng.permutation(len(style_idx))  # order[i] is the pattern_idx of the i-th shuffled pattern
    train_idx, val_idx = order[:DRUM_TRAIN_COUNT], order[DRUM_TRAIN_COUNT:]
    cell_probabilities = drum_process.cell_hit_probabilities()

    def json_entries(indices: np.ndarray) -> list[dict]:
        return [
            {
                "pattern": patterns[i].tolist(),
                "style": drum_process.STYLES[style_idx[i]],
                "style_idx": int(style_idx[i]),
                "density": float(patterns[i].mean()),
                "pattern_idx": int(i),
            }
            for i in indices
        ]

    document = {
        "instruments": list(drum_process.INSTRUMENTS),
        "styles": list(drum_process.STYLES),
        "timesteps": drum_process.TIMESTEPS,
        "train_patterns": json_entries(train_idx),
        "val_patterns": json_entries(val_idx),
        "cell_probabilities": cell_probabilities.tolist(),
        "noise_probability": drum_process.NOISE_PROBABILITY,
        "seed": seed,
    }
    write_json(document, folder / "patterns.json", indent=None)

    # int64 patterns and styles, as in the course starter's files.
    write_npz(folder / "patterns.npz", {
        "train_patterns": patterns[train_idx].astype(np.int64),
        "val_patterns": patterns[val_idx].astype(np.int64),
        "train_styles": style_idx[train_idx].astype(np.int64),
        "val_styles": style_idx[val_idx].astype(np.int64),
        "train_pattern_idx": train_idx.astype(np.int64),
        "val_pattern_idx": val_idx.astype(np.int64),
        "instruments": np.array(drum_process.INSTRUMENTS),
        "styles": np.array(drum_process.STYLES),
        "cell_probabilities": cell_probabilities,
        "noise_probability": np.float64(drum_process.NOISE_PROBABILITY),
        "seed": np.int64(seed),
    })
    return len(style_idx)


# --- Writing a dataset folder atomically ---------------------------------------------------

def write_dataset_atomically(target: Path, write_fn, seed: int) -> int:
    """Run ``write_fn(folder, seed)`` on a temporary folder, then rename it to ``target``.

    An existing ``target`` is replaced only after the new data is complete,
    and it is restored if the swap itself is interrupted. Returns what
    ``write_fn`` returns.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.new-"))
    retired = None
    try:
        count = write_fn(staging, seed)
        os.chmod(staging, 0o755)  # mkdtemp creates 0700
        if target.exists():
            retired = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
            os.replace(target, retired / target.name)
        os.replace(staging, target)
    except BaseException:
        # Also on KeyboardInterrupt: drop the partial folder and keep the previous dataset.
        shutil.rmtree(staging, ignore_errors=True)
        if retired is not None and (retired / target.name).exists() and not target.exists():
            os.replace(retired / target.name, target)
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)
        raise
    if retired is not None:
        shutil.rmtree(retired)
    return count


# --- Figure --------------------------------------------------------------------------------

def draw_style_figure(path: Path, zoom: int = 2) -> None:
    """Draw all 26 letters in each of the 10 styles (rows), without jitter or noise, as a PNG.

    Every image pixel becomes a ``zoom`` x ``zoom`` block, so the sheet shows
    exactly the pixels of the training images. Rows are labelled with style and font file.
    """
    glyphs = load_all_glyphs()
    rows = []
    for style in FONT_STYLES:
        tiles = [ink_to_image(compose_glyph(glyphs[style][letter], 0.0, TARGET_HEIGHT, (0, 0))) for letter in LETTERS]
        rows.append(np.concatenate(tiles, axis=1))
    sheet = np.concatenate(rows, axis=0).repeat(zoom, axis=0).repeat(zoom, axis=1)

    label_font = ImageFont.truetype(str(font_directory() / "DejaVuSans.ttf"), 13)
    labels = []
    for style, (file_name, scale) in FONT_STYLES.items():
        source = file_name if scale == 1.0 else f"{file_name} x{scale} width"
        labels.append(f"{style}: {source}")
    label_width = max(round(label_font.getlength(label)) for label in labels) + 12
    header = 20
    tile = IMAGE_SIZE * zoom

    canvas = Image.new("L", (label_width + sheet.shape[1], header + sheet.shape[0]), 255)
    canvas.paste(Image.fromarray(sheet, mode="L"), (label_width, header))
    draw = ImageDraw.Draw(canvas)
    for column, letter in enumerate(LETTERS):
        draw.text((label_width + column * tile + tile // 2, header // 2), letter, font=label_font, fill=0, anchor="mm")
    for row, label in enumerate(labels):
        draw.text((label_width - 8, header + row * tile + tile // 2), label, font=label_font, fill=0, anchor="rm")

    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, format="PNG", optimize=True)


# --- Command line --------------------------------------------------------------------------

DATASETS = {"fonts": write_fonts, "drums": write_drums}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"random seed, an integer >= 0. The same seed gives byte-identical files (default {DEFAULT_SEED})")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="folder that receives fonts/ and drums/ (default: data/ in the repository)")
    parser.add_argument("--only", choices=sorted(DATASETS),
                        help="generate only this dataset (default: both)")
    parser.add_argument("--figure", type=Path, metavar="PNG",
                        help="instead of the datasets, draw the 10 styles x 26 letters sheet to this PNG file")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f"invalid --seed {args.seed}: expected a non-negative integer")
    return args


def main(argv=None) -> None:
    """Generate the datasets (or the style figure) as the command line requests."""
    args = parse_args(argv)
    if args.figure is not None:
        draw_style_figure(args.figure)
        print(f"wrote the font style figure to {args.figure}")
        return

    names = [args.only] if args.only else list(DATASETS)
    output_dir = args.output_dir.resolve()
    for name in names:
        start = time.perf_counter()
        count = write_dataset_atomically(output_dir / name, DATASETS[name], args.seed)
        elapsed = time.perf_counter() - start
        unit = "images" if name == "fonts" else "patterns"
        print(f"wrote {count} {unit} to {output_dir / name} in {elapsed:.1f} s (seed {args.seed})")


if __name__ == "__main__":
    main()
