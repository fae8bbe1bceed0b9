"""Experiments on trained letter GANs, and the side-by-side comparison of runs.

    python problem1/evaluate.py --run problem1/results/vanilla
    python problem1/evaluate.py --runs problem1/results/vanilla problem1/results/fixed_feature_matching

``--run`` writes the single-run experiments (latent interpolation, mode
recovery across checkpoints, style consistency for a conditional generator)
to ``<run>/evaluation/``. ``--runs`` writes ``comparison.png``,
``comparison.md`` and ``comparison.json`` to ``--out`` (default
problem1/results/comparison/).

The trained classifier of ``provided.letter_classifier`` reads the letters.
A sample counts as a letter when the classifier gives that letter a
probability of at least 0.9, as in ``provided.metrics.mode_coverage_score``.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from problem1.models import NUM_LETTERS
from problem1.training_dynamics import LETTERS
from provided.paths import DEFAULT_FONT_DIR, PROBLEM1_RESULTS
from provided.runtime import atomic_write_json, select_device

CONFIDENCE_THRESHOLD = 0.9  # same threshold as mode_coverage_score
# Pairs for the interpolation figure: similar shapes (O-Q, E-F, I-L) and dissimilar ones (M-W, A-Z).
DEFAULT_PAIRS = (("O", "Q"), ("E", "F"), ("I", "L"), ("M", "W"), ("A", "Z"))
COMPARISON_DIR = PROBLEM1_RESULTS / "comparison"


# --------------------------------------------------------------------------- latent codes


def lerp(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """Return ``steps`` points on the straight line from z0 to z1 (both ends included), [steps, D]."""
    t = torch.linspace(0.0, 1.0, steps, dtype=z0.dtype)[:, None]
    return (1.0 - t) * z0[None] + t * z1[None]


def slerp(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """Return ``steps`` points on the great circle from z0 to z1 (both ends included), [steps, D].

    Spherical interpolation keeps the norm near that of the end points,
    where a high-dimensional Gaussian puts its mass. The straight line
    passes closer to the origin. Nearly parallel codes fall back to ``lerp``.
    """
    cos_angle = torch.dot(z0, z1) / (z0.norm() * z1.norm())
    angle = torch.arccos(cos_angle.clamp(-1.0, 1.0))
    if angle.abs() < 1e-4:
        return lerp(z0, z1, steps)
    t = torch.linspace(0.0, 1.0, steps, dtype=z0.dtype)[:, None]
    return (torch.sin((1.0 - t) * angle) * z0[None] + torch.sin(t * angle) * z1[None]) / torch.sin(angle)


@torch.no_grad()
def _generate(generator, z: torch.Tensor, labels: torch.Tensor | None, device, batch_size: int = 500) -> torch.Tensor:
    """Run the generator in eval mode on z [N, z_dim]; return images [N, 1, 28, 28] in [-1, 1] on the CPU."""
    was_training = generator.training
    generator.eval()
    try:
        chunks = []
        for start in range(0, len(z), batch_size):
            batch_labels = None if labels is None else labels[start : start + batch_size].to(device)
            chunks.append(generator(z[start : start + batch_size].to(device), batch_labels).float().cpu())
    finally:
        generator.train(was_training)
    return torch.cat(chunks)


def _load_classifier(font_dir):
    from provided.letter_classifier import load_letter_classifier

    return load_letter_classifier(font_dir, verbose=False)


@torch.no_grad()
def letter_probabilities(images: torch.Tensor, classifier) -> torch.Tensor:
    """Return the classifier's letter probabilities [N, 26] (CPU) for images [N, 1, 28, 28] in [-1, 1]."""
    return torch.cat([classifier.predict_proba(images[i : i + 1000]).cpu() for i in range(0, len(images), 1000)])


def find_letter_codes(
    generator, device, letters=LETTERS, *, n_candidates: int = 2000, seed: int = 0, font_dir=DEFAULT_FONT_DIR
) -> dict:
    """Find, for each letter, the latent code whose image the classifier reads most confidently as it.

    Draws ``n_candidates`` codes from a generator seeded with ``seed`` and
    keeps the best candidate per letter. A conditional generator gets each
    letter as its label, so every candidate is scored for that letter.
    Returns {letter: {"z": [z_dim] tensor, "probability": float, "found": bool}},
    where ``found`` means the probability reaches 0.9.
    """
    classifier = _load_classifier(font_dir)
    z = torch.randn(n_candidates, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    codes = {}
    if getattr(generator, "conditional", False):
        for letter in letters:
            index = LETTERS.index(letter)
            labels = torch.full((n_candidates,), index, dtype=torch.int64)
            probabilities = letter_probabilities(_generate(generator, z, labels, device), classifier)[:, index]
            best = int(probabilities.argmax())
            codes[letter] = {"z": z[best], "probability": float(probabilities[best])}
    else:
        probabilities = letter_probabilities(_generate(generator, z, None, device), classifier)
        for letter in letters:
            column = probabilities[:, LETTERS.index(letter)]
            best = int(column.argmax())
            codes[letter] = {"z": z[best], "probability": float(column[best])}
    for code in codes.values():
        code["found"] = code["probability"] >= CONFIDENCE_THRESHOLD
    return codes


def _read_path(generator, device, z_path: torch.Tensor, labels, classifier) -> dict:
    """Generate along a path of codes and return the images with the letters the classifier reads."""
    images = _generate(generator, z_path, labels, device)
    probabilities = letter_probabilities(images, classifier)
    confidence, predicted = probabilities.max(dim=1)
    read_as = [LETTERS[int(i)] if float(c) >= CONFIDENCE_THRESHOLD else "?" for c, i in zip(confidence, predicted)]
    return {"images": images, "read_as": read_as, "confidence": [round(float(c), 4) for c in confidence]}


def _label_path(start: str, end: str, steps: int) -> torch.Tensor:
    """Return one-hot labels [steps, 26] moving linearly from ``start`` to ``end``."""
    t = torch.linspace(0.0, 1.0, steps)[:, None]
    one_hot = torch.eye(NUM_LETTERS)
    return (1.0 - t) * one_hot[LETTERS.index(start)] + t * one_hot[LETTERS.index(end)]


def interpolation_experiment(
    generator,
    device,
    *,
    pairs=DEFAULT_PAIRS,
    alphabet_path: bool = True,
    steps: int = 10,
    n_candidates: int = 2000,
    seed: int = 0,
    save_dir=None,
    font_dir=DEFAULT_FONT_DIR,
) -> dict:
    """Interpolate between latent codes that the classifier reads as chosen letters.

    For each pair (start, end) the codes come from ``find_letter_codes``;
    the path between them is drawn with linear and spherical interpolation
    (``steps`` images each, ends included). With ``alphabet_path`` the
    consecutive letters A -> B -> ... -> Z are chained with spherical
    interpolation. A conditional generator also moves its one-hot label
    linearly from start to end. A letter without any code of probability
    >= 0.9 is listed under ``missing_letters``; its paths still start or
    end at its best candidate, and their ``ends_found`` is False.

    Figures (when ``save_dir`` is given): ``interpolation_pairs.png`` and,
    with ``alphabet_path``, ``interpolation_alphabet.png``. Returns a dict:
    ``code_probability`` per letter, ``missing_letters``, and ``pairs`` /
    ``alphabet``: per path the letters read at each step ("?" below 0.9),
    the confidences and the share of recognisable intermediate images.
    """
    conditional = getattr(generator, "conditional", False)
    needed = sorted({letter for pair in pairs for letter in pair} | (set(LETTERS) if alphabet_path else set()))
    codes = find_letter_codes(generator, device, needed, n_candidates=n_candidates, seed=seed, font_dir=font_dir)
    classifier = _load_classifier(font_dir)
    missing = [letter for letter in needed if not codes[letter]["found"]]
    results = {
        "code_probability": {letter: round(codes[letter]["probability"], 4) for letter in needed},
        "missing_letters": missing,
        "pairs": [],
        "alphabet": [],
    }

    def run_path(start: str, end: str, method: str) -> dict:
        interpolate = slerp if method == "slerp" else lerp
        z_path = interpolate(codes[start]["z"], codes[end]["z"], steps)
        labels = _label_path(start, end, steps) if conditional else None
        path = _read_path(generator, device, z_path, labels, classifier)
        inner = path["read_as"][1:-1]
        path.update(
            start=start,
            end=end,
            method=method,
            ends_found=codes[start]["found"] and codes[end]["found"],
            recognizable_fraction=sum(letter != "?" for letter in inner) / max(len(inner), 1),
        )
        return path

    pair_rows = []
    for start, end in pairs:
        for method in ("lerp", "slerp"):
            path = run_path(start, end, method)
            pair_rows.append(path)
            results["pairs"].append({key: value for key, value in path.items() if key != "images"})

    alphabet_rows = []
    if alphabet_path:
        for start, end in zip(LETTERS[:-1], LETTERS[1:]):
            path = run_path(start, end, "slerp")
            alphabet_rows.append(path)
            results["alphabet"].append({key: value for key, value in path.items() if key != "images"})

    if save_dir is not None:
        save_dir = Path(save_dir)
        save_dir.mkdir(parents=True, exist_ok=True)
        if pair_rows:
            _save_path_grid(pair_rows, save_dir / "interpolation_pairs.png", "Latent interpolation between letters")
        if alphabet_rows:
            _save_path_grid(alphabet_rows, save_dir / "interpolation_alphabet.png", "A to Z through the best codes (slerp)")
    return results


def image_mosaic(images: torch.Tensor, gap: int = 2) -> np.ndarray:
    """Tile images [R, C, 28, 28] in [-1, 1] into one array [R * (28 + gap), C * (28 + gap)], gaps at -1."""
    rows, columns, height, width = images.shape
    mosaic = np.full((rows * (height + gap), columns * (width + gap)), -1.0, dtype=np.float32)
    for row in range(rows):
        for column in range(columns):
            top, left = row * (height + gap), column * (width + gap)
            mosaic[top : top + height, left : left + width] = images[row, column].numpy()
    return mosaic


def _save_path_grid(rows: list[dict], path: Path, title: str) -> None:
    """Draw one row of images per path, each image captioned with the letter read ("?" below 0.9)."""
    images = torch.stack([row["images"][:, 0] for row in rows])
    n_rows, steps = images.shape[:2]
    cell = 28 + 2
    figure = Figure(figsize=(steps * 0.75 + 1.4, n_rows * 0.85 + 0.8))
    ax = figure.subplots()
    ax.imshow(image_mosaic(images), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
    for row_index, path_result in enumerate(rows):
        for column, letter in enumerate(path_result["read_as"]):
            ax.text(column * cell + 13, row_index * cell - 1, letter, ha="center", va="bottom", fontsize=6)
    ax.set_xticks([])
    ax.set_yticks([row_index * cell + 14 for row_index in range(n_rows)])
    ax.set_yticklabels([f"{r['start']}-{r['end']} {r['method']}" for r in rows], fontsize=7)
    ax.set_title(title, fontsize=9, pad=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


# --------------------------------------------------------------------------- mode recovery


def letter_events(epochs: list[int], counts: list[list[int]]) -> dict:
    """Return when letters vanish and come back, given letter counts [n_epochs][26] in epoch order.

    A letter is present at an epoch when its count is above zero. Returns
    ``vanished``/``recovered``: lists of {"letter", "epoch"} (the epoch at
    which the change is first seen), ``absent_at_end`` (present at some
    epoch, missing at the last) and ``never_present``.
    """
    present = np.asarray(counts, dtype=float).reshape(len(epochs), NUM_LETTERS) > 0
    vanished, recovered = [], []
    for row in range(1, len(epochs)):
        for index in range(NUM_LETTERS):
            if present[row - 1, index] and not present[row, index]:
                vanished.append({"letter": LETTERS[index], "epoch": epochs[row]})
            elif not present[row - 1, index] and present[row, index]:
                recovered.append({"letter": LETTERS[index], "epoch": epochs[row]})
    ever = present.any(axis=0) if len(epochs) else np.zeros(NUM_LETTERS, dtype=bool)
    at_end = present[-1] if len(epochs) else np.zeros(NUM_LETTERS, dtype=bool)
    return {
        "vanished": vanished,
        "recovered": recovered,
        "absent_at_end": [LETTERS[i] for i in range(NUM_LETTERS) if ever[i] and not at_end[i]],
        "never_present": [LETTERS[i] for i in range(NUM_LETTERS) if not ever[i]],
    }


def mode_recovery_experiment(run_dir, device="cpu", *, n_samples: int = 1000, seed: int | None = None,
                             save_dir=None, font_dir=None) -> dict:
    """Measure coverage and per-letter presence at every saved checkpoint of a run.

    Loads each ``checkpoint_epochNNN.pth`` of ``run_dir``, generates
    ``n_samples`` images from fixed codes (seed: the run's seed) and scores
    them with ``mode_coverage_score``. Returns ``checkpoints`` (per epoch:
    letters covered, counts, missing letters), ``events`` (``letter_events``
    over the checkpoints) and, when the run's log has per-epoch evaluations,
    ``history_events`` over every evaluated epoch. Saves
    ``mode_recovery.png`` (letter presence per checkpoint) to ``save_dir``.
    Raises FileNotFoundError when the run has no epoch checkpoint.
    """
    from problem1.train import load_generator
    from provided.metrics import mode_coverage_score

    run_dir = Path(run_dir)
    paths = sorted(run_dir.glob("checkpoint_epoch*.pth"))
    if not paths:
        raise FileNotFoundError(f"no checkpoint_epochNNN.pth in {run_dir}: train the run first")
    log = _read_training_log(run_dir, required=False)
    config = log.get("config", {}) if log else {}
    if seed is None:
        seed = config.get("seed", 0)
    if font_dir is None:
        font_dir = config.get("data_dir", DEFAULT_FONT_DIR)
    classifier = _load_classifier(font_dir)

    checkpoints = []
    for path in paths:
        generator, contents = load_generator(path, device)
        z = torch.randn(n_samples, generator.z_dim, generator=torch.Generator().manual_seed(seed))
        labels = torch.arange(n_samples) % NUM_LETTERS if generator.conditional else None
        samples = _generate(generator, z, labels, device)
        coverage = mode_coverage_score(samples, lambda images: letter_probabilities(images, classifier))
        checkpoints.append({
            "epoch": int(contents["trainer"]["epoch"]),
            "letters_covered": coverage["n_unique"],
            "letter_counts": [coverage["letter_counts"][letter] for letter in LETTERS],
            "missing_letters": coverage["missing_letters"],
            "effective_letters": coverage["effective_letters"],
        })

    epochs = [entry["epoch"] for entry in checkpoints]
    result = {"checkpoints": checkpoints, "events": letter_events(epochs, [c["letter_counts"] for c in checkpoints])}
    evaluations = (log or {}).get("history", {}).get("evaluations", {})
    if evaluations.get("epoch"):
        result["history_events"] = letter_events(evaluations["epoch"], evaluations["letter_counts"])

    if save_dir is not None:
        save_dir = Path(save_dir)
        save_dir.mkdir(parents=True, exist_ok=True)
        presence = np.asarray([c["letter_counts"] for c in checkpoints], dtype=float)
        figure = Figure(figsize=(11, 0.5 * len(epochs) + 1.5))
        ax = figure.subplots()
        image = ax.imshow(np.log1p(presence), aspect="auto", cmap="magma", interpolation="nearest")
        figure.colorbar(image, ax=ax, label="log(1 + samples read as the letter)")
        ax.set_xticks(range(NUM_LETTERS))
        ax.set_xticklabels(LETTERS)
        ax.set_yticks(range(len(epochs)))
        ax.set_yticklabels([f"epoch {epoch}" for epoch in epochs])
        for row, entry in enumerate(checkpoints):
            for letter in entry["missing_letters"]:
                ax.text(LETTERS.index(letter), row, "x", ha="center", va="center", color="cyan", fontsize=8)
        ax.set_title(f"Letter presence per checkpoint ({n_samples} fixed-z samples; x = missing)")
        figure.tight_layout()
        figure.savefig(save_dir / "mode_recovery.png", dpi=120)
    return result


# --------------------------------------------------------------------------- style consistency


def style_consistency_experiment(generator, device, *, n_styles: int = 10, seed: int = 0, save_path=None) -> dict:
    """Score whether one latent code gives all 26 letters the same style (conditional generators only).

    For each of ``n_styles`` codes z the generator draws A-Z, and
    ``font_consistency_score`` rates the stroke-width agreement of each
    group of 26 (1 = identical widths). As a reference, the same images are
    regrouped so that each group mixes letters from different codes. A
    generator whose z carries the style should score higher on the true
    groups than on the mixed ones.
    An unconditional generator cannot be asked for a given letter, so it
    returns {"skipped": reason} and prints the reason.
    """
    from provided.metrics import font_consistency_score

    if not getattr(generator, "conditional", False):
        reason = "unconditional generator: style consistency needs a generator trained with --conditional"
        print(f"style consistency skipped: {reason}")
        return {"skipped": reason}
    if n_styles < 2:
        raise ValueError(f"n_styles must be at least 2 to build the mixed-code reference, got {n_styles}")

    z = torch.randn(n_styles, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    z_grid = z.repeat_interleave(NUM_LETTERS, dim=0)
    labels = torch.arange(NUM_LETTERS).repeat(n_styles)
    images = _generate(generator, z_grid, labels, device).view(n_styles, NUM_LETTERS, 1, 28, 28)

    # Reference groups: letter j of group i comes from code (i + j) mod n_styles.
    shift = (torch.arange(n_styles)[:, None] + torch.arange(NUM_LETTERS)[None, :]) % n_styles
    mixed = images[shift, torch.arange(NUM_LETTERS)[None, :]]
    per_code = [font_consistency_score(group) for group in images]
    result = {
        "n_styles": n_styles,
        "consistency_same_code": float(np.mean(per_code)),
        "consistency_mixed_codes": font_consistency_score(mixed),
        "per_code": per_code,
    }
    if save_path is not None:
        figure = Figure(figsize=(NUM_LETTERS * 0.45 + 0.5, n_styles * 0.5 + 0.9))
        ax = figure.subplots()
        ax.imshow(image_mosaic(images[:, :, 0]), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_xticks([column * 30 + 14 for column in range(NUM_LETTERS)])
        ax.set_xticklabels(LETTERS, fontsize=7)
        ax.set_yticks([row * 30 + 14 for row in range(n_styles)])
        ax.set_yticklabels([f"z{row}" for row in range(n_styles)], fontsize=7)
        ax.set_title(f"One z per row, letters A-Z (consistency {result['consistency_same_code']:.3f}, "
                     f"mixed-code reference {result['consistency_mixed_codes']:.3f})", fontsize=9)
        figure.tight_layout()
        Path(save_path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(save_path, dpi=110)
    return result


# --------------------------------------------------------------------------- comparison of runs


def _read_training_log(run_dir: Path, required: bool = True) -> dict | None:
    path = Path(run_dir) / "training_log.json"
    if not path.exists():
        if required:
            raise FileNotFoundError(f"{path} not found: pass a run folder written by problem1/train.py")
        return None
    return json.loads(path.read_text())


def run_summary(run_dir) -> dict:
    """Return the final metrics of one run from its training_log.json.

    ``coverage_first_drop``: the first evaluated epoch whose covered-letter
    count is below the best count seen before it (None when it never
    drops). ``vanished_letters``: letters present at some evaluation and
    missing at the last. ``seconds_per_epoch``: median training time per
    epoch, evaluation excluded.
    """
    run_dir = Path(run_dir)
    log = _read_training_log(run_dir)
    history = log["history"]
    evaluations = history.get("evaluations", {})
    if not evaluations.get("epoch"):
        raise ValueError(f"{run_dir}: the log has no evaluations, so there are no metrics to compare")
    covered = evaluations["letters_covered"]
    first_drop = None
    for index in range(1, len(covered)):
        if covered[index] < max(covered[:index]):
            first_drop = evaluations["epoch"][index]
            break
    events = letter_events(evaluations["epoch"], evaluations["letter_counts"])
    seconds = history["epochs"]["seconds"]
    eval_seconds = evaluations.get("seconds", [])
    config = log.get("config", {})
    return {
        "run": run_dir.name,
        "path": str(run_dir),
        "remedy": history.get("remedy", "vanilla"),
        "status": log.get("status"),
        "epochs": history["epochs"]["epoch"][-1] if history["epochs"]["epoch"] else 0,
        "conditional": config.get("conditional", False),
        "final_epoch_evaluated": evaluations["epoch"][-1],
        "letters_covered": covered[-1],
        "effective_letters": evaluations["effective_letters"][-1],
        "recognizable_fraction": evaluations["recognizable_fraction"][-1],
        "fld": evaluations["fld"][-1],
        "best_fld": min(evaluations["fld"]),
        "coverage_first_drop": first_drop,
        "vanished_letters": events["absent_at_end"],
        "missing_letters": evaluations["missing_letters"][-1],
        "seconds_per_epoch": float(np.median(seconds)) if seconds else None,
        "eval_seconds": float(np.median(eval_seconds)) if eval_seconds else None,
        "history": evaluations,
    }


def _format(value, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def comparison_table(summaries: list[dict]) -> str:
    """Return a markdown table of the final metrics, one row per run."""
    header = (
        "| run | remedy | epochs | coverage (of 26) | effective letters | recognisable fraction | FLD "
        "| coverage first drops at epoch | letters vanished by the end | s / epoch |"
    )
    lines = [header, "|" + " --- |" * 10]
    for s in summaries:
        lines.append(
            f"| {s['run']} | {s['remedy']} | {s['epochs']} | {s['letters_covered']} "
            f"| {_format(s['effective_letters'], 1)} | {_format(s['recognizable_fraction'], 3)} "
            f"| {_format(s['fld'], 2)} | {_format(s['coverage_first_drop'])} "
            f"| {' '.join(s['vanished_letters']) or 'none'} | {_format(s['seconds_per_epoch'], 1)} |"
        )
    return "\n".join(lines) + "\n"


def compare_runs(run_dirs, out_dir=COMPARISON_DIR) -> dict:
    """Write comparison.png, comparison.md and comparison.json for ``run_dirs`` into ``out_dir``; return the summaries."""
    from provided.visualize import plot_letter_histogram

    summaries = [run_summary(run_dir) for run_dir in run_dirs]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    n_runs = len(summaries)
    figure = Figure(figsize=(max(12, 4 * n_runs), 8))
    grid = figure.add_gridspec(2, max(2, n_runs))
    ax_cov = figure.add_subplot(grid[0, : max(2, n_runs) // 2])
    ax_eff = figure.add_subplot(grid[0, max(2, n_runs) // 2 :])
    for s in summaries:
        ax_cov.plot(s["history"]["epoch"], s["history"]["letters_covered"], label=s["run"])
        ax_eff.plot(s["history"]["epoch"], s["history"]["effective_letters"], label=s["run"])
    for ax, label in ((ax_cov, "letters covered (of 26)"), (ax_eff, "effective letters (exp entropy)")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_ylim(0, NUM_LETTERS + 1)
        ax.axhline(NUM_LETTERS, color="gray", lw=0.8, ls="--")
        ax.legend()
    top = max(max(s["history"]["letter_counts"][-1]) for s in summaries) or 1
    for column, s in enumerate(summaries):
        ax = figure.add_subplot(grid[1, column])
        title = f"{s['run']}: epoch {s['final_epoch_evaluated']}, {s['letters_covered']}/26"
        plot_letter_histogram(s["history"]["letter_counts"][-1], title=title, ax=ax)
        ax.set_ylim(0, top * 1.05)
        ax.tick_params(axis="x", labelsize=6)
        ax.title.set_fontsize(9)
    figure.suptitle("Mode coverage by run")
    figure.tight_layout()
    figure.savefig(out_dir / "comparison.png", dpi=120)

    table = comparison_table(summaries)
    (out_dir / "comparison.md").write_text(table)
    atomic_write_json([{k: v for k, v in s.items() if k != "history"} for s in summaries], out_dir / "comparison.json")
    return {"summaries": summaries, "table": table}


# --------------------------------------------------------------------------- command line


def evaluate_run(run_dir, device="cpu", *, weights: str = "last", seed: int | None = None) -> dict:
    """Run the three single-run experiments on ``run_dir`` and write ``<run_dir>/evaluation/``."""
    from problem1.train import load_generator

    run_dir = Path(run_dir)
    weights_path = run_dir / ("best_generator.pth" if weights == "best" else "checkpoint_last.pth")
    if not weights_path.exists():
        raise FileNotFoundError(f"{weights_path} not found: train the run first (python problem1/train.py)")
    generator, contents = load_generator(weights_path, device)
    config = contents["config"]
    seed = config["seed"] if seed is None else seed
    font_dir = config["data_dir"]
    out = run_dir / "evaluation"
    results = {
        "weights": str(weights_path),
        "interpolation": interpolation_experiment(generator, device, seed=seed, save_dir=out, font_dir=font_dir),
        "mode_recovery": mode_recovery_experiment(run_dir, device, seed=seed, save_dir=out, font_dir=font_dir),
        "style_consistency": style_consistency_experiment(
            generator, device, seed=seed, save_path=out / "style_consistency.png"
        ),
    }
    atomic_write_json(results, out / "evaluation.json")
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate one letter-GAN run, or compare several.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--run", type=Path, help="run folder for interpolation, mode recovery and style consistency")
    group.add_argument("--runs", type=Path, nargs="+", help="run folders to compare side by side")
    parser.add_argument("--out", type=Path, default=COMPARISON_DIR,
                        help="output folder of the comparison (with --runs; default: %(default)s)")
    parser.add_argument("--weights", choices=("last", "best"), default="last",
                        help="with --run: generator of the last epoch or best_generator.pth (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda or mps (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        device = select_device(args.device)
    except ValueError as error:
        parser.error(str(error))

    runs = [args.run] if args.run is not None else args.runs
    for run_dir in runs:
        if not (run_dir / "training_log.json").exists():
            parser.error(f"{run_dir} is not a run folder (no training_log.json): train it with problem1/train.py")
    if args.out.resolve() in {run_dir.resolve() for run_dir in runs}:
        parser.error(f"--out {args.out} is one of the runs: comparisons go to a folder of their own")

    if args.run is not None:
        try:
            results = evaluate_run(args.run, device, weights=args.weights)
        except (FileNotFoundError, ValueError) as error:
            parser.error(f"cannot evaluate {args.run}: {error}")
        recovery = results["mode_recovery"]
        for entry in recovery["checkpoints"]:
            missing = " ".join(entry["missing_letters"]) or "none"
            print(f"epoch {entry['epoch']:3d}: {entry['letters_covered']}/26 letters, missing: {missing}")
        events = recovery.get("history_events", recovery["events"])
        print("vanished:", ", ".join(f"{e['letter']}@{e['epoch']}" for e in events["vanished"]) or "none")
        print("came back:", ", ".join(f"{e['letter']}@{e['epoch']}" for e in events["recovered"]) or "none")
        style = results["style_consistency"]
        if "skipped" not in style:
            print(f"style consistency: same z {style['consistency_same_code']:.3f}, "
                  f"mixed z {style['consistency_mixed_codes']:.3f}")
        print(f"wrote {args.run / 'evaluation'}")
        return 0

    try:
        comparison = compare_runs(args.runs, args.out)
    except (FileNotFoundError, ValueError) as error:
        parser.error(f"cannot compare the runs: {error}")
    except KeyError as error:
        parser.error(f"cannot compare the runs: a training_log.json lacks the key {error}; "
                     "is every folder a problem1/train.py run?")
    print(comparison["table"])
    print(f"wrote {args.out / 'comparison.png'}, comparison.md and comparison.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
