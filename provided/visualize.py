"""Plots shared by both problems: letter grids, GAN training curves, drum piano rolls, latent maps.

Every function builds a ``matplotlib.figure.Figure`` directly, without pyplot,
so it works headless under any backend (and never opens a window). It returns
the figure; the caller saves it (``figure.savefig(path)``). A ``save_path``
argument, where offered, writes the PNG before returning. Functions that take
``ax`` draw into an existing axes and return its figure.
"""
from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_limits  # installed with scikit-learn

from provided.drum_process import INSTRUMENTS
from provided.letter_classifier import LETTERS, NUM_CLASSES, LetterClassifier
from provided.metrics import CONFIDENCE_THRESHOLD

RECOGNISED_COLOUR, UNRECOGNISED_COLOUR = "tab:green", "tab:red"
MAX_PERPLEXITY = 30.0  # scikit-learn's default t-SNE perplexity
DPI = 120


def _save(figure: Figure, save_path) -> Figure:
    if save_path is not None:
        save_path = Path(save_path)
        save_path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(save_path, dpi=DPI, bbox_inches="tight")
    return figure


def _as_numpy(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


# ---------------------------------------------------------------------------
# Letters
# ---------------------------------------------------------------------------

@torch.no_grad()
def plot_alphabet_grid(generator, device="cpu", z_dim: int = 100, seed: int = 641, *, n_rows: int = 2,
                       classifier: LetterClassifier | None = None, title: str | None = None,
                       save_path=None) -> Figure:
    """Draw ``26 * n_rows`` generated letters in a grid of 13 columns.

    ``generator`` maps z [B, z_dim] (and one-hot labels [B, 26] when
    ``generator.conditional``) to images [B, 1, 28, 28] in [-1, 1]. A
    conditional generator draws A-Z from one z per group of 26, and an
    unconditional one draws independent samples. z comes from a private
    generator seeded with ``seed``, so the global RNG is untouched and the
    same seed gives the same z. With a ``classifier``, each image is captioned
    with the letter it reads and its probability, green when the probability
    is at least 0.9 (and, for a conditional generator, the letter matches).
    """
    z_dim = _checked_z_dim(generator, z_dim)
    device = torch.device(device)
    conditional = bool(getattr(generator, "conditional", False))
    n_images = NUM_CLASSES * n_rows

    rng = torch.Generator().manual_seed(seed)
    if conditional:
        z = torch.randn(n_rows, 1, z_dim, generator=rng).expand(n_rows, NUM_CLASSES, z_dim).reshape(n_images, z_dim)
        requested = torch.arange(NUM_CLASSES).repeat(n_rows)
        labels = torch.nn.functional.one_hot(requested, NUM_CLASSES).float().to(device)
    else:
        z = torch.randn(n_images, z_dim, generator=rng)
        requested, labels = None, None

    was_training = generator.training
    generator.eval()
    try:
        images = generator(z.to(device), labels) if conditional else generator(z.to(device))
    finally:
        generator.train(was_training)
    images = images.detach().float().cpu()

    captions = None
    if classifier is not None:
        probabilities = classifier.predict_proba(images, value_range=(-1.0, 1.0)).cpu()
        confidence, predicted = probabilities.max(dim=1)
        captions = []
        for index in range(n_images):
            recognised = confidence[index] >= CONFIDENCE_THRESHOLD
            if requested is not None:
                recognised = recognised and predicted[index] == requested[index]
            colour = RECOGNISED_COLOUR if recognised else UNRECOGNISED_COLOUR
            captions.append((f"{LETTERS[predicted[index]]} {confidence[index]:.2f}", colour))

    n_columns = NUM_CLASSES // 2
    figure = Figure(figsize=(n_columns * 0.9, 2 * n_rows * (1.05 if captions else 0.9)))
    axes = figure.subplots(2 * n_rows, n_columns, squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.imshow(images[index, 0].numpy(), cmap="gray", vmin=-1.0, vmax=1.0)
        ax.set_xticks([])
        ax.set_yticks([])
        if captions:
            text, colour = captions[index]
            ax.set_title(text, fontsize=7, color=colour, pad=2)
    default_title = "one z per 26 letters" if conditional else "independent samples"
    figure.suptitle(title or f"Generated letters ({default_title}, seed {seed})")
    return _save(figure, save_path)


def _checked_z_dim(generator, z_dim: int) -> int:
    generator_z_dim = getattr(generator, "z_dim", z_dim)
    if generator_z_dim != z_dim:
        raise ValueError(f"z_dim={z_dim} does not match generator.z_dim={generator_z_dim}: pass z_dim={generator_z_dim}")
    return z_dim


def plot_letter_survival_heatmap(epochs, letter_shares, *, title: str | None = None, ax=None,
                                 save_path=None) -> Figure:
    """Draw a letter x epoch heatmap of the share of generated samples read as each letter.

    ``epochs``: [n_epochs] evaluation epochs. ``letter_shares``: [n_epochs, 26]
    shares in [0, 1] (recognisable samples of each letter / all samples).
    A letter that dies out turns dark; the dashed level of the colour bar is
    the uniform share 1/26.
    """
    epochs = _as_numpy(epochs).reshape(-1)
    shares = _as_numpy(letter_shares).astype(float)
    if shares.ndim != 2 or shares.shape != (len(epochs), NUM_CLASSES):
        raise ValueError(f"letter_shares must have shape [n_epochs={len(epochs)}, 26], got {shares.shape}")

    figure, ax = _figure_and_axes(ax, figsize=(max(4.0, 0.35 * len(epochs) + 2.5), 6.5))
    image = ax.imshow(shares.T, aspect="auto", cmap="magma", vmin=0.0,
                      vmax=max(float(shares.max()), 2.0 / NUM_CLASSES), interpolation="nearest")
    ax.set_yticks(range(NUM_CLASSES), LETTERS, fontsize=7)
    tick_step = max(1, len(epochs) // 12)
    ax.set_xticks(range(0, len(epochs), tick_step), [f"{e:g}" for e in epochs[::tick_step]])
    ax.set_xlabel("epoch")
    ax.set_ylabel("letter")
    ax.set_title(title or "Letter survival (share of generated samples)")
    colour_bar = figure.colorbar(image, ax=ax, fraction=0.05)
    colour_bar.set_label("share of samples")
    colour_bar.ax.axhline(1.0 / NUM_CLASSES, color="white", linestyle="--", linewidth=1)
    return _save(figure, save_path)


def plot_letter_histogram(letter_counts, *, title: str | None = None, ax=None, save_path=None) -> Figure:
    """Draw a bar chart of samples per letter, marking letters with no sample by a red x.

    ``letter_counts``: {letter: count} (as in ``mode_coverage_score``'s
    ``letter_counts``) or a sequence of 26 counts in A-Z order. The dashed line
    is the count every letter would have under a uniform distribution.
    """
    if isinstance(letter_counts, dict):
        unknown = set(letter_counts) - set(LETTERS)
        if unknown:
            raise ValueError(f"letter_counts has keys that are not letters A-Z: {sorted(unknown)}")
        counts = np.array([letter_counts.get(letter, 0) for letter in LETTERS], dtype=float)
    else:
        counts = _as_numpy(letter_counts).astype(float).reshape(-1)
        if counts.shape != (NUM_CLASSES,):
            raise ValueError(f"letter_counts must contain 26 counts (A-Z), got {counts.shape[0]}")
    missing = counts == 0

    figure, ax = _figure_and_axes(ax, figsize=(9, 3.5))
    positions = np.arange(NUM_CLASSES)
    ax.bar(positions, counts, color=np.where(missing, UNRECOGNISED_COLOUR, "tab:blue"))
    ax.scatter(positions[missing], np.zeros(missing.sum()), marker="x", color=UNRECOGNISED_COLOUR,
               s=60, zorder=3, clip_on=False, label="missing")
    if counts.sum() > 0:
        ax.axhline(counts.sum() / NUM_CLASSES, color="gray", linestyle="--", linewidth=1, label="uniform")
    ax.set_xticks(positions, LETTERS)
    for tick, is_missing in zip(ax.get_xticklabels(), missing):
        tick.set_color(UNRECOGNISED_COLOUR if is_missing else "black")
    ax.set_ylabel("samples")
    default_title = f"Letters covered: {int((~missing).sum())}/26"
    if missing.any():
        default_title += ", missing: " + "".join(np.array(LETTERS)[missing])
    ax.set_title(title or default_title)
    ax.legend(loc="upper right", fontsize=8)
    return _save(figure, save_path)


# ---------------------------------------------------------------------------
# GAN training history
# ---------------------------------------------------------------------------

def _numeric_series(values) -> np.ndarray | None:
    """Return ``values`` as a float array [T] when it is a non-empty sequence of numbers, else None."""
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__len__") or len(values) == 0:
        return None
    if isinstance(values, (torch.Tensor, np.ndarray)):
        array = _as_numpy(values)
        return array.astype(float).reshape(-1) if array.ndim == 1 and array.dtype.kind in "biuf" else None
    if all(isinstance(v, numbers.Real) for v in values):
        return np.asarray(values, dtype=float)
    return None


def _series_table(table: dict, x_keys=("step", "epoch")) -> tuple[dict, np.ndarray | None, str]:
    """Split a dict of lists into numeric series and the x axis they share (the first x key that fits)."""
    series = {key: array for key, value in table.items() if (array := _numeric_series(value)) is not None}
    for x_key in x_keys:
        if x_key in series:
            return series, series.pop(x_key), x_key
    return series, None, "index"


def plot_training_history(history: dict, save_path=None) -> Figure:
    """Draw GAN losses, discriminator outputs and coverage from a training history.

    Accepts the flat layout of the course starter ({"d_loss": [...],
    "g_loss": [...], "epoch": [...], "mode_coverage": [...]}) and the nested
    layout of ``problem1`` ({"steps": {...}, "epochs": {...}, "evaluations":
    {...}}). Keys containing "loss" go to the first panel, keys starting with
    "d_real" or "d_fake" to the second, and coverage keys ("coverage",
    "letters_covered", "effective_letters") to the third. Missing keys leave
    their panel out. Raises ValueError when nothing can be plotted.
    """
    if not isinstance(history, dict):
        raise ValueError(f"history must be a dict of lists, got {type(history).__name__}")
    step_table = history.get("steps") if isinstance(history.get("steps"), dict) else None
    epoch_table = history.get("epochs") if isinstance(history.get("epochs"), dict) else None
    training, training_x, training_x_name = _series_table(step_table or epoch_table or history)
    if step_table is None and epoch_table is None:
        evaluation_table = {key: value for key, value in history.items() if _is_coverage_key(key)}
        evaluation_x = None
    else:
        evaluation_table, evaluation_x, _ = _series_table(history.get("evaluations") or {}, x_keys=("epoch",))

    # (title, y label, x values, x label, series, reference level or None)
    panels = [
        ("Losses", "loss", training_x, training_x_name,
         {k: v for k, v in training.items() if "loss" in k}, None),
        ("Discriminator outputs", "D(x)", training_x, training_x_name,
         {k: v for k, v in training.items() if k.startswith(("d_real", "d_fake"))}, 0.5),
        ("Coverage", "letters / score", evaluation_x, "epoch" if evaluation_x is not None else "evaluation",
         {k: a for k, v in evaluation_table.items() if _is_coverage_key(k) and (a := _numeric_series(v)) is not None},
         None),
    ]
    panels = [panel for panel in panels if panel[4]]
    if not panels:
        raise ValueError(f"history has no plottable series (loss, d_real/d_fake, coverage); keys: {sorted(history)}")

    figure = Figure(figsize=(5.0 * len(panels), 3.8))
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, y_label, x, x_name, series, reference) in zip(axes, panels):
        for key, values in series.items():
            x_values = x if x is not None and len(x) == len(values) else np.arange(len(values))
            ax.plot(x_values, values, label=key, linewidth=1)
        if reference is not None:
            ax.axhline(reference, color="gray", linestyle=":", linewidth=1)
        ax.set_xlabel(x_name)
        ax.set_ylabel(y_label)
        ax.set_title(title)
        ax.legend(fontsize=8)
    return _save(figure, save_path)


def _is_coverage_key(key: str) -> bool:
    return "coverage" in key or key in ("letters_covered", "effective_letters", "n_unique")


# ---------------------------------------------------------------------------
# Drum patterns and latent spaces
# ---------------------------------------------------------------------------

def plot_drum_pattern(pattern, title: str | None = None, ax=None, save_path=None) -> Figure:
    """Draw a piano roll: time steps on x, the 9 named instruments on y (kick at the bottom).

    ``pattern``: [T, 9] with T steps (16 for one bar, any length for a
    sequence of bars), binary hits or probabilities in [0, 1]. Dotted lines
    mark beats (every 4 steps), solid ones bars (every 16).
    """
    roll = _as_numpy(pattern).astype(float)
    if roll.ndim != 2 or roll.shape[1] != len(INSTRUMENTS):
        raise ValueError(f"pattern must have shape [steps, {len(INSTRUMENTS)}], got {roll.shape}")
    if roll.size and (roll.min() < 0.0 or roll.max() > 1.0):
        raise ValueError(f"pattern values must lie in [0, 1] (hits or probabilities), got "
                         f"[{roll.min():.3g}, {roll.max():.3g}]: apply a sigmoid to logits first")
    n_steps = roll.shape[0]

    figure, ax = _figure_and_axes(ax, figsize=(max(4.0, n_steps * 0.3), 3.2))
    ax.imshow(roll.T, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest", origin="lower")
    ax.set_yticks(range(len(INSTRUMENTS)), INSTRUMENTS, fontsize=8)
    ax.set_xticks(range(0, n_steps, 4))
    for step in range(4, n_steps, 4):
        is_bar = step % 16 == 0
        ax.axvline(step - 0.5, color="tab:blue", linewidth=1.2 if is_bar else 0.6, linestyle="-" if is_bar else ":")
    ax.set_xlabel("step")
    if title:
        ax.set_title(title)
    return _save(figure, save_path)


def plot_latent_space_2d(latent_codes, labels, *, label_names=None, title: str | None = None,
                         perplexity: float | None = None, seed: int = 0, ax=None, save_path=None) -> Figure:
    """Scatter latent codes in 2-D, coloured by label, using t-SNE unless they are already 2-D.

    ``latent_codes``: [N, D] with N >= 2. ``labels``: [N] ints or strings.
    ``label_names`` maps int labels to legend names (a sequence or dict).
    ``perplexity`` defaults to min(30, (N - 1) / 3), which keeps it below N
    as scikit-learn's t-SNE requires, so small sets work too.
    """
    codes = _as_numpy(latent_codes).astype(float)
    labels = _as_numpy(labels).reshape(-1)
    if codes.ndim != 2 or len(codes) < 2:
        raise ValueError(f"latent_codes must have shape [N, D] with N >= 2, got {codes.shape}")
    if len(labels) != len(codes):
        raise ValueError(f"labels has {len(labels)} entries but latent_codes has {len(codes)} rows")

    if codes.shape[1] == 2:
        embedded, method = codes, "latent"
    else:
        if perplexity is None:
            perplexity = min(MAX_PERPLEXITY, (len(codes) - 1) / 3)
        # One OpenMP thread: on a shared 2-core CPU under load, t-SNE of 1,000 points took
        # 5 s with one thread and 34 s with the default two.
        with threadpool_limits(limits=1):
            tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
            embedded = tsne.fit_transform(codes)
        method = f"t-SNE (perplexity {perplexity:.1f})"

    figure, ax = _figure_and_axes(ax, figsize=(6, 5))
    for label in np.unique(labels):
        chosen = labels == label
        if label_names is not None and isinstance(label, numbers.Integral):
            name = label_names[int(label)]
        else:
            name = str(label)
        ax.scatter(embedded[chosen, 0], embedded[chosen, 1], s=12, alpha=0.8, label=name)
    ax.set_xlabel(f"{method} 1")
    ax.set_ylabel(f"{method} 2")
    ax.set_title(title or f"Latent space ({len(codes)} codes, {codes.shape[1]}-d)")
    ax.legend(fontsize=8, markerscale=1.5)
    return _save(figure, save_path)


def _figure_and_axes(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    figure = Figure(figsize=figsize)
    return figure, figure.subplots()
