"""A small CNN that reads letters A-Z from 28x28 images: the judge of GAN mode coverage.

Usage::

    python -m provided.letter_classifier              # load or train, print val accuracy and confusions
    python -m provided.letter_classifier --retrain    # train again and overwrite the cache

``load_letter_classifier()`` trains the network once on the font train split
and caches it as ``<font_dir>/letter_classifier.pth`` together with the
training seed, the val accuracy, the per-letter confusions and a SHA-256
fingerprint of the dataset (``metadata.json`` and a sample of the images). A
cache whose fingerprint does not match the dataset (data regenerated with
another seed or renderer) is retrained.

Input range is always explicit: generator outputs are in [-1, 1] (the default
``value_range``), dataset images in [0, 1] (pass ``value_range=(0.0, 1.0)``).
Internally every image becomes an ink map in [0, 1] with a white background
at 0, so zero padding (in convolutions and in the augmentation) means paper.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import string
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix
from torch import nn
from tqdm import tqdm

from provided.paths import DEFAULT_FONT_DIR, missing_data_message
from provided.runtime import atomic_torch_save, software_versions

LETTERS = tuple(string.ascii_uppercase)
NUM_CLASSES = len(LETTERS)
IMAGE_SIZE = 28
GENERATOR_RANGE = (-1.0, 1.0)  # tanh output of the GANs
DATASET_RANGE = (0.0, 1.0)  # FontDataset images
RANGE_TOLERANCE = 1e-3  # values this far outside the declared range are clipped, farther ones rejected

CACHE_NAME = "letter_classifier.pth"
CACHE_FORMAT = 1  # bump when the architecture or the training recipe changes, so old caches are retrained

# Training recipe: 8 epochs of 41 steps. One run took 45-60 s on a shared, loaded 2-core CPU.
TRAINING_SEED = 0
EPOCHS = 8
BATCH_SIZE = 128
LEARNING_RATE = 3e-3  # peak of the one-cycle schedule (Adam)
WEIGHT_DECAY = 1e-4
MAX_ROTATION_DEGREES = 8.0
MAX_SHIFT_PIXELS = 2.0
SCALE_RANGE = (0.9, 1.1)
EVAL_BATCH_SIZE = 1000
# Outlier exposure (Hendrycks et al., "Deep Anomaly Detection with Outlier Exposure", ICLR 2019):
# each step also shows non-letters (noise, blobs, blank pages) with a uniform target, so the
# classifier's confidence separates letters from garbage. Without it a third of uniform-noise
# images got a letter probability >= 0.9.
OUTLIERS_PER_BATCH = 32
OUTLIER_LOSS_WEIGHT = 0.5


class LetterClassifier(nn.Module):
    """CNN with three conv blocks and a 128-unit penultimate layer; 26 outputs, one per letter A-Z.

    Every method takes images [B, 1, 28, 28] (or [B, 28, 28]) whose values lie
    in ``value_range``: (-1, 1) for generator outputs, (0, 1) for dataset
    images. Values outside the range by more than ``RANGE_TOLERANCE`` raise
    ValueError. Inputs are moved to the model's device.
    """

    feature_dim = 128

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(
            self._conv_block(1, 16),  # 28 -> 14
            self._conv_block(16, 32),  # 14 -> 7
            self._conv_block(32, 64),  # 7 -> 3
            nn.Flatten(),
        )
        self.fc = nn.Sequential(nn.Linear(64 * 3 * 3, self.feature_dim), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(self.feature_dim, NUM_CLASSES))

    @staticmethod
    def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )

    def to_ink(self, x: torch.Tensor, value_range=GENERATOR_RANGE) -> torch.Tensor:
        """Map images in ``value_range`` to ink maps [B, 1, 28, 28] in [0, 1] (0 = white) on the model's device."""
        return images_to_ink(x, value_range).to(next(self.parameters()).device)

    def features_from_ink(self, ink: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(ink))

    def features(self, x: torch.Tensor, value_range=GENERATOR_RANGE) -> torch.Tensor:
        """Return the penultimate-layer activations [B, 128] (after ReLU)."""
        return self.features_from_ink(self.to_ink(x, value_range))

    def forward(self, x: torch.Tensor, value_range=GENERATOR_RANGE) -> torch.Tensor:
        """Return letter logits [B, 26] (index 0 = 'A')."""
        return self.head(self.features(x, value_range))

    def predict_proba(self, x: torch.Tensor, value_range=GENERATOR_RANGE) -> torch.Tensor:
        """Return letter probabilities [B, 26] (softmax of the logits)."""
        return torch.softmax(self.forward(x, value_range), dim=1)


def images_to_ink(x: torch.Tensor, value_range=GENERATOR_RANGE) -> torch.Tensor:
    """Validate images in ``value_range`` and return float32 ink maps [B, 1, 28, 28] in [0, 1].

    Ink is 1 - brightness, so a white background becomes 0 and a black stroke 1.
    Raises ValueError for a wrong shape or for values outside the declared range.
    """
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4 or tuple(x.shape[1:]) != (1, IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"expected images of shape [B, 1, 28, 28] or [B, 28, 28], got {tuple(x.shape)}")

    low, high = (float(v) for v in value_range)
    if not high > low:
        raise ValueError(f"invalid value_range {value_range}: expected (low, high) with low < high")
    x = x.float()
    if x.numel():
        observed_min, observed_max = x.min().item(), x.max().item()
        tolerance = RANGE_TOLERANCE * (high - low)
        if observed_min < low - tolerance or observed_max > high + tolerance:
            raise ValueError(
                f"image values span [{observed_min:.3f}, {observed_max:.3f}], outside the declared "
                f"value_range ({low}, {high}): pass value_range=(0.0, 1.0) for dataset images or "
                f"(-1.0, 1.0) for generator (tanh) outputs"
            )
        if (low, high) == GENERATOR_RANGE and observed_min >= 0.0 and len(x) > 1:
            # Dataset images passed with the default range fall here: every pixel of every
            # image is >= 0, which a tanh generator only produces for all-white output.
            warnings.warn(
                f"all {len(x)} images have values in [0, 1] but value_range=(-1.0, 1.0) was "
                "declared; for dataset images pass value_range=(0.0, 1.0)",
                stacklevel=3,
            )
    brightness = ((x - low) / (high - low)).clamp(0.0, 1.0)
    return 1.0 - brightness


FINGERPRINT_IMAGES = 64  # images hashed into the dataset fingerprint, spread evenly over the splits


def dataset_fingerprint(font_dir) -> str:
    """Return a SHA-256 hex digest of ``metadata.json`` and an even sample of the PNG files.

    The metadata records the data seed and the file list. The sampled images
    also change when the renderer changes under the same seed. Hashing a
    sample keeps the check in milliseconds, so it runs on every load.
    """
    font_dir = Path(font_dir)
    metadata_path = font_dir / "metadata.json"
    if not metadata_path.exists():
        raise FileNotFoundError(missing_data_message(metadata_path))
    metadata_bytes = metadata_path.read_bytes()
    digest = hashlib.sha256(metadata_bytes)

    metadata = json.loads(metadata_bytes)
    files = [font_dir / split / entry["filename"]
             for split in ("train", "val") for entry in metadata.get(f"{split}_samples", [])]
    stride = max(1, len(files) // FINGERPRINT_IMAGES)
    for path in files[::stride]:
        digest.update(path.read_bytes() if path.exists() else b"missing")
    return digest.hexdigest()


def _load_split(font_dir: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (ink maps [N, 1, 28, 28] in [0, 1], labels int64 [N]) of one split."""
    from problem1.dataset import FontDataset  # the GAN package's loader; imported late to keep provided light

    dataset = FontDataset(font_dir, split)
    images = torch.as_tensor(dataset.images, dtype=torch.float32)
    labels = torch.as_tensor(dataset.labels, dtype=torch.int64)
    return images_to_ink(images, DATASET_RANGE), labels


def random_affine(ink: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Apply a small random rotation, scale and shift to each ink map; the uncovered border stays white (0)."""
    batch = ink.shape[0]

    def uniform(low, high):
        return torch.rand(batch, generator=generator) * (high - low) + low

    angle = torch.deg2rad(uniform(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES))
    scale = uniform(*SCALE_RANGE)
    max_shift = 2.0 * MAX_SHIFT_PIXELS / IMAGE_SIZE  # affine_grid coordinates span [-1, 1]
    shift_x, shift_y = uniform(-max_shift, max_shift), uniform(-max_shift, max_shift)

    # theta maps output coordinates to input coordinates, so dividing by scale enlarges the glyph.
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([
        torch.stack([cos, -sin, shift_x], dim=1),
        torch.stack([sin, cos, shift_y], dim=1),
    ], dim=1)
    grid = F.affine_grid(theta, list(ink.shape), align_corners=False)
    return F.grid_sample(ink, grid, padding_mode="zeros", align_corners=False)


def outlier_batch(n: int, generator: torch.Generator) -> torch.Tensor:
    """Return ``n`` non-letter ink maps [n, 1, 28, 28]: uniform noise, random blobs and near-blank pages."""
    shape = (n, 1, IMAGE_SIZE, IMAGE_SIZE)
    contrast = torch.rand(n, 1, 1, 1, generator=generator) * 0.8 + 0.2
    noise = torch.rand(shape, generator=generator) * contrast

    # Blobs: box-filtered noise thresholded at its median gives ink patches of 3-7 pixels.
    kernel = int(torch.randint(1, 4, (1,), generator=generator)) * 2 + 1
    smooth = F.avg_pool2d(torch.rand(shape, generator=generator), kernel, stride=1, padding=kernel // 2)
    blobs = (smooth > smooth.flatten(1).median(dim=1).values.view(n, 1, 1, 1)).float()

    blank = torch.rand(shape, generator=generator) * 0.1 * contrast
    kind = torch.randint(0, 3, (n, 1, 1, 1), generator=generator)
    return torch.where(kind == 0, noise, torch.where(kind == 1, blobs, blank))


@torch.no_grad()
def predict_proba_ink(model: LetterClassifier, ink: torch.Tensor) -> torch.Tensor:
    """Return letter probabilities [N, 26] (CPU) for ink maps, in batches."""
    device = next(model.parameters()).device
    probabilities = [
        torch.softmax(model.head(model.features_from_ink(ink[start:start + EVAL_BATCH_SIZE].to(device))), dim=1).cpu()
        for start in range(0, len(ink), EVAL_BATCH_SIZE)
    ]
    return torch.cat(probabilities)


def confusion_summary(labels: np.ndarray, probabilities: np.ndarray, top: int = 20) -> dict:
    """Summarise val predictions: per-letter accuracy, misclassifications and the closest letter pairs.

    ``confusions`` lists the misclassified (true, predicted) pairs, most frequent
    first. ``soft_confusions`` lists the ``top`` pairs with the largest mean
    probability given to the wrong letter, which shows the letters the network
    finds similar even when every image is classified correctly.
    """
    predictions = probabilities.argmax(axis=1)
    matrix = confusion_matrix(labels, predictions, labels=np.arange(NUM_CLASSES))
    per_letter = matrix.diagonal() / np.maximum(matrix.sum(axis=1), 1)
    true_idx, predicted_idx = np.nonzero(matrix - np.diag(matrix.diagonal()))
    confusions = sorted(
        ({"true": LETTERS[t], "predicted": LETTERS[p], "count": int(matrix[t, p])}
         for t, p in zip(true_idx, predicted_idx)),
        key=lambda entry: -entry["count"],
    )

    # Mean probability of each letter (columns) over the images of each true letter (rows).
    soft = np.zeros((NUM_CLASSES, NUM_CLASSES))
    np.add.at(soft, labels, probabilities)
    soft /= np.maximum(np.bincount(labels, minlength=NUM_CLASSES), 1)[:, None]
    np.fill_diagonal(soft, 0.0)
    order = np.argsort(soft, axis=None)[::-1][:top]
    soft_confusions = [
        {"true": LETTERS[t], "predicted": LETTERS[p], "mean_probability": float(soft[t, p])}
        for t, p in zip(*np.unravel_index(order, soft.shape))
    ]
    return {
        "per_letter_accuracy": {letter: float(acc) for letter, acc in zip(LETTERS, per_letter)},
        "confusions": confusions,
        "soft_confusions": soft_confusions,
    }


def train_letter_classifier(font_dir=DEFAULT_FONT_DIR, device="cpu", seed: int = TRAINING_SEED,
                            epochs: int = EPOCHS, verbose: bool = True) -> tuple[LetterClassifier, dict]:
    """Train a LetterClassifier on the train split and evaluate it on val.

    Returns (model in eval mode, record), where record contains the val accuracy,
    the confusion summary, the seed and the training time in seconds. The
    caller's global random state is left untouched.
    """
    device = torch.device(device)
    # Initialisation and dropout draw from the global generator, so fork it and seed the copy.
    cuda_devices = [device.index or 0] if device.type == "cuda" else []
    previous_threads = torch.get_num_threads()
    if device.type == "cpu":
        # Train on one thread. On a shared 2-core CPU at load average 10, a step took 130 ms
        # with one thread and 1.6 s with two, and a full run 52 s against 315 s. One thread
        # also makes the weights independent of the machine's core count.
        torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=cuda_devices):
            torch.manual_seed(seed)
            return _train(Path(font_dir), device, seed, epochs, verbose)
    finally:
        torch.set_num_threads(previous_threads)


def _train(font_dir: Path, device: torch.device, seed: int, epochs: int,
           verbose: bool) -> tuple[LetterClassifier, dict]:
    train_ink, train_labels = _load_split(font_dir, "train")
    val_ink, val_labels = _load_split(font_dir, "val")

    start = time.perf_counter()
    model = LetterClassifier().to(device)
    generator = torch.Generator().manual_seed(seed)  # shuffling, augmentation and outliers
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    steps_per_epoch = -(-len(train_ink) // BATCH_SIZE)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=LEARNING_RATE, total_steps=epochs * steps_per_epoch
    )

    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(train_ink), generator=generator)
        total_loss, total_outlier_loss, correct = 0.0, 0.0, 0
        batches = tqdm(range(steps_per_epoch), desc=f"letter classifier epoch {epoch}/{epochs}",
                       leave=False, disable=not verbose)
        for step in batches:
            index = order[step * BATCH_SIZE:(step + 1) * BATCH_SIZE]
            ink = random_affine(train_ink[index], generator)
            ink = torch.cat([ink, outlier_batch(OUTLIERS_PER_BATCH, generator)]).to(device)
            labels = train_labels[index].to(device)

            all_logits = model.head(model.features_from_ink(ink))
            logits, outlier_logits = all_logits[:len(index)], all_logits[len(index):]
            # Cross-entropy against the uniform distribution is the mean negative log-softmax over classes.
            outlier_loss = -torch.log_softmax(outlier_logits, dim=1).mean()
            letter_loss = F.cross_entropy(logits, labels)
            loss = letter_loss + OUTLIER_LOSS_WEIGHT * outlier_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()

            total_loss += letter_loss.item() * len(index)
            total_outlier_loss += outlier_loss.item() * len(index)
            correct += (logits.argmax(dim=1) == labels).sum().item()

        model.eval()
        val_accuracy = (predict_proba_ink(model, val_ink).argmax(dim=1) == val_labels).float().mean().item()
        if verbose:
            print(f"letter classifier epoch {epoch}/{epochs}: letter loss {total_loss / len(train_ink):.4f}, "
                  f"outlier loss {total_outlier_loss / len(train_ink):.4f} (minimum log 26 = 3.2581), "
                  f"train acc {correct / len(train_ink):.4f} (augmented), val acc {val_accuracy:.4f}")

    probabilities = predict_proba_ink(model, val_ink).double().numpy()
    record = {
        "training_seed": seed,
        "epochs": epochs,
        "val_accuracy": float((probabilities.argmax(axis=1) == val_labels.numpy()).mean()),
        "n_val": len(val_labels),
        "training_seconds": time.perf_counter() - start,
        **confusion_summary(val_labels.numpy(), probabilities),
    }
    return model.eval(), record


_LOADED: dict[tuple[str, str, str], LetterClassifier] = {}  # (cache path, device, fingerprint) -> model


def load_letter_classifier(font_dir=DEFAULT_FONT_DIR, device="cpu", retrain: bool = False,
                           verbose: bool = True) -> LetterClassifier:
    """Return the trained letter classifier for ``font_dir`` in eval mode, training and caching it if needed.

    The cache ``<font_dir>/letter_classifier.pth`` is used when its format and
    dataset fingerprint match. Otherwise, or with ``retrain=True``, the network
    is trained (about a minute on 2 CPU cores) and the cache is rewritten
    atomically. Within one process the same (path, device, dataset) returns the
    same object, so calling it every epoch is cheap. Its parameters have
    ``requires_grad=False``. The training summary is in ``model.record``.
    """
    font_dir = Path(font_dir)
    if not font_dir.exists():
        raise FileNotFoundError(missing_data_message(font_dir))
    device = torch.device(device)
    cache_path = font_dir / CACHE_NAME
    fingerprint = dataset_fingerprint(font_dir)
    key = (str(cache_path.resolve()), str(device), fingerprint)
    if key in _LOADED and not retrain:
        return _LOADED[key]

    checkpoint = None if retrain else _read_cache(cache_path, fingerprint, verbose)
    if checkpoint is None:
        trained, record = train_letter_classifier(font_dir, device=device, verbose=verbose)
        checkpoint = {
            "format": CACHE_FORMAT,
            "dataset_fingerprint": fingerprint,
            "state_dict": {name: value.cpu() for name, value in trained.state_dict().items()},
            # torch.__version__ is a str subclass that weights_only loading rejects, so store plain str.
            "software": {name: str(value) for name, value in software_versions().items()},
            **record,
        }
        atomic_torch_save(checkpoint, cache_path)
        if verbose:
            print(f"letter classifier: val accuracy {record['val_accuracy']:.4%} after "
                  f"{record['training_seconds']:.0f} s, saved to {cache_path}")
    elif verbose:
        print(f"letter classifier: loaded {cache_path} (val accuracy {checkpoint['val_accuracy']:.4%})")

    model = LetterClassifier()
    model.load_state_dict(checkpoint["state_dict"])
    model.record = {name: value for name, value in checkpoint.items() if name != "state_dict"}
    model.requires_grad_(False)
    model = model.to(device).eval()
    _LOADED[key] = model
    return model


def _read_cache(cache_path: Path, fingerprint: str, verbose: bool) -> dict | None:
    """Return the cached checkpoint dict, or None when it is missing, unreadable or stale."""
    if not cache_path.exists():
        return None
    try:
        checkpoint = torch.load(cache_path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file: retraining replaces it
        warnings.warn(f"cannot read {cache_path} ({error}); retraining the letter classifier", stacklevel=3)
        return None
    if checkpoint.get("format") != CACHE_FORMAT:
        reason = f"cache format {checkpoint.get('format')} differs from {CACHE_FORMAT}"
    elif checkpoint.get("dataset_fingerprint") != fingerprint:
        reason = "it was trained on a different dataset (the fingerprint of metadata.json and images differs)"
    else:
        return checkpoint
    if verbose:
        print(f"letter classifier: ignoring {cache_path} because {reason}; retraining")
    return None


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Load or train the letter classifier and print its val accuracy.")
    parser.add_argument("--font-dir", type=Path, default=DEFAULT_FONT_DIR,
                        help="font dataset folder with train/, val/ and metadata.json (default: %(default)s)")
    parser.add_argument("--retrain", action="store_true", help="train again even when a valid cache exists")
    parser.add_argument("--device", default="cpu", help="torch device for training and inference (default: cpu)")
    parser.add_argument("--top", type=int, default=10, help="number of confused letter pairs to print")
    args = parser.parse_args(argv)

    model = load_letter_classifier(args.font_dir, device=args.device, retrain=args.retrain)
    record = model.record
    n_errors = round((1 - record["val_accuracy"]) * record["n_val"])
    print(f"val accuracy: {record['val_accuracy']:.4%} ({n_errors} errors in {record['n_val']} images), "
          f"training seed {record['training_seed']}, trained in {record['training_seconds']:.1f} s")
    if record["confusions"]:
        print("misclassified val images (true -> predicted: count):")
        for entry in record["confusions"][:args.top]:
            print(f"  {entry['true']} -> {entry['predicted']}: {entry['count']}")
    else:
        print("no val image is misclassified")
    print("closest letter pairs (true -> other: mean probability given to the other letter on val):")
    for entry in record["soft_confusions"][:args.top]:
        print(f"  {entry['true']} -> {entry['predicted']}: {entry['mean_probability']:.4f}")


if __name__ == "__main__":
    main()
