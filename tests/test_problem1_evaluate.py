"""Interpolation helpers, letter events, the run comparison, and evaluate.py on a tiny real run."""
import json
import math

import pytest
import torch

from problem1 import evaluate, train
from problem1.models import Generator

LETTERS = [chr(ord("A") + i) for i in range(26)]


def counts_with(present):
    """Letter counts [26] with 10 samples for each letter in ``present`` and 0 elsewhere."""
    return [10 if letter in present else 0 for letter in LETTERS]


def write_fake_log(run_dir, covered_sequence, present_sequence, seconds=(2.0, 4.0, 3.0)):
    """Write a training_log.json whose evaluations follow the given per-epoch letters."""
    run_dir.mkdir(parents=True)
    epochs = list(range(1, len(covered_sequence) + 1))
    evaluations = {
        "epoch": epochs,
        "letters_covered": covered_sequence,
        "letter_counts": [counts_with(present) for present in present_sequence],
        "missing_letters": [[x for x in LETTERS if x not in present] for present in present_sequence],
        "effective_letters": [float(c) for c in covered_sequence],
        "recognizable_fraction": [0.5] * len(epochs),
        "fld": [30.0 - e for e in epochs],
        "seconds": [0.2] * len(epochs),
    }
    log = {
        "config": {"experiment": "vanilla", "fix": None, "conditional": False},
        "status": "finished",
        "history": {
            "remedy": "vanilla",
            "epochs": {"epoch": epochs, "seconds": list(seconds)[: len(epochs)]},
            "evaluations": evaluations,
        },
    }
    (run_dir / "training_log.json").write_text(json.dumps(log))


# --------------------------------------------------------------------------- latent paths


def test_lerp_midpoint_norm():
    path = evaluate.lerp(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), 3)
    assert torch.allclose(path[1], torch.tensor([0.5, 0.5]))
    assert path[1].norm().item() == pytest.approx(math.sqrt(0.5))


def test_slerp_keeps_unit_norm():
    path = evaluate.slerp(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), 3)
    assert torch.allclose(path[0], torch.tensor([1.0, 0.0]))
    assert torch.allclose(path[2], torch.tensor([0.0, 1.0]), atol=1e-6)
    assert torch.allclose(path[1], torch.tensor([math.sqrt(0.5), math.sqrt(0.5)]))


def test_slerp_parallel_codes_fall_back():
    z = torch.tensor([1.0, 2.0])
    assert torch.allclose(evaluate.slerp(z, 2 * z, 3), evaluate.lerp(z, 2 * z, 3))


# --------------------------------------------------------------------------- letter events


def test_letter_events_hand_made():
    events = evaluate.letter_events(
        [1, 5, 9], [counts_with("AB"), counts_with("B"), counts_with("A")]
    )
    assert events["vanished"] == [{"letter": "A", "epoch": 5}, {"letter": "B", "epoch": 9}]
    assert events["recovered"] == [{"letter": "A", "epoch": 9}]
    assert events["absent_at_end"] == ["B"]
    assert "C" in events["never_present"]
    assert "A" not in events["never_present"]


def test_run_summary_first_drop(tmp_path):
    write_fake_log(tmp_path / "run", [2, 3, 2], ["AB", "ABC", "AB"])
    summary = evaluate.run_summary(tmp_path / "run")
    assert summary["coverage_first_drop"] == 3
    assert summary["vanished_letters"] == ["C"]
    assert summary["letters_covered"] == 2
    assert summary["fld"] == 27.0
    assert summary["seconds_per_epoch"] == 3.0


def test_run_summary_never_drops(tmp_path):
    write_fake_log(tmp_path / "run", [2, 3], ["AB", "ABC"])
    assert evaluate.run_summary(tmp_path / "run")["coverage_first_drop"] is None


def test_compare_runs_writes_outputs(tmp_path):
    write_fake_log(tmp_path / "vanilla", [2, 3, 2], ["AB", "ABC", "AB"])
    write_fake_log(tmp_path / "fixed_feature_matching", [3, 3, 3], ["ABC", "ABC", "ABC"])
    out = tmp_path / "comparison"
    code = evaluate.main(["--runs", str(tmp_path / "vanilla"), str(tmp_path / "fixed_feature_matching"),
                          "--out", str(out)])
    assert code == 0
    assert (out / "comparison.png").is_file()
    table = (out / "comparison.md").read_text()
    assert "| vanilla | vanilla | 3 | 2 |" in table
    assert "| fixed_feature_matching | vanilla | 3 | 3 |" in table
    assert len(json.loads((out / "comparison.json").read_text())) == 2


def test_compare_rejects_folder_without_log(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        evaluate.main(["--runs", str(tmp_path / "empty")])
    assert "no training_log.json" in capsys.readouterr().err


def test_compare_rejects_out_inside_runs(tmp_path, capsys):
    write_fake_log(tmp_path / "vanilla", [2], ["AB"])
    with pytest.raises(SystemExit):
        evaluate.main(["--runs", str(tmp_path / "vanilla"), "--out", str(tmp_path / "vanilla")])
    assert "folder of their own" in capsys.readouterr().err


# --------------------------------------------------------------------------- style consistency


def test_style_consistency_skips_unconditional(capsys):
    result = evaluate.style_consistency_experiment(Generator(), "cpu")
    assert "skipped" in result
    assert "style consistency skipped" in capsys.readouterr().out


def test_style_consistency_conditional(tmp_path):
    torch.manual_seed(0)
    result = evaluate.style_consistency_experiment(
        Generator(conditional=True), "cpu", n_styles=3, save_path=tmp_path / "style.png"
    )
    assert len(result["per_code"]) == 3
    assert 0.0 <= result["consistency_same_code"] <= 1.0
    assert 0.0 <= result["consistency_mixed_codes"] <= 1.0
    assert (tmp_path / "style.png").is_file()


# --------------------------------------------------------------------------- evaluate.py --run on a real run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, font_dir):
    out = tmp_path_factory.mktemp("p1eval") / "vanilla"
    code = train.main(["--epochs", "2", "--checkpoint-epochs", "1", "--subset", "64", "--batch-size", "32",
                       "--eval-samples", "200", "--no-progress", "--device", "cpu",
                       "--data-dir", str(font_dir), "--out", str(out)])
    assert code == 0
    return out


def test_evaluate_single_run_writes_files(tiny_run):
    assert evaluate.main(["--run", str(tiny_run)]) == 0
    folder = tiny_run / "evaluation"
    for name in ("evaluation.json", "mode_recovery.png", "interpolation_pairs.png", "interpolation_alphabet.png"):
        assert (folder / name).is_file(), name
    results = json.loads((folder / "evaluation.json").read_text())
    assert [entry["epoch"] for entry in results["mode_recovery"]["checkpoints"]] == [1, 2]
    assert len(results["interpolation"]["alphabet"]) == 25
    assert "skipped" in results["style_consistency"]
    assert "history_events" in results["mode_recovery"]



def test_evaluate_rejects_folder_without_checkpoint(tmp_path, capsys):
    run_dir = tmp_path / "log_only"
    run_dir.mkdir()
    (run_dir / "training_log.json").write_text('{"status": "finished", "config": {}}')
    with pytest.raises(SystemExit) as raised:
        evaluate.main(["--run", str(run_dir)])
    assert raised.value.code == 2
    assert "checkpoint_last.pth not found" in capsys.readouterr().err


def test_compare_rejects_foreign_log(tmp_path, capsys):
    run_dir = tmp_path / "foreign"
    run_dir.mkdir()
    (run_dir / "training_log.json").write_text('{"status": "finished", "config": {}}')
    with pytest.raises(SystemExit) as raised:
        evaluate.main(["--runs", str(run_dir), "--out", str(tmp_path / "comparison")])
    assert raised.value.code == 2
    assert "cannot compare the runs" in capsys.readouterr().err
