"""Metrics: letter coverage, Frechet letter distance, font consistency, drum validity and diversity."""
import json
import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist

from problem1.dataset import FontDataset
from provided.drum_oracle import DrumOracle
from provided.letter_classifier import load_letter_classifier
from provided.metrics import (
    drum_pattern_validity,
    font_consistency_score,
    frechet_distance,
    frechet_letter_distance,
    letter_feature_statistics,
    mode_coverage_score,
    sequence_diversity,
    stroke_width,
)

LOG_26 = math.log(26)


@pytest.fixture(scope="module")
def classifier(font_dir):
    return load_letter_classifier(font_dir, verbose=False)


@pytest.fixture(scope="module")
def val_set(font_dir):
    return FontDataset(font_dir, "val")


@pytest.fixture(scope="module")
def train_set(font_dir):
    return FontDataset(font_dir, "train")


def uniform_noise(n: int, seed: int = 0) -> torch.Tensor:
    """Uniform noise images [n, 1, 28, 28] in [-1, 1]."""
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def bar_image(width: int, length: int = 20, column: int = 8) -> np.ndarray:
    """A [1, 28, 28] image in [0, 1]: a black vertical bar on white."""
    image = np.ones((1, 28, 28))
    image[0, 4:4 + length, column:column + width] = 0.0
    return image


# ---------------------------------------------------------------------------
# mode_coverage_score with the trained classifier
# ---------------------------------------------------------------------------

def test_coverage_one_letter_repeated(val_set, font_dir):
    letter_a = val_set.images[val_set.labels == 0][:1] * 2 - 1  # generator range
    result = mode_coverage_score(letter_a.repeat(1000, 1, 1, 1), font_dir=font_dir)
    assert result["n_unique"] == 1
    assert result["letter_counts"]["A"] == 1000
    assert result["effective_letters"] == pytest.approx(1.0)
    assert result["kl_from_uniform"] == pytest.approx(LOG_26)
    assert len(result["missing_letters"]) == 25


def test_coverage_real_val_set(val_set, font_dir):
    result = mode_coverage_score(val_set.images, value_range=(0.0, 1.0), font_dir=font_dir)
    assert result["n_unique"] == 26
    assert result["coverage_score"] == 1.0
    assert result["effective_letters"] > 25
    assert result["recognizable_fraction"] > 0.98


def test_coverage_noise_unrecognised(font_dir):
    result = mode_coverage_score(uniform_noise(1000), font_dir=font_dir)
    assert result["recognizable_fraction"] < 0.05


def test_coverage_accepts_unbatched_channel(val_set, font_dir):
    result = mode_coverage_score(val_set.images[:52, 0], value_range=(0.0, 1.0), font_dir=font_dir)
    assert result["n_samples"] == 52


def test_coverage_wrong_range_rejected(val_set, font_dir):
    with pytest.raises(ValueError, match="value_range"):
        mode_coverage_score(val_set.images[:10] * 255, value_range=(0.0, 1.0), font_dir=font_dir)


# ---------------------------------------------------------------------------
# mode_coverage_score with a given classifier_fn (hand-computed)
# ---------------------------------------------------------------------------

def test_coverage_class_indices():
    samples = torch.zeros(4, 1, 28, 28)
    result = mode_coverage_score(samples, classifier_fn=lambda x: torch.tensor([0, 0, 1, 2]))
    entropy = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    assert result["letter_counts"]["A"] == 2
    assert result["n_unique"] == 3
    assert result["coverage_score"] == pytest.approx(3 / 26)
    assert result["effective_letters"] == pytest.approx(math.exp(entropy))
    assert result["kl_from_uniform"] == pytest.approx(LOG_26 - entropy)
    assert result["recognizable_fraction"] == 1.0


def test_coverage_threshold_filters_samples():
    probabilities = torch.full((2, 26), 0.02 / 25)
    probabilities[0, 3] = 0.98  # a confident 'D'
    probabilities[1] = 1 / 26  # no opinion
    result = mode_coverage_score(torch.zeros(2, 1, 28, 28), classifier_fn=lambda x: probabilities)
    assert result["recognizable_fraction"] == 0.5
    assert result["letter_counts"]["D"] == 1
    assert result["n_unique"] == 1


def test_coverage_nothing_recognised_is_nan():
    uniform = torch.full((3, 26), 1 / 26)
    result = mode_coverage_score(torch.zeros(3, 1, 28, 28), classifier_fn=lambda x: uniform)
    assert result["n_unique"] == 0
    assert math.isnan(result["effective_letters"])
    assert math.isnan(result["kl_from_uniform"])


def test_coverage_logits_rejected():
    logits = torch.randn(3, 26, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="softmax"):
        mode_coverage_score(torch.zeros(3, 1, 28, 28), classifier_fn=lambda x: logits)


def test_coverage_index_out_of_range_rejected():
    with pytest.raises(ValueError, match="outside 0-25"):
        mode_coverage_score(torch.zeros(2, 1, 28, 28), classifier_fn=lambda x: torch.tensor([0, 26]))


def test_coverage_empty_rejected():
    with pytest.raises(ValueError, match="empty"):
        mode_coverage_score(torch.zeros(0, 1, 28, 28), classifier_fn=lambda x: torch.zeros(0, dtype=torch.long))


# ---------------------------------------------------------------------------
# Frechet distance
# ---------------------------------------------------------------------------

def test_frechet_distance_hand_computed():
    # |mu1 - mu2|^2 = 3 and Tr(I + 4I - 2 * 2I) = 3.
    assert frechet_distance(np.zeros(3), np.eye(3), np.ones(3), 4 * np.eye(3)) == pytest.approx(6.0)


def test_frechet_distance_one_dimensional():
    # For 1-d Gaussians d^2 = (m1 - m2)^2 + (s1 - s2)^2.
    assert frechet_distance([1.0], [[1.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 4.0)


def test_frechet_distance_singular_covariance():
    sigma = np.diag([1.0, 0.0, 0.0])
    distance = frechet_distance(np.zeros(3), sigma, np.array([0.0, 2.0, 0.0]), sigma)
    assert distance == pytest.approx(4.0, abs=1e-4)


def test_frechet_distance_shape_mismatch_rejected():
    with pytest.raises(ValueError, match="mismatched"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))


def test_feature_statistics_shapes(val_set, classifier):
    mu, sigma = letter_feature_statistics(val_set.images[:300], (0.0, 1.0), classifier)
    assert mu.shape == (128,)
    assert sigma.shape == (128, 128)


def test_fld_identical_sets_zero(val_set, classifier):
    distance = frechet_letter_distance(val_set.images, val_set.images, generated_range=(0.0, 1.0),
                                       classifier=classifier)
    assert distance == pytest.approx(0.0, abs=1e-3)


def test_fld_real_far_below_noise(train_set, val_set, classifier):
    real = frechet_letter_distance(train_set.images, val_set.images, generated_range=(0.0, 1.0),
                                   classifier=classifier)
    noise = frechet_letter_distance(val_set.images, uniform_noise(len(val_set)), classifier=classifier)
    assert real * 100 < noise


def test_fld_one_letter_far_from_all(val_set, classifier):
    letter_a = val_set.images[val_set.labels == 0].repeat(26, 1, 1, 1)
    collapsed = frechet_letter_distance(val_set.images, letter_a, generated_range=(0.0, 1.0),
                                        classifier=classifier)
    halves = frechet_letter_distance(val_set.images[::2], val_set.images[1::2], generated_range=(0.0, 1.0),
                                     classifier=classifier)
    assert halves * 20 < collapsed


# ---------------------------------------------------------------------------
# Stroke width and font consistency
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("width", [2, 4, 6])
def test_stroke_width_of_bar(width):
    assert stroke_width(bar_image(width)[None], (0.0, 1.0)) == pytest.approx([width], abs=0.15)


def test_stroke_width_bar_at_border():
    assert stroke_width(bar_image(3, column=0)[None], (0.0, 1.0)) == pytest.approx([3], abs=0.15)


def test_stroke_width_blank_is_zero():
    assert stroke_width(np.ones((1, 1, 28, 28)), (0.0, 1.0)).tolist() == [0.0]


def test_consistency_equal_widths_is_one():
    group = np.stack([bar_image(3, column=c) for c in (2, 8, 14, 20)])
    assert font_consistency_score(group, value_range=(0.0, 1.0)) == pytest.approx(1.0, abs=1e-9)


def test_consistency_mixed_widths():
    # Widths 2 and 6: coefficient of variation 2 / 4 = 0.5, score 1 / 1.5.
    group = np.stack([bar_image(2), bar_image(6)])
    assert font_consistency_score(group, value_range=(0.0, 1.0)) == pytest.approx(1 / 1.5, abs=0.02)


def test_consistency_blank_member_scores_zero():
    group = np.stack([bar_image(3), np.ones((1, 28, 28))])
    assert font_consistency_score(group, value_range=(0.0, 1.0)) == 0.0


def test_consistency_averages_groups():
    same = np.stack([bar_image(3), bar_image(3)])
    blank = np.stack([bar_image(3), np.ones((1, 28, 28))])
    assert font_consistency_score(np.stack([same, blank]), value_range=(0.0, 1.0)) == pytest.approx(0.5)


def test_consistency_one_style_beats_mixed(train_set, font_dir):
    metadata = json.loads((font_dir / "metadata.json").read_text())
    styles = np.array([entry["font_style"] for entry in metadata["train_samples"]])
    labels = train_set.labels.numpy()

    def alphabet(style_of_letter):
        index = [np.flatnonzero((labels == letter) & (styles == style_of_letter(letter)))[0] for letter in range(26)]
        return train_set.images[index]

    one_style = font_consistency_score(alphabet(lambda letter: "regular"), value_range=(0.0, 1.0))
    mixed = font_consistency_score(alphabet(lambda letter: ("bold", "narrow")[letter % 2]), value_range=(0.0, 1.0))
    assert one_style > mixed + 0.05


def test_consistency_single_image_rejected():
    with pytest.raises(ValueError, match="L >= 2"):
        font_consistency_score(np.ones((1, 1, 28, 28)), value_range=(0.0, 1.0))


# ---------------------------------------------------------------------------
# Drum pattern validity and diversity
# ---------------------------------------------------------------------------

def groove() -> np.ndarray:
    """Kick on 0 and 8, snare on 4 and 12, closed hi-hat on even steps: 12 hits, all rules met."""
    pattern = np.zeros((16, 9), dtype=np.uint8)
    pattern[[0, 8], 0] = 1
    pattern[[4, 12], 1] = 1
    pattern[0:16:2, 2] = 1
    return pattern


def test_validity_full_groove():
    assert drum_pattern_validity(groove()) == 1.0


def test_validity_missing_snare():
    pattern = groove()
    pattern[12, 1] = 0
    assert drum_pattern_validity(pattern) == 0.75


def test_validity_lone_kick():
    pattern = np.zeros((16, 9), dtype=np.uint8)
    pattern[0, 0] = 1  # the kick rule is met, both snares are missing, and 1 hit is below the minimum of 8
    assert drum_pattern_validity(pattern) == 0.25


def test_validity_too_dense():
    assert drum_pattern_validity(np.ones((16, 9))) == 0.75


def test_validity_batch_shape():
    scores = drum_pattern_validity(torch.from_numpy(np.stack([groove(), np.zeros((16, 9), np.uint8)])))
    assert scores.tolist() == [1.0, 0.0]


def test_validity_true_distribution_high():
    patterns, _ = DrumOracle.from_generative_process().sample(5000, seed=0)
    assert drum_pattern_validity(patterns).mean() > 0.9


def test_validity_coin_flips_low():
    patterns = np.random.default_rng(0).integers(0, 2, size=(2000, 16, 9))
    assert drum_pattern_validity(patterns).mean() < 0.6


def test_validity_probabilities_rejected():
    with pytest.raises(ValueError, match="binary"):
        drum_pattern_validity(np.full((16, 9), 0.4))


def test_diversity_identical_is_zero():
    assert sequence_diversity(np.stack([groove()] * 5)) == 0.0


def test_diversity_complements_is_one():
    assert sequence_diversity(np.stack([groove(), 1 - groove()])) == 1.0


def test_diversity_matches_pairwise_hamming():
    patterns = np.random.default_rng(1).integers(0, 2, size=(150, 16, 9))
    expected = pdist(patterns.reshape(150, -1), metric="hamming").mean()
    assert sequence_diversity(patterns) == pytest.approx(expected, abs=1e-12)


def test_diversity_needs_two_patterns():
    with pytest.raises(ValueError, match="at least 2"):
        sequence_diversity(groove()[None])
