"""Plots: each function writes a non-empty PNG headless, and rejects malformed input."""
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from problem1.models import Generator
from provided.letter_classifier import load_letter_classifier
from provided.visualize import (
    plot_alphabet_grid,
    plot_drum_pattern,
    plot_latent_space_2d,
    plot_letter_histogram,
    plot_letter_survival_heatmap,
    plot_training_history,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 2000


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    return Generator(z_dim=100)


def test_alphabet_grid_png(generator, tmp_path):
    figure = plot_alphabet_grid(generator, "cpu", 100, 641, save_path=tmp_path / "grid.png")
    assert isinstance(figure, Figure)
    assert_png(tmp_path / "grid.png")


def test_alphabet_grid_conditional_captions(font_dir, tmp_path):
    torch.manual_seed(0)
    conditional = Generator(z_dim=100, conditional=True)
    classifier = load_letter_classifier(font_dir, verbose=False)
    figure = plot_alphabet_grid(conditional, n_rows=1, classifier=classifier, save_path=tmp_path / "grid.png")
    assert_png(tmp_path / "grid.png")
    assert len([ax for ax in figure.axes if ax.get_title()]) == 26


def test_alphabet_grid_keeps_rng_and_mode(generator):
    generator.train()
    torch.manual_seed(3)
    expected = torch.rand(2)
    torch.manual_seed(3)
    plot_alphabet_grid(generator)
    assert torch.equal(torch.rand(2), expected)
    assert generator.training


def test_alphabet_grid_z_dim_mismatch(generator):
    with pytest.raises(ValueError, match="z_dim=64"):
        plot_alphabet_grid(generator, z_dim=64)


def test_training_history_flat_png(tmp_path):
    history = {
        "d_loss": [1.3, 1.1, 0.9, 0.8],
        "g_loss": [0.7, 0.9, 1.2, 1.4],
        "epoch": [0.0, 0.5, 1.0, 1.5],
        "mode_coverage": [0.4, 0.6],
    }
    figure = plot_training_history(history, save_path=tmp_path / "history.png")
    assert_png(tmp_path / "history.png")
    assert len(figure.axes) == 2  # losses and coverage; no d_real/d_fake in this history


def test_training_history_nested_png(tmp_path):
    steps = {"step": [1, 2, 3], "epoch": [1, 1, 1], "d_loss": [1.3, 1.2, 1.1], "g_loss": [0.7, 0.8, 0.9],
             "d_real": [0.6, 0.7, 0.7], "d_fake": [0.4, 0.3, 0.3]}
    evaluations = {"epoch": [1], "letters_covered": [20], "effective_letters": [17.5],
                   "letter_counts": [[10] * 26]}
    history = {"steps": steps, "epochs": {"epoch": [1]}, "evaluations": evaluations}
    figure = plot_training_history(history, save_path=tmp_path / "history.png")
    assert_png(tmp_path / "history.png")
    assert len(figure.axes) == 3


def test_training_history_nothing_to_plot():
    with pytest.raises(ValueError, match="no plottable series"):
        plot_training_history({"remedy": "vanilla"})


def test_drum_pattern_png(tmp_path):
    pattern = np.zeros((16, 9))
    pattern[[0, 8], 0] = 1
    pattern[[4, 12], 1] = 1
    plot_drum_pattern(pattern, title="groove", save_path=tmp_path / "roll.png")
    assert_png(tmp_path / "roll.png")


def test_drum_pattern_into_given_axes():
    figure = Figure()
    ax = figure.subplots()
    assert plot_drum_pattern(torch.rand(32, 9), ax=ax) is figure


def test_drum_pattern_logits_rejected():
    with pytest.raises(ValueError, match="sigmoid"):
        plot_drum_pattern(np.full((16, 9), 3.0))


def test_drum_pattern_wrong_instruments_rejected():
    with pytest.raises(ValueError, match=r"\[steps, 9\]"):
        plot_drum_pattern(np.zeros((16, 8)))


def test_latent_space_tsne_png(tmp_path):
    rng = np.random.default_rng(0)
    codes = np.concatenate([rng.normal(0, 1, (20, 6)), rng.normal(5, 1, (20, 6))])
    labels = np.repeat([0, 1], 20)
    plot_latent_space_2d(codes, labels, label_names=["rock", "jazz"], save_path=tmp_path / "latent.png")
    assert_png(tmp_path / "latent.png")


def test_latent_space_few_points():
    figure = plot_latent_space_2d(np.random.default_rng(1).normal(size=(4, 8)), [0, 1, 2, 3])
    assert "perplexity 1.0" in figure.axes[0].get_xlabel()


def test_latent_space_2d_skips_tsne():
    figure = plot_latent_space_2d(np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]), ["a", "b", "a"])
    assert figure.axes[0].get_xlabel() == "latent 1"


def test_latent_space_label_count_mismatch():
    with pytest.raises(ValueError, match="labels has 2 entries"):
        plot_latent_space_2d(np.zeros((3, 4)), [0, 1])


def test_survival_heatmap_png(tmp_path):
    shares = np.full((5, 26), 1 / 26)
    shares[3:, :10] = 0.0
    plot_letter_survival_heatmap([10, 20, 30, 40, 50], shares, save_path=tmp_path / "survival.png")
    assert_png(tmp_path / "survival.png")


def test_survival_heatmap_shape_mismatch():
    with pytest.raises(ValueError, match=r"\[n_epochs=3, 26\]"):
        plot_letter_survival_heatmap([1, 2, 3], np.zeros((3, 25)))


def test_letter_histogram_png(tmp_path):
    counts = {letter: 40 for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
    counts["Q"] = counts["X"] = 0
    figure = plot_letter_histogram(counts, save_path=tmp_path / "histogram.png")
    assert_png(tmp_path / "histogram.png")
    assert figure.axes[0].get_title() == "Letters covered: 24/26, missing: QX"


def test_letter_histogram_from_array():
    figure = plot_letter_histogram(np.arange(26))
    assert figure.axes[0].get_title() == "Letters covered: 25/26, missing: A"


def test_letter_histogram_bad_key():
    with pytest.raises(ValueError, match="not letters"):
        plot_letter_histogram({"a": 3})
