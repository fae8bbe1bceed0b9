"""Evaluation metrics for both problems.

Letters (Problem 1), all judged by the trained ``LetterClassifier``:

- ``mode_coverage_score``: which letters a generator produces, counting only
  samples the classifier recognises with probability >= 0.9.
- ``frechet_letter_distance``: FID computed on the classifier's 128-d
  penultimate features instead of Inception features.
- ``font_consistency_score``: whether letters drawn from one latent code share
  a stroke width.

Drum patterns (Problem 2): ``drum_pattern_validity`` (rule-based score per
pattern) and ``sequence_diversity`` (mean pairwise Hamming distance). For the
exact likelihood of a pattern use ``provided.drum_oracle.DrumOracle``.

Value ranges: generator outputs are in [-1, 1] (the default ``value_range``),
dataset images in [0, 1]; pass the range you have.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.linalg
import torch

from provided.letter_classifier import (
    DATASET_RANGE,
    GENERATOR_RANGE,
    LETTERS,
    NUM_CLASSES,
    LetterClassifier,
    images_to_ink,
    load_letter_classifier,
)
from provided.paths import DEFAULT_FONT_DIR

CONFIDENCE_THRESHOLD = 0.9  # minimum classifier probability for a sample to count as a recognisable letter
BATCH_SIZE = 1000  # images per classifier forward pass
PROBABILITY_TOLERANCE = 1e-3  # allowed deviation of a probability row's sum from 1

# drum_pattern_validity rules. All five styles place a kick on step 0 and snares on steps 4 and 12.
KICK, SNARE = 0, 1
DOWNBEAT_STEP, BACKBEAT_STEPS = 0, (4, 12)
# Hit-count bounds: 200,000 draws from the true distribution gave a 0.1% quantile of 9 hits
# and a 99.9% quantile of 32, while patterns of independent fair coin flips average 72.
MIN_HITS, MAX_HITS = 8, 36


# ---------------------------------------------------------------------------
# Letter coverage
# ---------------------------------------------------------------------------

def _classifier_probabilities(samples, classifier_fn, value_range, font_dir) -> torch.Tensor:
    """Return letter probabilities [N, 26] (float64, CPU) from classifier_fn or the trained classifier."""
    if classifier_fn is None:
        device = samples.device if isinstance(samples, torch.Tensor) else "cpu"
        classifier = load_letter_classifier(font_dir, device=device, verbose=False)
        with torch.no_grad():
            output = torch.cat([
                classifier.predict_proba(samples[start:start + BATCH_SIZE], value_range).cpu()
                for start in range(0, len(samples), BATCH_SIZE)
            ])
        return output.double()

    output = classifier_fn(samples)
    output = output.detach().cpu() if isinstance(output, torch.Tensor) else torch.as_tensor(np.asarray(output))
    n = len(samples)
    if output.shape == (n,) and not output.is_floating_point():
        if output.min() < 0 or output.max() >= NUM_CLASSES:
            raise ValueError(f"classifier_fn returned class indices outside 0-25: {output.min()}-{output.max()}")
        return torch.nn.functional.one_hot(output.long(), NUM_CLASSES).double()
    if output.shape != (n, NUM_CLASSES):
        raise ValueError(
            f"classifier_fn must return probabilities [N, 26] or integer class indices [N] for N={n}, "
            f"got shape {tuple(output.shape)}"
        )
    output = output.double()
    row_sums = output.sum(dim=1)
    if (output < 0).any() or ((row_sums - 1).abs() > PROBABILITY_TOLERANCE).any():
        raise ValueError(
            "classifier_fn returned rows that are not probabilities (negative or not summing to 1): "
            "apply torch.softmax(logits, dim=1) before returning"
        )
    return output


def mode_coverage_score(generated_samples, classifier_fn=None, *, value_range=GENERATOR_RANGE,
                        confidence_threshold: float = CONFIDENCE_THRESHOLD,
                        font_dir=DEFAULT_FONT_DIR) -> dict:
    """Measure which of the 26 letters a set of generated images covers.

    ``generated_samples``: images [N, 1, 28, 28] or [N, 28, 28] with values in
    ``value_range`` ((-1, 1) for tanh generator outputs, (0, 1) for dataset images).

    ``classifier_fn``: None uses the trained classifier from
    ``load_letter_classifier(font_dir)``. A callable receives the whole batch of
    samples unchanged and returns either letter probabilities [N, 26] (rows
    summing to 1) or integer class indices [N]. Class indices count as
    recognised with certainty.

    A sample is recognisable when its top letter probability is at least
    ``confidence_threshold``. Only recognisable samples are counted. Returns a dict:

    - ``coverage_score``: covered letters / 26, in [0, 1]
    - ``letter_counts``: {letter: recognisable samples read as that letter}, all 26 letters
    - ``missing_letters``: letters with no recognisable sample, alphabetical
    - ``n_unique``: number of covered letters
    - ``effective_letters``: exp(entropy) of the letter distribution of the
      recognisable samples, from 1 (one letter) to 26 (uniform)
    - ``kl_from_uniform``: KL(letter distribution || uniform) = log 26 - entropy, in nats
    - ``recognizable_fraction``: share of all samples that are recognisable
    - ``n_samples``, ``n_recognizable``, ``confidence_threshold``

    With no recognisable sample, ``effective_letters`` and ``kl_from_uniform`` are NaN.
    """
    if isinstance(generated_samples, np.ndarray):
        generated_samples = torch.from_numpy(generated_samples)
    n_samples = len(generated_samples)
    if n_samples == 0:
        raise ValueError("generated_samples is empty: pass at least one image")
    if not 0.0 <= confidence_threshold <= 1.0:
        raise ValueError(f"invalid confidence_threshold {confidence_threshold}: expected a value in [0, 1]")

    probabilities = _classifier_probabilities(generated_samples, classifier_fn, value_range, font_dir)
    confidence, predicted = probabilities.max(dim=1)
    recognizable = confidence >= confidence_threshold
    counts = torch.bincount(predicted[recognizable], minlength=NUM_CLASSES).numpy()

    n_recognizable = int(counts.sum())
    if n_recognizable:
        shares = counts[counts > 0] / n_recognizable
        entropy = float(-(shares * np.log(shares)).sum())
        effective_letters, kl_from_uniform = math.exp(entropy), math.log(NUM_CLASSES) - entropy
    else:
        effective_letters = kl_from_uniform = float("nan")

    n_unique = int((counts > 0).sum())
    return {
        "coverage_score": n_unique / NUM_CLASSES,
        "letter_counts": {letter: int(count) for letter, count in zip(LETTERS, counts)},
        "missing_letters": [letter for letter, count in zip(LETTERS, counts) if count == 0],
        "n_unique": n_unique,
        "effective_letters": effective_letters,
        "kl_from_uniform": kl_from_uniform,
        "recognizable_fraction": n_recognizable / n_samples,
        "n_samples": n_samples,
        "n_recognizable": n_recognizable,
        "confidence_threshold": confidence_threshold,
    }


# ---------------------------------------------------------------------------
# Frechet letter distance
# ---------------------------------------------------------------------------

def letter_feature_statistics(images, value_range, classifier: LetterClassifier | None = None, *,
                              font_dir=DEFAULT_FONT_DIR) -> tuple[np.ndarray, np.ndarray]:
    """Return the mean [128] and covariance [128, 128] (float64) of the classifier's penultimate features.

    ``images``: [N, 1, 28, 28] or [N, 28, 28] in ``value_range``, N >= 2.
    ``classifier``: None loads the trained one for ``font_dir``.
    """
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if len(images) < 2:
        raise ValueError(f"need at least 2 images for a covariance, got {len(images)}")
    if classifier is None:
        classifier = load_letter_classifier(font_dir, verbose=False)
    if len(images) <= classifier.feature_dim:
        warnings.warn(
            f"{len(images)} images give a singular {classifier.feature_dim}-d feature covariance; "
            "use at least a few hundred images for a stable Frechet distance",
            stacklevel=2,
        )
    with torch.no_grad():
        features = torch.cat([
            classifier.features(images[start:start + BATCH_SIZE], value_range).cpu()
            for start in range(0, len(images), BATCH_SIZE)
        ]).double().numpy()
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Return the Frechet distance between Gaussians N(mu1, sigma1) and N(mu2, sigma2).

    d^2 = |mu1 - mu2|^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)), the
    formula of FID (Heusel et al., 2017). When the product is singular and its
    square root is not finite, ``eps`` is added to both diagonals. Imaginary
    parts from round-off are dropped; a large imaginary part raises ValueError.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, dtype=np.float64)), np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64)), np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        raise ValueError(
            f"mismatched shapes: mu {mu1.shape} and {mu2.shape}, sigma {sigma1.shape} and {sigma2.shape}"
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # singular products are handled below
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            offset = np.eye(len(mu1)) * eps
            covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        largest_imaginary = np.abs(np.diagonal(covmean).imag).max()
        if largest_imaginary > 1e-3:
            raise ValueError(f"matrix square root has an imaginary component of {largest_imaginary:.3g}")
        covmean = covmean.real

    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def frechet_letter_distance(real_images, generated_images, *, real_range=DATASET_RANGE,
                            generated_range=GENERATOR_RANGE, classifier: LetterClassifier | None = None,
                            font_dir=DEFAULT_FONT_DIR) -> float:
    """Return the Frechet distance between letter-classifier features of two image sets (lower is closer).

    ``real_images`` default to the dataset range [0, 1], ``generated_images``
    to the generator range [-1, 1]. Like FID, the value is biased upward for
    small sets, so compare runs with the same numbers of images.
    """
    if classifier is None:
        classifier = load_letter_classifier(font_dir, verbose=False)
    mu1, sigma1 = letter_feature_statistics(real_images, real_range, classifier)
    mu2, sigma2 = letter_feature_statistics(generated_images, generated_range, classifier)
    return frechet_distance(mu1, sigma1, mu2, sigma2)


# ---------------------------------------------------------------------------
# Font consistency
# ---------------------------------------------------------------------------

def stroke_width(images, value_range=GENERATOR_RANGE) -> np.ndarray:
    """Estimate each image's stroke width in pixels, float64 [N].

    The glyph is treated as one rectangle-shaped stroke of width w and length L
    with the image's ink area A = wL and boundary length P = 2(w + L), which
    gives w = P/4 - sqrt(P^2/16 - A). A is the sum of the ink map (1 - brightness)
    and P the sum of its gradient magnitude, so anti-aliased edges count
    fractionally. An image with less than one pixel of ink gets width 0.
    """
    ink = images_to_ink(torch.as_tensor(images), value_range).detach().cpu().double().numpy()[:, 0]
    padded = np.pad(ink, ((0, 0), (1, 1), (1, 1)))  # white border, so edges at the image border count too
    dy = padded[:, 1:, :-1] - padded[:, :-1, :-1]
    dx = padded[:, :-1, 1:] - padded[:, :-1, :-1]
    area = ink.sum(axis=(1, 2))
    perimeter = np.hypot(dx, dy).sum(axis=(1, 2))
    width = perimeter / 4 - np.sqrt(np.maximum(perimeter**2 / 16 - area, 0.0))
    return np.where(area >= 1.0, width, 0.0)


def font_consistency_score(generated_samples, *, value_range=GENERATOR_RANGE) -> float:
    """Score from 0 to 1 how consistent the stroke width is across letters drawn from one latent code.

    ``generated_samples``: one group [L, 1, 28, 28] (e.g. the 26 letters a
    conditional generator draws from one z) or M groups [M, L, 1, 28, 28].
    For each group the score is 1 / (1 + CV), where CV is the coefficient of
    variation (std / mean) of ``stroke_width`` over the group's L images:
    1 means identical widths. A group with a blank image (less than one
    pixel of ink) scores 0. Returns the mean over groups.

    Stroke width separates regular, bold and light fonts but not slant or
    proportions, so it measures one aspect of style.
    """
    samples = torch.as_tensor(generated_samples)
    if samples.ndim == 4:
        samples = samples.unsqueeze(0)
    if samples.ndim != 5 or samples.shape[1] < 2 or tuple(samples.shape[2:]) != (1, 28, 28):
        raise ValueError(
            "expected one group [L, 1, 28, 28] or groups [M, L, 1, 28, 28] with L >= 2 letters, "
            f"got {tuple(samples.shape)}"
        )
    n_groups, group_size = samples.shape[:2]
    widths = stroke_width(samples.reshape(-1, 1, 28, 28), value_range).reshape(n_groups, group_size)
    scores = np.zeros(n_groups)
    complete = (widths > 0).all(axis=1)
    variation = widths[complete].std(axis=1) / widths[complete].mean(axis=1)
    scores[complete] = 1.0 / (1.0 + variation)
    return float(scores.mean())


# ---------------------------------------------------------------------------
# Drum patterns
# ---------------------------------------------------------------------------

def _binary_patterns(patterns) -> np.ndarray:
    """Validate and return patterns as a uint8 array [N, 16, 9] of 0/1."""
    if isinstance(patterns, torch.Tensor):
        patterns = patterns.detach().cpu().numpy()
    patterns = np.asarray(patterns)
    if patterns.ndim != 3 or patterns.shape[1:] != (16, 9):
        raise ValueError(f"expected patterns of shape [N, 16, 9] (steps x instruments), got {patterns.shape}")
    if not np.isin(patterns, (0, 1)).all():
        raise ValueError("patterns must be binary (0/1): threshold probabilities first, e.g. (probs > 0.5)")
    return patterns.astype(np.uint8)


def drum_pattern_validity(pattern):
    """Score from 0 to 1 whether a pattern follows the rules that every style in the dataset shares.

    ``pattern``: binary [16, 9] (steps x instruments) returns a float, a batch
    [N, 16, 9] returns float64 [N]. The score is the mean of four checks:
    kick on step 0, snare on step 4, snare on step 12, and a total hit count
    in [MIN_HITS, MAX_HITS] = [8, 36]. Patterns from the true distribution
    score about 0.96 on average because the 5% cell noise can remove a
    required hit. For the exact likelihood use ``DrumOracle.log_prob``.
    """
    if isinstance(pattern, torch.Tensor):
        pattern = pattern.detach().cpu().numpy()
    patterns = np.asarray(pattern)
    single = patterns.ndim == 2
    patterns = _binary_patterns(patterns[None] if single else patterns)

    hits = patterns.reshape(len(patterns), -1).sum(axis=1)
    checks = np.stack([
        patterns[:, DOWNBEAT_STEP, KICK] == 1,
        patterns[:, BACKBEAT_STEPS[0], SNARE] == 1,
        patterns[:, BACKBEAT_STEPS[1], SNARE] == 1,
        (hits >= MIN_HITS) & (hits <= MAX_HITS),
    ], axis=1)
    scores = checks.mean(axis=1)
    return float(scores[0]) if single else scores


def sequence_diversity(patterns) -> float:
    """Return the mean pairwise Hamming distance of binary patterns [N, 16, 9], as a fraction of the 144 cells.

    0 means all N patterns are identical. Over all N(N-1)/2 pairs, a cell with
    c ones among N patterns differs in c(N - c) pairs, so the mean is computed
    from per-cell counts without forming the pairs. Independent fair coin
    flips give about 0.5.
    """
    flat = _binary_patterns(patterns).reshape(len(patterns), -1).astype(np.int64)
    n, n_cells = flat.shape
    if n < 2:
        raise ValueError(f"sequence_diversity needs at least 2 patterns, got {n}")
    ones = flat.sum(axis=0)
    differing_pairs = (ones * (n - ones)).sum()
    return float(differing_pairs / (n * (n - 1) / 2) / n_cells)


# ---------------------------------------------------------------------------
# Reference values
# ---------------------------------------------------------------------------

def main(argv=None) -> None:
    """Print the reference values of the letter metrics on real data and on uniform noise."""
    import argparse
    from pathlib import Path

    from problem1.dataset import FontDataset

    parser = argparse.ArgumentParser(
        description="Print mode coverage and Frechet letter distance reference values for a font dataset."
    )
    parser.add_argument("--font-dir", type=Path, default=DEFAULT_FONT_DIR,
                        help="font dataset folder with train/, val/ and metadata.json (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the uniform noise images (default: %(default)s)")
    args = parser.parse_args(argv)

    classifier = load_letter_classifier(args.font_dir)
    train_images = FontDataset(args.font_dir, "train").images
    val_images = FontDataset(args.font_dir, "val").images
    noise = torch.rand(val_images.shape, generator=torch.Generator().manual_seed(args.seed))

    for name, images in (("val images", val_images), ("uniform noise", noise)):
        result = mode_coverage_score(images, value_range=DATASET_RANGE, font_dir=args.font_dir)
        print(f"coverage of {name} ({len(images)}): {result['n_unique']}/26 letters, effective letters "
              f"{result['effective_letters']:.2f}, recognisable fraction {result['recognizable_fraction']:.4f}")

    def distance(first, second):
        return frechet_letter_distance(first, second, generated_range=DATASET_RANGE, classifier=classifier)

    print(f"Frechet letter distance, train ({len(train_images)}) vs val ({len(val_images)}): "
          f"{distance(train_images, val_images):.3f}")
    print(f"Frechet letter distance, val even vs odd images ({len(val_images) // 2} each): "
          f"{distance(val_images[::2], val_images[1::2]):.3f}")
    print(f"Frechet letter distance, val vs uniform noise ({len(noise)}): {distance(val_images, noise):.1f}")


if __name__ == "__main__":
    main()
