"""Training loop and train.py: loss goes down, files are written, resume is exact, NaN guard."""
import json
import shutil

import numpy as np
import pytest
import torch

import problem2.training_utils as training_utils
from problem2 import evaluate, train
from problem2.hierarchical_vae import HierarchicalDrumVAE, load_vae_checkpoint

SUBSET_PER_STYLE = {"train": 32, "val": 8}  # 160 train and 40 val patterns
FAST = ["--batch-size", "32", "--iwae-samples", "20", "--fresh-samples", "50", "--no-progress"]


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Run this module on one torch thread: the model is tiny, and extra threads only wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def subset_dir(drum_dir, tmp_path_factory):
    """A drum folder with an equal-style subset of the generated data, in the same npz layout."""
    target = tmp_path_factory.mktemp("drum_subset")
    with np.load(drum_dir / "patterns.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    for split, per_style in SUBSET_PER_STYLE.items():
        styles = arrays[f"{split}_styles"]
        keep = np.concatenate([np.flatnonzero(styles == s)[:per_style] for s in range(5)])
        arrays[f"{split}_patterns"] = arrays[f"{split}_patterns"][keep]
        arrays[f"{split}_styles"] = styles[keep]
        for name in list(arrays):
            if name.startswith(f"{split}_") and name not in (f"{split}_patterns", f"{split}_styles"):
                arrays[name] = arrays[name][keep]
    np.savez(target / "patterns.npz", **arrays)
    return target


def run_training(out, data_dir, *extra):
    return train.main(["--data-dir", str(data_dir), "--out", str(out), *FAST, *extra])


@pytest.fixture(scope="module")
def finished_run(subset_dir, tmp_path_factory):
    """A 4-epoch run without annealing, so the loss of every epoch has the same weights."""
    out = tmp_path_factory.mktemp("runs") / "plain"
    code = run_training(out, subset_dir, "--epochs", "4", "--anneal", "none", "--eval-every", "2",
                        "--checkpoint-every", "2")
    assert code == 0
    return out


def read_log(out):
    with open(out / "training_log.json") as handle:
        return json.load(handle)


# ---------------------------------------------------------------------------
# A short run on a subset

def test_run_lowers_training_loss(finished_run):
    epochs = read_log(finished_run)["epochs"]
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]


def test_run_lowers_val_loss(finished_run):
    epochs = read_log(finished_run)["epochs"]
    assert epochs[-1]["val_loss"] < epochs[0]["val_loss"]


@pytest.mark.parametrize("name", [
    "training_log.json", "best_model.pth", "last.pth", "evaluation.json", "checkpoints/epoch_002.pth",
    "checkpoints/epoch_004.pth", "visualizations/training_curves.png", "visualizations/samples_epoch_002.png",
])
def test_run_writes_file(finished_run, name):
    assert (finished_run / name).is_file()


def test_log_records_every_epoch(finished_run):
    log = read_log(finished_run)
    assert [record["epoch"] for record in log["epochs"]] == [1, 2, 3, 4]
    assert log["status"] == "finished"
    assert log["seed"] == 641


@pytest.mark.parametrize("key", [
    "train_loss", "val_loss", "train_recon", "val_recon", "val_kl_low", "val_kl_high", "beta",
    "temperature", "active_units_low", "active_units_high",
])
def test_log_epoch_has_key(finished_run, key):
    assert key in read_log(finished_run)["epochs"][0]


def test_log_evaluation_every_second_epoch(finished_run):
    epochs = read_log(finished_run)["epochs"]
    assert ["evaluation" in record for record in epochs] == [False, True, False, True]


def test_final_evaluation_keys(finished_run):
    evaluation = read_log(finished_run)["final_evaluation"]
    assert evaluation["val"]["iwae_samples"] == 20
    assert evaluation["fresh"]["n_patterns"] == 50
    assert 0.0 <= evaluation["reconstruction"]["bit_accuracy"] <= 1.0
    assert 0.0 <= evaluation["generated"]["style_accuracy"] <= 1.0


def test_final_evaluation_kl_consistent(finished_run):
    val = read_log(finished_run)["final_evaluation"]["val"]
    assert val["kl_to_truth"] == pytest.approx(val["nll"] - val["entropy"])


def test_best_model_is_best_val_elbo(finished_run):
    log = read_log(finished_run)
    best = max(log["epochs"], key=lambda record: record["val_elbo"])
    _, checkpoint = load_vae_checkpoint(finished_run / "best_model.pth")
    assert checkpoint["epoch"] == best["epoch"]


def test_best_model_loads_in_eval_mode(finished_run):
    model, checkpoint = load_vae_checkpoint(finished_run / "best_model.pth")
    assert not model.training
    assert checkpoint["model_args"]["z_low_dim"] == 12


def test_refuses_to_overwrite_run(finished_run, subset_dir, capsys):
    code = run_training(finished_run, subset_dir, "--epochs", "4")
    assert code == 1
    assert "--overwrite" in capsys.readouterr().err


def test_run_without_last_checkpoint_needs_overwrite(subset_dir, tmp_path, capsys):
    out = tmp_path / "stopped"
    out.mkdir()
    (out / "best_model.pth").write_bytes(b"written before the first last.pth")
    assert run_training(out, subset_dir, "--epochs", "1") == 1
    message = capsys.readouterr().err
    assert "without last.pth" in message
    assert "pass --overwrite" in message


def test_resume_rejects_changed_setting(finished_run, subset_dir, capsys):
    code = run_training(finished_run, subset_dir, "--epochs", "6", "--resume")
    assert code == 1
    assert "--epochs 6 (stored 4)" in capsys.readouterr().err


def test_overwrite_replaces_run(subset_dir, tmp_path):
    out = tmp_path / "run"
    assert run_training(out, subset_dir, "--epochs", "1", "--eval-every", "0") == 0
    assert run_training(out, subset_dir, "--epochs", "2", "--eval-every", "0", "--overwrite") == 0
    assert len(read_log(out)["epochs"]) == 2


# ---------------------------------------------------------------------------
# Resume

def run_interrupted(out, data_dir, monkeypatch, epoch, *arguments):
    """Run training that Ctrl-C stops during its ``epoch``-th epoch (1-based); return the exit code."""
    original = training_utils.train_one_epoch
    calls = {"count": 0}

    def interrupted(*args, **kwargs):
        calls["count"] += 1
        if calls["count"] == epoch:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(training_utils, "train_one_epoch", interrupted)
    try:
        return run_training(out, data_dir, *arguments)
    finally:
        monkeypatch.setattr(training_utils, "train_one_epoch", original)


def test_resume_matches_uninterrupted_run(subset_dir, tmp_path, monkeypatch):
    # The cosine schedule makes the learning rate depend on the epoch, which the resumed run must restore.
    arguments = ["--epochs", "4", "--eval-every", "0", "--fresh-samples", "0", "--lr-schedule", "cosine"]
    assert run_training(tmp_path / "whole", subset_dir, *arguments) == 0

    assert run_interrupted(tmp_path / "split", subset_dir, monkeypatch, 3, *arguments) == 130
    assert len(read_log(tmp_path / "split")["epochs"]) == 2

    assert run_training(tmp_path / "split", subset_dir, *arguments, "--resume") == 0
    whole = torch.load(tmp_path / "whole" / "last.pth", weights_only=True)["model_state"]
    split = torch.load(tmp_path / "split" / "last.pth", weights_only=True)["model_state"]
    assert all(torch.equal(whole[name], split[name]) for name in whole)
    assert read_log(tmp_path / "split")["epochs"] == read_log(tmp_path / "whole")["epochs"]


def test_resume_of_run_without_lr_schedule(subset_dir, tmp_path, monkeypatch):
    # A run stored before --lr-schedule existed was trained at a constant learning rate.
    out = tmp_path / "old"
    arguments = ["--epochs", "2", "--eval-every", "0", "--fresh-samples", "0"]
    assert run_interrupted(out, subset_dir, monkeypatch, 2, *arguments) == 130
    state = torch.load(out / "last.pth", weights_only=True)
    del state["config"]["lr_schedule"]
    torch.save(state, out / "last.pth")

    assert run_training(out, subset_dir, *arguments, "--resume") == 0
    assert [record["lr"] for record in read_log(out)["epochs"]] == [1e-3, 1e-3]


def test_resume_without_run_fails(subset_dir, tmp_path, capsys):
    assert run_training(tmp_path / "empty", subset_dir, "--resume") == 1
    assert "no run to resume" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# NaN guard

def _loader(batches):
    return [(batch,) for batch in batches]


def test_nan_batch_is_skipped():
    torch.manual_seed(0)
    model = HierarchicalDrumVAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    good = torch.bernoulli(torch.full((4, 16, 9), 0.2))
    bad = good.clone()
    bad[0, 0, 0] = float("nan")
    result = training_utils.train_one_epoch(model, optimizer, _loader([good, bad, good]), "cpu", 1.0, 1.0,
                                            progress=False)
    assert result["nonfinite_steps"] == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_nan_epoch_raises():
    model = HierarchicalDrumVAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    bad = torch.full((4, 16, 9), float("nan"))
    with pytest.raises(FloatingPointError, match="diverged"):
        training_utils.train_one_epoch(model, optimizer, _loader([bad, bad]), "cpu", 1.0, 1.0, progress=False)


def test_nan_batch_leaves_weights_unchanged():
    model = HierarchicalDrumVAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    bad = torch.full((4, 16, 9), float("nan"))
    with pytest.raises(FloatingPointError):
        training_utils.train_one_epoch(model, optimizer, _loader([bad]), "cpu", 1.0, 1.0, progress=False)
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())


# ---------------------------------------------------------------------------
# evaluate.py command line

def test_evaluate_cli_writes_evaluation(finished_run, subset_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    (run_dir / "evaluation.json").unlink()
    code = evaluate.main(["--run", str(run_dir), "--data-dir", str(subset_dir), "--iwae-samples", "10",
                          "--fresh-samples", "0"])
    assert code == 0
    with open(run_dir / "evaluation.json") as handle:
        assert json.load(handle)["val"]["iwae_samples"] == 10
    assert "KL(p_true || model)" in capsys.readouterr().out


def test_evaluate_compare_writes_table(finished_run, subset_dir, tmp_path):
    runs = [tmp_path / "first", tmp_path / "second"]
    for run_dir in runs:
        shutil.copytree(finished_run, run_dir)
    table_path = tmp_path / "comparison.md"
    code = evaluate.main(["--compare", *map(str, runs), "--table", str(table_path), "--data-dir", str(subset_dir)])
    assert code == 0
    lines = table_path.read_text().splitlines()
    assert len(lines) == 4  # header, separator, one row per run
    assert lines[2].startswith("| first | none |")


def test_evaluate_missing_run_fails(tmp_path, capsys):
    assert evaluate.main(["--run", str(tmp_path)]) == 1
    assert "python problem2/train.py" in capsys.readouterr().err


def test_ctrl_c_marks_log_and_exits_cleanly(subset_dir, tmp_path, monkeypatch, capsys):
    real_train = train.train_hierarchical_vae

    def train_then_interrupt(*args, **kwargs):
        real_train(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "train_hierarchical_vae", train_then_interrupt)
    out = tmp_path / "interrupted"
    code = train.main(["--epochs", "1", "--data-dir", str(subset_dir), "--out", str(out), *FAST])
    assert code == 130
    assert "continue with the same --out plus --resume" in capsys.readouterr().err
    assert json.loads((out / "training_log.json").read_text())["status"] == "interrupted"
    assert (out / "last.pth").exists()
