"""Drum patterns (16 steps x 9 instruments, 5 styles) as an in-memory torch Dataset.

Reads the layout that ``setup_data.py`` and the course starter's data script
both write: ``<data_dir>/patterns.npz`` (read when present) or
``<data_dir>/patterns.json``. The whole split is decoded once in ``__init__``.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from provided import drum_process
from provided.paths import DEFAULT_DRUM_DIR, SETUP_DATA_COMMAND, missing_data_message

SPLITS = ("train", "val")
PATTERN_SHAPE = (drum_process.TIMESTEPS, len(drum_process.INSTRUMENTS))  # (16, 9)
CELL_PROBABILITIES_SHAPE = (len(drum_process.STYLES), *PATTERN_SHAPE)  # (5, 16, 9)


class DrumPatternDataset(Dataset):
    """One split of the drum dataset.

    Item ``i`` is ``(pattern, style, density)``: a float32 tensor [16, 9] of
    0/1 (steps x instruments), the style index (int, 0-4) and the share of
    active cells (float in [0, 1]). The whole split is also exposed at once:

    - ``patterns``: float32 tensor [N, 16, 9] of 0/1
    - ``styles``: int64 tensor [N] of style indices
    - ``densities``: float32 tensor [N], the mean of each pattern
    - ``instruments``, ``style_names``: column and style names
    - ``cell_probabilities``: float64 array [5, 16, 9], the per-style
      probability that a cell is 1, or None when the files do not carry it
      (the course starter's files do not)
    - ``source``: the file the split was read from

    Raises FileNotFoundError when the folder or both data files are missing
    (with the command that generates them) and ValueError for an unknown
    split, a malformed file, a pattern that is not 16x9 of 0/1 or a style
    index outside 0-4.
    """

    def __init__(self, data_dir=DEFAULT_DRUM_DIR, split: str = "train"):
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
        self.data_dir = Path(data_dir)
        self.split = split
        if not self.data_dir.is_dir():
            raise FileNotFoundError(missing_data_message(self.data_dir))

        npz_path = self.data_dir / "patterns.npz"
        json_path = self.data_dir / "patterns.json"
        if npz_path.exists():
            contents = read_npz_split(npz_path, split)
            self.source = npz_path
        elif json_path.exists():
            contents = read_json_split(json_path, split)
            self.source = json_path
        elif (self.data_dir / "drums").is_dir():
            raise FileNotFoundError(
                f"no patterns.npz or patterns.json in {self.data_dir}: pass the drums folder itself, "
                f"{self.data_dir / 'drums'}"
            )
        else:
            raise FileNotFoundError(
                f"neither {npz_path.name} nor {json_path.name} found in {self.data_dir}: "
                f"run {SETUP_DATA_COMMAND}"
            )
        patterns, styles, self.instruments, self.style_names, self.cell_probabilities = contents
        validate_split(patterns, styles, len(self.style_names), self.source, split)

        self.patterns = torch.from_numpy(patterns.astype(np.float32))
        self.styles = torch.from_numpy(styles.astype(np.int64))
        self.densities = self.patterns.mean(dim=(1, 2))

    def __len__(self) -> int:
        return len(self.styles)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, float]:
        return self.patterns[index], int(self.styles[index]), float(self.densities[index])


def read_npz_split(path: Path, split: str):
    """Return (patterns, styles, instruments, style names, cell probabilities or None) from patterns.npz."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"malformed data file {path}: {error}. Regenerate it: run {SETUP_DATA_COMMAND}") from error

    for key in (f"{split}_patterns", f"{split}_styles"):
        if key not in arrays:
            raise ValueError(f"malformed data file {path}: missing array {key!r}")
    instruments = [str(name) for name in arrays.get("instruments", drum_process.INSTRUMENTS)]
    style_names = [str(name) for name in arrays.get("styles", drum_process.STYLES)]
    cell_probabilities = validated_cell_probabilities(arrays.get("cell_probabilities"), path)
    return arrays[f"{split}_patterns"], arrays[f"{split}_styles"], instruments, style_names, cell_probabilities


def read_json_split(path: Path, split: str):
    """Return (patterns, styles, instruments, style names, cell probabilities or None) from patterns.json."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"malformed data file {path}: {error}. Regenerate it: run {SETUP_DATA_COMMAND}") from error
    key = f"{split}_patterns"
    if not isinstance(document, dict) or not isinstance(document.get(key), list):
        raise ValueError(f"malformed data file {path}: missing {key!r} list")

    patterns, styles = [], []
    for position, entry in enumerate(document[key]):
        if not isinstance(entry, dict) or "pattern" not in entry or "style_idx" not in entry:
            raise ValueError(f"malformed data file {path}: {key}[{position}] needs keys 'pattern' and 'style_idx'")
        try:
            pattern = np.asarray(entry["pattern"], dtype=np.int64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"malformed data file {path}: {key}[{position}] pattern is not a numeric grid") from error
        if pattern.shape != PATTERN_SHAPE:
            raise ValueError(
                f"malformed data file {path}: {key}[{position}] pattern has shape {pattern.shape}, expected {PATTERN_SHAPE}"
            )
        patterns.append(pattern)
        styles.append(entry["style_idx"])

    pattern_array = np.stack(patterns) if patterns else np.zeros((0, *PATTERN_SHAPE), dtype=np.int64)
    instruments = [str(name) for name in document.get("instruments", drum_process.INSTRUMENTS)]
    style_names = [str(name) for name in document.get("styles", drum_process.STYLES)]
    cell_probabilities = validated_cell_probabilities(document.get("cell_probabilities"), path)
    return pattern_array, np.asarray(styles), instruments, style_names, cell_probabilities


def validated_cell_probabilities(values, path: Path):
    """Return ``values`` as float64 [5, 16, 9] in [0, 1], or None when absent (ValueError naming ``path``)."""
    if values is None:
        return None
    probabilities = np.asarray(values, dtype=np.float64)
    if probabilities.shape != CELL_PROBABILITIES_SHAPE:
        raise ValueError(
            f"malformed data file {path}: cell_probabilities has shape {probabilities.shape}, "
            f"expected {CELL_PROBABILITIES_SHAPE}"
        )
    if not np.all((probabilities >= 0.0) & (probabilities <= 1.0)):
        raise ValueError(f"malformed data file {path}: cell_probabilities has values outside [0, 1]")
    return probabilities


def validate_split(patterns: np.ndarray, styles: np.ndarray, n_styles: int, path: Path, split: str) -> None:
    """Check shapes and values of one split, raising ValueError naming ``path`` on the first problem."""
    if patterns.ndim != 3 or patterns.shape[1:] != PATTERN_SHAPE:
        raise ValueError(
            f"malformed data file {path}: {split} patterns have shape {patterns.shape}, "
            f"expected [N, {PATTERN_SHAPE[0]}, {PATTERN_SHAPE[1]}]"
        )
    if not np.all((patterns == 0) | (patterns == 1)):
        raise ValueError(f"malformed data file {path}: {split} patterns contain values other than 0 and 1")
    if styles.shape != (len(patterns),):
        raise ValueError(
            f"malformed data file {path}: {split} has {len(patterns)} patterns but style labels of shape {styles.shape}"
        )
    if not np.issubdtype(styles.dtype, np.integer) and len(styles):
        raise ValueError(f"malformed data file {path}: {split} style labels must be integers, got {styles.dtype}")
    if len(styles) and (styles.min() < 0 or styles.max() >= n_styles):
        raise ValueError(
            f"malformed data file {path}: {split} style labels span {styles.min()}-{styles.max()}, "
            f"expected 0-{n_styles - 1}"
        )
