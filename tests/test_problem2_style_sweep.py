"""Style accuracy of generated drum patterns across sampling temperatures."""
import numpy as np
import pytest
import torch

from problem2 import evaluate
from problem2.hierarchical_vae import HierarchicalDrumVAE
from provided.drum_oracle import DrumOracle


@pytest.fixture(scope="module")
def untrained_model():
    torch.manual_seed(0)
    return HierarchicalDrumVAE().eval()


def test_sweep_one_row_per_method_and_temperature(untrained_model, drum_dir):
    oracle = DrumOracle.from_data_dir(drum_dir)
    patterns, styles = oracle.sample(50, seed=0)
    rows = evaluate.style_temperature_sweep(untrained_model, oracle, patterns, styles, [1.0, 0.5],
                                            methods=("region", "centroid"), n_per_style=4)
    assert [(row["method"], row["temperature"]) for row in rows] == [
        ("region", 1.0), ("region", 0.5), ("centroid", 1.0), ("centroid", 0.5)]
    for row in rows:
        assert 0.0 <= row["style_accuracy"] <= 1.0
        assert len(row["style_accuracy_per_style"]) == 5


def test_sweep_lower_temperature_is_sharper(untrained_model, drum_dir):
    oracle = DrumOracle.from_data_dir(drum_dir)
    patterns, styles = oracle.sample(50, seed=0)
    warm, cold = evaluate.style_temperature_sweep(untrained_model, oracle, patterns, styles, [1.0, 0.25],
                                                  methods=("centroid",), n_per_style=20)
    # Dividing the logits by a small temperature pushes cell probabilities to 0 or 1,
    # so the cold samples vary less between draws.
    assert cold["diversity"] < warm["diversity"]


def test_cli_rejects_nonpositive_temperature(capsys):
    assert evaluate.main(["--style-temperatures", "1.0", "0"]) == 1
    assert "invalid --style-temperatures" in capsys.readouterr().err
