"""Generate drum patterns for a style or a blend of styles and export them as PNG, MIDI and WAV.

    python problem2/generate.py --style rock --n 4
    python problem2/generate.py --blend rock:0.5,jazz:0.5 --n 4 --bpm 110 --loops 2
    python -m problem2.generate --style latin --humanize --out /tmp/latin

A style's z_high is the mean of the posterior means of its training patterns
(its centroid), and a blend is the weighted mean of centroids. z_low comes from
the learned prior p(z_low | z_high) with its standard deviation scaled by
``--temperature``. Each pattern is saved as ``<stem>.png`` (piano roll),
``<stem>.mid`` (General MIDI drums) and ``<stem>.wav`` (synthesised audio).
The helpers here (encoding, z_low sampling, decoding, piano-roll grids) are
shared by ``problem2.analyze_latent`` and ``problem2.creative``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from problem2.audio import write_wav
from problem2.dataset import DrumPatternDataset
from problem2.hierarchical_vae import load_vae_checkpoint
from problem2.midi_export import write_midi
from problem2.training_utils import style_centroids
from provided.drum_process import INSTRUMENTS, STYLES
from provided.paths import DEFAULT_DRUM_DIR, PROBLEM2_RESULTS
from provided.runtime import DEVICE_CHOICES, select_device
from provided.visualize import plot_drum_pattern

DEFAULT_MODEL_PATH = PROBLEM2_RESULTS / "best_model.pth"
DEFAULT_OUTPUT_DIR = PROBLEM2_RESULTS / "generated_patterns"
DECODE_MODES = ("sample", "threshold")
ENCODE_BATCH = 512  # patterns per encoder call, bounds memory on large sets


def load_model(path=DEFAULT_MODEL_PATH, device="cpu"):
    """Load the trained drum VAE from ``path`` in eval mode on ``device``.

    A missing file raises FileNotFoundError naming the command that trains it.
    """
    model, _ = load_vae_checkpoint(path, map_location=torch.device(device))
    return model


def style_index(name: str) -> int:
    """Return the index of style ``name`` in STYLES; an unknown name raises ValueError listing the valid ones."""
    if name not in STYLES:
        raise ValueError(f"unknown style {name!r}: choose one of {', '.join(STYLES)}")
    return STYLES.index(name)


def parse_blend(text: str) -> np.ndarray:
    """Parse "rock:0.5,jazz:0.5" into style weights, float64 [5] summing to 1 (index order of STYLES).

    Weights must be non-negative with a positive sum, and they are
    normalised. A style listed twice adds its weights.
    """
    weights = np.zeros(len(STYLES))
    for item in text.split(","):
        name, separator, value = item.strip().partition(":")
        if not separator:
            raise ValueError(f"invalid blend item {item!r}: expected style:weight, e.g. rock:0.5,jazz:0.5")
        try:
            weight = float(value)
        except ValueError:
            raise ValueError(f"invalid weight {value!r} for style {name!r}: expected a number") from None
        if not np.isfinite(weight) or weight < 0:
            raise ValueError(f"invalid weight {weight} for style {name!r}: expected a number >= 0")
        weights[style_index(name.strip())] += weight
    if weights.sum() <= 0:
        raise ValueError(f"invalid blend {text!r}: the weights sum to 0")
    return weights / weights.sum()


def load_patterns(drum_dir=DEFAULT_DRUM_DIR, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Return (patterns float [N, 16, 9] of 0/1, styles int64 [N]) of one split of the drum dataset."""
    return collect_patterns(DrumPatternDataset(drum_dir, split))


def collect_patterns(data) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (patterns float [N, 16, 9], styles int64 [N]) from any of the usual containers.

    ``data`` is a ``DrumPatternDataset`` (or any object with ``patterns`` and
    ``styles``), a DataLoader whose batches are (pattern, style, ...) tuples, or
    a (patterns, styles) pair of arrays or tensors.
    """
    if hasattr(data, "patterns") and hasattr(data, "styles"):
        patterns, styles = data.patterns, data.styles
    elif isinstance(data, torch.utils.data.DataLoader):
        batches = list(data)
        patterns = torch.cat([batch[0] for batch in batches])
        styles = torch.cat([torch.as_tensor(batch[1]) for batch in batches])
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        patterns, styles = data
    else:
        raise TypeError(
            f"expected a DrumPatternDataset, a DataLoader of (pattern, style, ...) batches "
            f"or a (patterns, styles) pair, got {type(data).__name__}"
        )
    patterns = torch.as_tensor(np.asarray(patterns), dtype=torch.float32)
    styles = torch.as_tensor(np.asarray(styles), dtype=torch.int64)
    if patterns.dim() != 3 or tuple(patterns.shape[1:]) != (16, len(INSTRUMENTS)):
        raise ValueError(f"expected patterns of shape [N, 16, 9], got {tuple(patterns.shape)}")
    if styles.shape != (len(patterns),):
        raise ValueError(f"expected one style per pattern, got {tuple(styles.shape)} for {len(patterns)} patterns")
    return patterns, styles


def model_device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def prior_low_std_normal(model, z_high, noise, temperature: float = 1.0) -> torch.Tensor:
    """Map standard-normal ``noise`` [B, z_low_dim] to z_low = mu(z_high) + temperature * sigma(z_high) * noise.

    ``mu`` and ``sigma`` are the mean and standard deviation of the learned
    prior p(z_low | z_high). A fixed ``noise`` across calls keeps the
    variation while z_high changes.
    """
    z_high = torch.as_tensor(z_high, dtype=torch.float32, device=model_device(model))
    noise = torch.as_tensor(noise, dtype=torch.float32, device=z_high.device)
    prior_mu, prior_logvar = model.prior_low(z_high)
    return prior_mu + temperature * torch.exp(0.5 * prior_logvar) * noise


@torch.no_grad()
def decode_patterns(model, z_high, z_low, mode: str = "threshold", generator: torch.Generator | None = None):
    """Decode latents into binary patterns; return (patterns uint8 [B, 16, 9], probabilities float64 [B, 16, 9]).

    ``mode`` "threshold" keeps cells with p > 0.5 (the most likely pattern
    given the latents), "sample" draws every cell from its Bernoulli
    (the model's full distribution, including the data's 5% cell noise).
    Logits come from ``decode_hierarchy`` at temperature 1.
    """
    if mode not in DECODE_MODES:
        raise ValueError(f"invalid decode mode {mode!r}: choose one of {', '.join(DECODE_MODES)}")
    device = model_device(model)
    z_high = torch.as_tensor(z_high, dtype=torch.float32, device=device)
    z_low = torch.as_tensor(z_low, dtype=torch.float32, device=device)
    probabilities = torch.sigmoid(model.decode_hierarchy(z_high, z_low)).cpu().double()
    if mode == "threshold":
        patterns = probabilities > 0.5
    else:
        patterns = torch.bernoulli(probabilities, generator=generator).bool()
    return patterns.numpy().astype(np.uint8), probabilities.numpy()


def generate_from_weights(
    model,
    centroids,
    weights,
    n: int,
    *,
    temperature: float = 1.0,
    mode: str = "threshold",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``n`` patterns from the blend ``weights`` [5] of style ``centroids`` [5, z_high_dim].

    z_high is the weighted mean of the centroids, and z_low is drawn from
    p(z_low | z_high) with its standard deviation times ``temperature``.
    Returns (patterns uint8 [n, 16, 9], probabilities float64 [n, 16, 9]).
    """
    if n < 1:
        raise ValueError(f"invalid number of patterns {n}: expected at least 1")
    generator = torch.Generator().manual_seed(seed)
    z_high = torch.as_tensor(np.asarray(weights) @ np.asarray(centroids), dtype=torch.float32)
    z_high = z_high.expand(n, -1)
    noise = torch.randn(n, model.z_low_dim, generator=generator)
    z_low = prior_low_std_normal(model, z_high, noise, temperature)
    return decode_patterns(model, z_high, z_low, mode=mode, generator=generator)


def oracle_styles(oracle, patterns) -> tuple[np.ndarray, np.ndarray]:
    """Return the oracle's (style posterior float64 [N, 5], predicted style int64 [N]) for binary patterns.

    The all-zero pattern has probability 0 under the true distribution, so
    its posterior row is all zeros and its predicted style is -1 (counted as
    wrong by every accuracy here).
    """
    patterns = np.asarray(patterns)
    posterior = oracle.style_posterior(patterns)
    silent = patterns.reshape(len(patterns), -1).sum(axis=1) == 0
    posterior[silent] = 0.0
    predicted = posterior.argmax(axis=1).astype(np.int64)
    predicted[silent] = -1
    return posterior, predicted


def plot_pattern_grid(patterns, path, *, row_labels=None, column_labels=None, title=None, cell_size=1.6):
    """Save a grid of piano rolls to ``path`` (PNG) and return the path.

    ``patterns``: [rows, columns, steps, 9] (or [columns, steps, 9] for one
    row) of 0/1 or probabilities in [0, 1]. Only the first column shows the
    instrument names.
    """
    patterns = np.asarray(patterns)
    if patterns.ndim == 3:
        patterns = patterns[None]
    n_rows, n_columns = patterns.shape[:2]
    steps = patterns.shape[2]
    figure = Figure(figsize=(cell_size * n_columns * steps / 16 + 1.2, cell_size * n_rows + 0.6))
    axes = figure.subplots(n_rows, n_columns, squeeze=False)
    for row in range(n_rows):
        for column in range(n_columns):
            ax = axes[row, column]
            label = column_labels[column] if column_labels is not None and row == 0 else None
            plot_drum_pattern(patterns[row, column], title=label, ax=ax)
            # Ticks only on the outer edge keep large grids readable and fast to draw.
            ax.set_xlabel("")
            if row < n_rows - 1:
                ax.set_xticks([])
            if column > 0:
                ax.set_yticks([])
                ax.set_ylabel("")
            elif row_labels is not None:
                ax.set_ylabel(row_labels[row])
    if title:
        figure.suptitle(title)
    return save_figure(figure, path)


def save_figure(figure, path, dpi: int = 80) -> Path:
    """Save ``figure`` as a PNG at ``path`` (creating folders) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    return path


def export_pattern(pattern, out_dir, stem: str, *, bpm: float = 120.0, loops: int = 2, title=None,
                   timing_jitter_ms: float = 0.0, velocity_jitter: float = 0.0, seed: int = 0) -> dict:
    """Write ``<stem>.png``, ``<stem>.mid`` and ``<stem>.wav`` for one pattern [steps, 9]; return their paths.

    MIDI and WAV play the pattern ``loops`` times at ``bpm``, with the same
    seeded humanization (timing jitter in milliseconds, velocity jitter in
    MIDI units) in both.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    humanization = {"timing_jitter_ms": timing_jitter_ms, "velocity_jitter": velocity_jitter, "seed": seed}

    figure = Figure(figsize=(1.0 + 0.45 * np.asarray(pattern).shape[0], 3.2))
    ax = figure.subplots()
    plot_drum_pattern(np.asarray(pattern), title=title or stem, ax=ax)
    png = save_figure(figure, out_dir / f"{stem}.png")

    midi = write_midi(pattern, out_dir / f"{stem}.mid", bpm=bpm, loops=loops, **humanization)
    wav = write_wav(pattern, out_dir / f"{stem}.wav", bpm=bpm, loops=loops, **humanization)
    return {"png": png, "midi": midi, "wav": wav}


def describe_pattern(pattern) -> str:
    """Return a one-line summary of a pattern: hit count and the hits per instrument."""
    pattern = np.asarray(pattern)
    counts = pattern.sum(axis=0)
    parts = [f"{name} {int(count)}" for name, count in zip(INSTRUMENTS, counts) if count]
    return f"{int(pattern.sum())} hits ({', '.join(parts) or 'none'})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--style", default="rock", help=f"style to generate, one of {', '.join(STYLES)} "
                        "(default: %(default)s)")
    target.add_argument("--blend", help="weighted blend of styles instead of --style, e.g. rock:0.5,jazz:0.5 "
                        "(weights are normalised to sum to 1)")
    parser.add_argument("--n", type=int, default=4, help="number of patterns (default: %(default)s)")
    parser.add_argument("--bpm", type=float, default=120.0,
                        help="tempo in quarter notes per minute; a step is a sixteenth note (default: %(default)s)")
    parser.add_argument("--loops", type=int, default=2,
                        help="times each one-bar pattern repeats in the MIDI and WAV files (default: %(default)s)")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="scale of the z_low prior's standard deviation; lower gives patterns closer to "
                        "the style's prototype (default: %(default)s)")
    parser.add_argument("--decode", choices=DECODE_MODES, default="threshold",
                        help="threshold: cells with p > 0.5; sample: Bernoulli draws including the data's "
                        "cell noise (default: %(default)s)")
    parser.add_argument("--humanize", action="store_true",
                        help="add timing jitter (8 ms std) and velocity jitter (10 MIDI units std) to MIDI and WAV")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH,
                        help="trained checkpoint (default: %(default)s)")
    parser.add_argument("--drum-dir", type=Path, default=DEFAULT_DRUM_DIR,
                        help="drum dataset whose train split gives the style centroids (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUTPUT_DIR,
                        help="output folder for .png, .mid and .wav files (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed for z_low, decoding and humanization")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="cpu",
                        help="device for the model (default: %(default)s; generation is small)")
    return parser


def main(argv=None) -> list[dict]:
    """Run the command line; return one dict of output paths per generated pattern."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.blend:
            weights = parse_blend(args.blend)
            label = "blend_" + "_".join(f"{STYLES[i]}{round(100 * w)}" for i, w in enumerate(weights) if w > 0)
        else:
            weights = np.eye(len(STYLES))[style_index(args.style)]
            label = args.style
        if args.n < 1:
            raise ValueError(f"invalid --n {args.n}: expected at least 1")
        if args.loops < 1:
            raise ValueError(f"invalid --loops {args.loops}: expected at least 1")
        if not args.bpm > 0:
            raise ValueError(f"invalid --bpm {args.bpm}: expected a positive tempo")
        if args.temperature < 0:
            raise ValueError(f"invalid --temperature {args.temperature}: expected a value >= 0")
        device = select_device(args.device)
        model = load_model(args.model, device)
        patterns, styles = load_patterns(args.drum_dir, "train")
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))

    centroids = style_centroids(model, patterns, styles, device=device).numpy()
    generated, _ = generate_from_weights(model, centroids, weights, args.n, temperature=args.temperature,
                                         mode=args.decode, seed=args.seed)

    jitter = {"timing_jitter_ms": 8.0, "velocity_jitter": 10.0} if args.humanize else {}
    outputs = []
    for index, pattern in enumerate(generated):
        stem = f"{label}_{index:02d}"
        paths = export_pattern(pattern, args.out, stem, bpm=args.bpm, loops=args.loops,
                               seed=args.seed + index, **jitter)
        print(f"{stem}: {describe_pattern(pattern)} -> {paths['wav'].parent}/{stem}.{{png,mid,wav}}")
        outputs.append(paths)
    return outputs


if __name__ == "__main__":
    main()
