"""DrumOracle: exact likelihoods against hand-computed values and the course's own data."""
import math
import warnings

import numpy as np
import pytest
import torch

from provided import drum_process
from provided.drum_oracle import DrumOracle, forward_kl, paired_forward_kl

KICK, SNARE = 0, 1
LOG_HALF = math.log(0.5)


def uniform_oracle() -> DrumOracle:
    """One style with every cell at q = 0.5: every non-silent pattern has p = 2^-144."""
    return DrumOracle(np.full((1, 16, 9), 0.5))


def two_style_oracle(style_weights=None) -> DrumOracle:
    """Two styles that differ only in cell (step 0, snare): q = 0.9 versus q = 0.1."""
    q = np.full((2, 16, 9), 0.5)
    q[0, 0, SNARE] = 0.9
    q[1, 0, SNARE] = 0.1
    return DrumOracle(q, style_weights)


def pattern_with(*cells) -> np.ndarray:
    pattern = np.zeros((16, 9), dtype=np.uint8)
    for step, instrument in cells:
        pattern[step, instrument] = 1
    return pattern


def test_log_prob_uniform_cells():
    log_p = uniform_oracle().log_prob(pattern_with((3, 2), (7, 5)))
    assert log_p == pytest.approx([144 * LOG_HALF], abs=1e-9)


def test_log_prob_single_kick_gets_silent_mass():
    # P(single kick) = P(drawn as such) + P(drawn silent) = 2 * 2^-144.
    log_p = uniform_oracle().log_prob(pattern_with((0, KICK)))
    assert log_p == pytest.approx([143 * LOG_HALF], abs=1e-9)


def test_log_prob_silent_pattern_impossible():
    log_p = uniform_oracle().log_prob(np.zeros((1, 16, 9)))
    assert log_p[0] == -np.inf


def test_log_prob_kick_elsewhere_not_rerouted():
    log_p = uniform_oracle().log_prob(pattern_with((1, KICK)))
    assert log_p == pytest.approx([144 * LOG_HALF], abs=1e-9)


def test_log_prob_two_styles_equal_weights():
    # p = 0.5^143 * (0.5 * 0.9 + 0.5 * 0.1) = 0.5^144
    log_p = two_style_oracle().log_prob(pattern_with((0, SNARE), (5, 3)))
    assert log_p == pytest.approx([144 * LOG_HALF], abs=1e-9)


def test_log_prob_two_styles_unequal_weights():
    # p = 0.5^143 * (0.25 * 0.9 + 0.75 * 0.1) = 0.5^143 * 0.3
    log_p = two_style_oracle([0.25, 0.75]).log_prob(pattern_with((0, SNARE), (5, 3)))
    assert log_p == pytest.approx([143 * LOG_HALF + math.log(0.3)], abs=1e-9)


def test_log_prob_low_density_single_kick():
    # With q = 0.001 everywhere: P(single kick) = 0.001 * 0.999^143 + 0.999^144.
    oracle = DrumOracle(np.full((1, 16, 9), 0.001))
    expected = math.log(0.001 * 0.999**143 + 0.999**144)
    assert oracle.log_prob(pattern_with((0, KICK))) == pytest.approx([expected], rel=1e-12)


def test_posterior_hand_computed():
    posterior = two_style_oracle([0.25, 0.75]).style_posterior(pattern_with((0, SNARE), (5, 3)))
    # 0.25 * 0.9 / 0.3 = 0.75 and 0.75 * 0.1 / 0.3 = 0.25
    assert posterior == pytest.approx(np.array([[0.75, 0.25]]), abs=1e-12)


def test_posterior_rows_sum_to_one():
    oracle = DrumOracle.from_generative_process()
    patterns, _ = oracle.sample(500, seed=1)
    assert oracle.style_posterior(patterns).sum(axis=1) == pytest.approx(np.ones(500), abs=1e-12)


def test_predict_style_picks_likelier_style():
    oracle = two_style_oracle()
    patterns = np.stack([pattern_with((0, SNARE), (9, 4)), pattern_with((9, 4))])
    assert oracle.predict_style(patterns).tolist() == [0, 1]


def test_torch_input_matches_numpy():
    oracle = DrumOracle.from_generative_process()
    patterns, _ = oracle.sample(20, seed=2)
    from_torch = oracle.log_prob(torch.from_numpy(patterns).float())
    assert from_torch == pytest.approx(oracle.log_prob(patterns), abs=1e-12)


def test_non_binary_input_rejected():
    with pytest.raises(ValueError, match="binary"):
        uniform_oracle().log_prob(np.full((2, 16, 9), 0.3))


def test_wrong_shape_rejected():
    with pytest.raises(ValueError, match=r"\[N, 16, 9\]"):
        uniform_oracle().log_prob(np.zeros((2, 9, 16)))


def test_degenerate_probabilities_rejected():
    with pytest.raises(ValueError, match="strictly inside"):
        DrumOracle(np.ones((1, 16, 9)))


def test_entropy_uniform_cells_exact():
    # Every draw has -log p = 144 ln 2, except the single kick (143 ln 2) with probability 2^-143.
    estimate, standard_error = uniform_oracle().entropy(n_samples=1000, seed=0)
    assert estimate == pytest.approx(144 * math.log(2), abs=1e-9)
    assert standard_error == pytest.approx(0.0, abs=1e-9)


def test_bayes_accuracy_one_informative_cell():
    # The posterior of the likelier style is 0.9 whatever the snare cell shows.
    assert two_style_oracle().bayes_accuracy(n_samples=1000, seed=0) == pytest.approx(0.9, abs=1e-12)


def test_sample_cell_frequencies_match_q():
    oracle = DrumOracle.from_generative_process()
    patterns, styles = oracle.sample(25_000, seed=3)
    q = oracle.cell_probabilities
    for style in range(oracle.n_styles):
        chosen = patterns[styles == style]
        standard_error = np.sqrt(q[style] * (1 - q[style]) / len(chosen))
        assert np.abs(chosen.mean(axis=0) - q[style]).max() < 5 * standard_error.max()


def test_sample_style_frequencies_follow_weights():
    oracle = DrumOracle(drum_process.cell_hit_probabilities(), style_weights=[0.6, 0.1, 0.1, 0.1, 0.1])
    _, styles = oracle.sample(20_000, seed=4)
    assert np.mean(styles == 0) == pytest.approx(0.6, abs=0.015)


def test_sample_never_silent():
    oracle = DrumOracle(np.full((1, 16, 9), 0.001))
    patterns, _ = oracle.sample(2000, seed=5)
    assert patterns.reshape(2000, -1).any(axis=1).all()


def test_generative_process_entropy_near_32():
    estimate, standard_error = DrumOracle.from_generative_process().entropy(n_samples=20_000, seed=0)
    assert estimate == pytest.approx(32.0, abs=0.2)
    assert standard_error < 0.1


def test_forward_kl_difference():
    assert forward_kl(40.5, 32.0) == pytest.approx(8.5)


def test_paired_forward_kl_of_true_model_is_zero():
    oracle = DrumOracle.from_generative_process()
    patterns, _ = oracle.sample(200, seed=6)
    estimate, standard_error = paired_forward_kl(oracle, patterns, -oracle.log_prob(patterns))
    assert estimate == pytest.approx(0.0, abs=1e-12)
    assert standard_error == pytest.approx(0.0, abs=1e-12)


def test_paired_forward_kl_uniform_model():
    # A model with q = 0.5 everywhere scores -log q = 144 ln 2 on every pattern.
    oracle = DrumOracle.from_generative_process()
    patterns, _ = oracle.sample(200, seed=7)
    estimate, _ = paired_forward_kl(oracle, patterns, np.full(200, 144 * math.log(2)))
    expected = np.mean(oracle.log_prob(patterns)) + 144 * math.log(2)
    assert estimate == pytest.approx(expected, abs=1e-9)


def test_course_data_falls_back_with_warning(course_data_dir):
    with pytest.warns(UserWarning, match="cell_probabilities"):
        oracle = DrumOracle.from_data_dir(course_data_dir / "drums")
    assert oracle.cell_probabilities == pytest.approx(drum_process.cell_hit_probabilities())


@pytest.mark.parametrize("split", ["train", "val"])
def test_course_data_mean_nll_near_32(course_data_dir, split):
    oracle = DrumOracle.from_generative_process()
    with np.load(course_data_dir / "drums" / "patterns.npz") as archive:
        patterns = archive[f"{split}_patterns"]
    assert np.mean(-oracle.log_prob(patterns)) == pytest.approx(32.0, abs=0.2)


@pytest.mark.parametrize("split", ["train", "val"])
def test_course_data_posterior_matches_labels(course_data_dir, split):
    oracle = DrumOracle.from_generative_process()
    with np.load(course_data_dir / "drums" / "patterns.npz") as archive:
        patterns, styles = archive[f"{split}_patterns"], archive[f"{split}_styles"]
    assert np.mean(oracle.predict_style(patterns) == styles) >= 0.99


def test_generated_data_has_cell_probabilities(drum_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fallback warning would mean the array is missing
        oracle = DrumOracle.from_data_dir(drum_dir)
    assert oracle.cell_probabilities == pytest.approx(drum_process.cell_hit_probabilities())


def test_missing_data_dir_names_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="setup_data.py"):
        DrumOracle.from_data_dir(tmp_path / "nowhere")
