"""Letter images (A-Z in 10 font styles) as an in-memory torch Dataset.

Reads the layout that ``setup_data.py`` and the course starter's data script
both write: ``<data_dir>/metadata.json`` plus ``train/`` and ``val/`` folders
of 28x28 grayscale PNGs, dark glyph on white. All images of a split are
decoded once in ``__init__``, so iterating costs no file I/O.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from provided.paths import DEFAULT_FONT_DIR, SETUP_DATA_COMMAND, missing_data_message

SPLITS = ("train", "val")
IMAGE_SIZE = 28  # pixels; the models are built for 28x28 inputs
ENTRY_KEYS = ("filename", "letter_idx", "font_style")


class FontDataset(Dataset):
    """One split of the letter dataset.

    Item ``i`` is ``(image, letter_idx)``: a float32 tensor [1, 28, 28] in
    [0, 1] (1 = white paper, 0 = black ink, as stored in the PNG) and an int
    in 0-25. The whole split is also exposed at once:

    - ``images``: float32 tensor [N, 1, 28, 28] in [0, 1]
    - ``labels``: int64 tensor [N] of letter indices
    - ``style_names``: list of N font style names, one per image
    - ``filenames``: list of N PNG file names inside ``<data_dir>/<split>``
    - ``letters``, ``font_styles``: the vocabularies from metadata.json
    - ``metadata``: the parsed metadata.json

    Raises FileNotFoundError for a missing folder, metadata file or image
    (with the command that generates the data) and ValueError for an unknown
    split, a malformed metadata.json, an unreadable image or one that is not
    28x28.
    """

    def __init__(self, data_dir=DEFAULT_FONT_DIR, split: str = "train"):
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
        self.data_dir = Path(data_dir)
        self.split = split
        if not self.data_dir.is_dir():
            raise FileNotFoundError(missing_data_message(self.data_dir))

        if not (self.data_dir / "metadata.json").exists() and (self.data_dir / "fonts" / "metadata.json").exists():
            raise FileNotFoundError(
                f"no metadata.json in {self.data_dir}: pass the fonts folder itself, {self.data_dir / 'fonts'}"
            )
        self.metadata = read_metadata(self.data_dir / "metadata.json")
        self.letters = list(self.metadata["letters"])
        self.font_styles = list(self.metadata.get("font_styles", []))
        entries = validated_entries(self.metadata, split, self.data_dir / "metadata.json")

        split_dir = self.data_dir / split
        if not split_dir.is_dir():
            raise FileNotFoundError(missing_data_message(split_dir))
        self.filenames = [entry["filename"] for entry in entries]
        self.style_names = [entry["font_style"] for entry in entries]
        pixels = np.zeros((len(entries), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
        for position, name in enumerate(self.filenames):
            pixels[position] = read_image(split_dir / name)
        self.images = torch.from_numpy(pixels).unsqueeze(1).float().div_(255.0)
        self.labels = torch.tensor([entry["letter_idx"] for entry in entries], dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])


def read_metadata(path: Path) -> dict:
    """Parse metadata.json and check its top-level keys (FileNotFoundError or ValueError naming ``path``)."""
    if not path.exists():
        raise FileNotFoundError(missing_data_message(path))
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"malformed metadata file {path}: {error}. Regenerate it: run {SETUP_DATA_COMMAND}") from error
    if not isinstance(metadata, dict):
        raise ValueError(f"malformed metadata file {path}: expected a JSON object, got {type(metadata).__name__}")

    letters = metadata.get("letters")
    if not isinstance(letters, list) or not letters:
        raise ValueError(f"malformed metadata file {path}: missing or empty 'letters' list")
    image_size = metadata.get("image_size", IMAGE_SIZE)
    if image_size != IMAGE_SIZE:
        raise ValueError(f"metadata file {path} declares image_size {image_size!r}, expected {IMAGE_SIZE}")
    return metadata


def validated_entries(metadata: dict, split: str, path: Path) -> list[dict]:
    """Return the ``<split>_samples`` entries of ``metadata``, checked (ValueError naming ``path``)."""
    key = f"{split}_samples"
    entries = metadata.get(key)
    if not isinstance(entries, list):
        raise ValueError(f"malformed metadata file {path}: missing {key!r} list")

    n_letters = len(metadata["letters"])
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict) or any(name not in entry for name in ENTRY_KEYS):
            raise ValueError(
                f"malformed metadata file {path}: {key}[{position}] must be an object with keys {', '.join(ENTRY_KEYS)}"
            )
        letter_idx = entry["letter_idx"]
        if not isinstance(letter_idx, int) or not 0 <= letter_idx < n_letters:
            raise ValueError(
                f"malformed metadata file {path}: {key}[{position}] has letter_idx {letter_idx!r}, "
                f"expected an integer in 0-{n_letters - 1}"
            )
    return entries


def read_image(path: Path) -> np.ndarray:
    """Decode one PNG as uint8 grayscale [28, 28] (FileNotFoundError or ValueError naming ``path``)."""
    if not path.exists():
        raise FileNotFoundError(missing_data_message(path))
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("L"))
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"unreadable image {path}: {error}") from error
    if pixels.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(
            f"image {path} is {pixels.shape[1]}x{pixels.shape[0]} pixels, expected {IMAGE_SIZE}x{IMAGE_SIZE}"
        )
    return pixels
