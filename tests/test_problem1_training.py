"""GAN losses, the training step, the NaN guard, and train.py end to end (run folder, resume, CLI checks)."""
import json
import math

import pytest
import torch

import problem1.training_dynamics as dynamics
from problem1 import train
from problem1.fixes import FeatureMatching, Remedy
from problem1.models import Discriminator, Generator
from problem1.training_dynamics import (
    GANTrainer,
    ShuffledBatches,
    TrainingDiverged,
    discriminator_loss_from_logits,
    generator_nonsaturating_loss,
    train_gan,
)

# A small but real run: 96 training images, batches of 32, 200 evaluation samples.
TINY_RUN = ["--subset", "96", "--batch-size", "32", "--eval-samples", "200", "--no-progress", "--device", "cpu"]


def synthetic_batches(n=48, batch_size=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, 28, 28, generator=generator)
    labels = torch.randint(0, 26, (n,), generator=generator)
    return ShuffledBatches(images, labels, batch_size, seed=seed)


# --------------------------------------------------------------------------- losses


def test_discriminator_loss_hand_computed():
    loss = discriminator_loss_from_logits(torch.tensor([[2.0]]), torch.tensor([[-1.0]]))
    expected = math.log1p(math.exp(-2.0)) + math.log1p(math.exp(-1.0))
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_discriminator_loss_at_chance():
    loss = discriminator_loss_from_logits(torch.zeros(8, 1), torch.zeros(8, 1))
    assert loss.item() == pytest.approx(2 * math.log(2), rel=1e-6)


def test_generator_loss_hand_computed():
    loss = generator_nonsaturating_loss(torch.tensor([[0.5], [-3.0]]))
    expected = (math.log1p(math.exp(-0.5)) + math.log1p(math.exp(3.0))) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)


# --------------------------------------------------------------------------- data order


def test_shuffled_batches_cover_every_image():
    batches = ShuffledBatches(torch.rand(10, 1, 28, 28), torch.arange(10), batch_size=4)
    sizes = [len(labels) for _, labels in batches]
    seen = torch.cat([labels for _, labels in batches])
    assert sizes == [4, 4, 2]
    assert len(batches) == 3
    assert sorted(seen.tolist()) == list(range(10))


def test_shuffled_batches_state_restores_order():
    first = ShuffledBatches(torch.rand(20, 1, 28, 28), torch.arange(20), batch_size=5, seed=3)
    list(first)
    state = first.state_dict()
    expected = torch.cat([labels for _, labels in first])

    second = ShuffledBatches(torch.rand(20, 1, 28, 28), torch.arange(20), batch_size=5, seed=99)
    second.load_state_dict(state)
    assert torch.equal(torch.cat([labels for _, labels in second]), expected)


# --------------------------------------------------------------------------- training step


def test_train_step_updates_both_networks():
    torch.manual_seed(0)
    trainer = GANTrainer(Generator(), Discriminator(), "cpu")
    g_before = [p.detach().clone() for p in trainer.generator.parameters()]
    d_before = [p.detach().clone() for p in trainer.discriminator.parameters()]
    images, labels = next(iter(synthetic_batches()))
    stats, remedy_stats = trainer.train_step(images, labels)
    assert stats.shape == (len(dynamics.STEP_KEYS),)
    assert torch.isfinite(stats).all()
    assert remedy_stats == {}
    assert all(not torch.equal(a, b) for a, b in zip(g_before, trainer.generator.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(d_before, trainer.discriminator.parameters()))


def test_joint_pass_only_without_batch_coupling():
    plain = GANTrainer(Generator(), Discriminator(), "cpu")
    coupled_discriminator = Discriminator()
    coupled_discriminator.classifier = torch.nn.Sequential(torch.nn.BatchNorm1d(2304), torch.nn.Linear(2304, 1))
    coupled = GANTrainer(Generator(), coupled_discriminator, "cpu")
    assert plain.joint_discriminator_pass is True
    assert coupled.joint_discriminator_pass is False


def test_train_gan_history_lengths():
    torch.manual_seed(0)
    history = train_gan(Generator(), Discriminator(), synthetic_batches(), 2, "cpu", progress=False)
    assert history["remedy"] == "vanilla"
    assert history["epochs"]["epoch"] == [1, 2]
    assert history["steps"]["step"] == list(range(1, 7))
    for key in dynamics.STEP_KEYS:
        assert len(history["steps"][key]) == 6


def test_train_gan_feature_matching_logs_distance():
    torch.manual_seed(0)
    history = train_gan(
        Generator(), Discriminator(), synthetic_batches(), 1, "cpu", remedy=FeatureMatching(), progress=False
    )
    assert history["remedy"] == "feature_matching"
    assert len(history["steps"]["feature_distance"]) == 3
    assert all(value >= 0 for value in history["steps"]["feature_distance"])


def test_nan_loss_raises_and_keeps_history(monkeypatch):
    torch.manual_seed(0)
    trainer = GANTrainer(Generator(), Discriminator(), "cpu")
    trainer.train_epoch(synthetic_batches(), progress=False)
    monkeypatch.setattr(dynamics, "generator_nonsaturating_loss", lambda logits: logits.mean() * float("nan"))
    with pytest.raises(TrainingDiverged, match="diverged at epoch 2"):
        trainer.train_epoch(synthetic_batches(), progress=False)
    assert trainer.epoch == 1
    assert trainer.history["epochs"]["epoch"] == [1]
    assert len(trainer.history["steps"]["step"]) == 3


def test_exploding_loss_raises():
    torch.manual_seed(0)
    trainer = GANTrainer(Generator(), Discriminator(), "cpu", max_loss=1e-3)
    with pytest.raises(TrainingDiverged, match=r"limits \|d_loss\| <= 0.001"):
        trainer.train_epoch(synthetic_batches(), progress=False)


class OffsetLoss(Remedy):
    """Test remedy: a generator loss of about 100, far above any BCE value."""

    name = "offset"

    def generator_loss(self, *, generator, discriminator, real_images, z, class_label, d_optimizer):
        return 100.0 + generator(z, class_label).mean(), {}


def test_remedy_loss_skips_bce_ceiling():
    torch.manual_seed(0)
    trainer = GANTrainer(Generator(), Discriminator(), "cpu", remedy=OffsetLoss(), max_loss=10.0)
    record = trainer.train_epoch(synthetic_batches(), progress=False)
    assert record["g_loss"] > 10.0
    assert trainer.epoch == 1


def test_remedy_ceiling_applies_when_set():
    torch.manual_seed(0)
    remedy = OffsetLoss()
    remedy.max_generator_loss = 10.0
    trainer = GANTrainer(Generator(), Discriminator(), "cpu", remedy=remedy)
    with pytest.raises(TrainingDiverged, match=r"\|g_loss\| <= 10"):
        trainer.train_epoch(synthetic_batches(), progress=False)


# --------------------------------------------------------------------------- train.py end to end


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, font_dir):
    """Two epochs without interruption, keeping a checkpoint at epoch 1."""
    out = tmp_path_factory.mktemp("p1") / "straight"
    code = train.main(["--epochs", "2", "--checkpoint-epochs", "1", "--data-dir", str(font_dir),
                       "--out", str(out), *TINY_RUN])
    assert code == 0
    return out


def test_run_writes_every_file(straight_run):
    expected = [
        "training_log.json", "checkpoint_last.pth", "checkpoint_epoch001.pth", "checkpoint_epoch002.pth",
        "best_generator.pth", "mode_collapse_analysis.png", "visualizations/letters_epoch001.png",
        "visualizations/letters_epoch002.png", "visualizations/letter_histogram_final.png",
        "visualizations/interpolation_pairs.png",
    ]
    for name in expected:
        assert (straight_run / name).is_file(), name


def test_run_log_contents(straight_run):
    log = json.loads((straight_run / "training_log.json").read_text())
    assert log["status"] == "finished"
    assert log["config"]["experiment"] == "vanilla"
    assert log["seed"] == 641
    assert log["steps_per_epoch"] == 3
    assert len(log["history"]["epochs"]["seconds"]) == 2
    assert log["history"]["evaluations"]["epoch"] == [1, 2]
    assert len(log["history"]["evaluations"]["letter_counts"][0]) == 26
    assert "torch" in log["software"]


def test_resume_matches_uninterrupted_run(straight_run, tmp_path, font_dir):
    out = tmp_path / "split"
    common = ["--checkpoint-epochs", "1", "--data-dir", str(font_dir), "--out", str(out), *TINY_RUN]
    assert train.main(["--epochs", "1", *common]) == 0
    assert train.main(["--epochs", "2", "--resume", *common]) == 0

    straight = torch.load(straight_run / "checkpoint_last.pth", weights_only=True)["trainer"]
    resumed = torch.load(out / "checkpoint_last.pth", weights_only=True)["trainer"]
    assert resumed["epoch"] == 2
    for network in ("generator", "discriminator"):
        for name, tensor in straight[network].items():
            assert torch.equal(tensor, resumed[network][name]), f"{network}.{name}"
    assert straight["history"]["steps"]["d_loss"] == resumed["history"]["steps"]["d_loss"]


def test_diverged_run_keeps_last_good_checkpoint(tmp_path, font_dir, monkeypatch, capsys):
    real_loss = dynamics.generator_nonsaturating_loss
    calls = {"n": 0}

    def loss_turning_nan(logits):
        calls["n"] += 1
        loss = real_loss(logits)
        return loss * float("nan") if calls["n"] > 3 else loss  # epoch 1 has 3 steps

    monkeypatch.setattr(dynamics, "generator_nonsaturating_loss", loss_turning_nan)
    out = tmp_path / "nan"
    code = train.main(["--epochs", "2", "--data-dir", str(font_dir), "--out", str(out), *TINY_RUN])
    assert code == 1
    assert "diverged at epoch 2" in capsys.readouterr().err
    log = json.loads((out / "training_log.json").read_text())
    assert log["status"] == "diverged"
    checkpoint = torch.load(out / "checkpoint_last.pth", weights_only=True)
    assert checkpoint["trainer"]["epoch"] == 1


def test_interrupted_run_keeps_finished_epoch(tmp_path, font_dir, monkeypatch, capsys):
    real_train_epoch = GANTrainer.train_epoch

    def interrupt_second_epoch(self, *args, **kwargs):
        if self.epoch == 1:
            raise KeyboardInterrupt
        return real_train_epoch(self, *args, **kwargs)

    monkeypatch.setattr(GANTrainer, "train_epoch", interrupt_second_epoch)
    out = tmp_path / "interrupted"
    code = train.main(["--epochs", "2", "--data-dir", str(font_dir), "--out", str(out), *TINY_RUN])
    assert code == 130
    assert "continue with the same options plus --resume" in capsys.readouterr().err
    assert json.loads((out / "training_log.json").read_text())["status"] == "interrupted"
    assert torch.load(out / "checkpoint_last.pth", weights_only=True)["trainer"]["epoch"] == 1


def test_interrupt_in_first_epoch_allows_rerun(tmp_path, font_dir, monkeypatch, capsys):
    def interrupt_at_once(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(GANTrainer, "train_epoch", interrupt_at_once)
    out = tmp_path / "interrupted_early"
    code = train.main(["--epochs", "2", "--data-dir", str(font_dir), "--out", str(out), *TINY_RUN])
    assert code == 130
    assert "nothing to resume; rerun the same command" in capsys.readouterr().err
    assert not (out / "checkpoint_last.pth").exists()
    args = train.parse_args(["--epochs", "2", "--data-dir", str(font_dir), "--out", str(out), *TINY_RUN])
    assert train.prepare_run_folder(args) is None


def test_bad_data_folder_is_reported_before_any_output(tmp_path, font_dir, capsys):
    empty = tmp_path / "not_fonts"
    empty.mkdir()
    out = tmp_path / "never_created"
    assert train.main(["--data-dir", str(empty), "--out", str(out)]) == 2
    assert "metadata.json not found" in capsys.readouterr().err
    assert not out.exists()


# --------------------------------------------------------------------------- command-line checks


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--epochs", "0"], "--epochs must be a positive integer"),
        (["--lr=-1e-3"], "--lr must be a positive number"),
        (["--batch-size", "0"], "--batch-size must be a positive integer"),
        (["--fix", "dropout"], "unknown --fix 'dropout'"),
        (["--data-dir", "/nonexistent/fonts"], "/nonexistent/fonts not found: run python setup_data.py"),
        (["--fix", "minibatch"], "--fix minibatch needs --experiment fixed"),
        (["--experiment", "fixed", "--fix", "minibatch", "--unroll-steps", "3"],
         "--unroll-steps: used only with --experiment fixed and the matching --fix"),
        (["--mbd-kernels", "8"], "--mbd-kernels: used only with --experiment fixed"),
        (["--mbd-statistic", "sum"], "--mbd-statistic: used only with --experiment fixed"),
        (["--experiment", "fixed", "--fix", "minibatch", "--mbd-hidden", "-1"],
         "--mbd-hidden must be an integer >= 0, got -1"),
    ],
)
def test_cli_rejects_bad_value(arguments, message, font_dir, capsys):
    if "--data-dir" not in arguments:
        arguments = [*arguments, "--data-dir", str(font_dir)]
    with pytest.raises(SystemExit) as raised:
        train.parse_args(arguments)
    assert raised.value.code == 2
    assert message in capsys.readouterr().err


def test_remedy_options_always_recorded(font_dir):
    # Every option is recorded with its default filled in, so resuming with a default value given
    # explicitly matches the stored run.
    fixed = ["--experiment", "fixed", "--data-dir", str(font_dir)]
    default = train.parse_args([*fixed, "--fix", "minibatch"])
    paper = train.parse_args([*fixed, "--fix", "minibatch", "--mbd-statistic", "sum", "--mbd-hidden", "0"])
    unrolled = train.parse_args([*fixed, "--fix", "unrolled", "--unroll-steps", "3", "--unroll-first-order"])
    assert default.remedy_options == {"num_kernels": 100, "kernel_dim": 5, "statistic": "mean", "hidden_features": 64}
    assert paper.remedy_options == {"num_kernels": 100, "kernel_dim": 5, "statistic": "sum", "hidden_features": 0}
    assert unrolled.remedy_options == {"unroll_steps": 3, "differentiate_through_unroll": False}
    assert train.parse_args([*fixed, "--fix", "feature_matching"]).remedy_options == {}


def test_remedy_differences_name_flags():
    current = {"num_kernels": 100, "kernel_dim": 5, "statistic": "mean", "hidden_features": 32}
    stored = {"num_kernels": 100, "kernel_dim": 5, "statistic": "mean", "hidden_features": 64}
    differences = train.remedy_option_differences("minibatch", stored, current)
    assert differences == ["--mbd-hidden setting hidden_features was 64, now 32"]


def test_remedy_differences_old_minibatch_run():
    # A minibatch checkpoint that recorded no options trained with the summed closeness and a linear head.
    paper = {"num_kernels": 100, "kernel_dim": 5, "statistic": "sum", "hidden_features": 0}
    default = {"num_kernels": 100, "kernel_dim": 5, "statistic": "mean", "hidden_features": 64}
    assert train.remedy_option_differences("minibatch", {}, paper) == []
    differences = train.remedy_option_differences("minibatch", {}, default)
    assert len(differences) == 2
    assert differences[0].startswith("--mbd-hidden")
    assert differences[1].startswith("--mbd-statistic")


def test_remedy_differences_old_unrolled_run():
    assert train.remedy_option_differences("unrolled", {"unroll_steps": 3},
                                           {"unroll_steps": 3, "differentiate_through_unroll": True}) == []


def test_default_out_folder_names(font_dir):
    vanilla = train.parse_args(["--data-dir", str(font_dir)])
    fixed = train.parse_args(["--experiment", "fixed", "--data-dir", str(font_dir)])
    conditional = train.parse_args(["--conditional", "--data-dir", str(font_dir)])
    assert vanilla.out.name == "vanilla"
    assert fixed.out.name == "fixed_feature_matching"
    assert conditional.out.name == "vanilla_conditional"


def write_fake_run(folder, experiment="fixed", fix="feature_matching", status="finished"):
    folder.mkdir(parents=True, exist_ok=True)
    log = {"config": {"experiment": experiment, "fix": fix}, "status": status}
    (folder / "training_log.json").write_text(json.dumps(log))
    (folder / "checkpoint_last.pth").write_bytes(b"placeholder")
    (folder / "visualizations").mkdir()
    (folder / "notes.txt").write_text("kept")


def test_existing_run_folder_is_rejected(tmp_path, font_dir):
    write_fake_run(tmp_path / "run")
    args = train.parse_args(["--out", str(tmp_path / "run"), "--data-dir", str(font_dir)])
    with pytest.raises(train.RunFolderError, match=r"contains a finished fixed \(feature_matching\) run"):
        train.prepare_run_folder(args)


def test_overwrite_removes_only_run_files(tmp_path, font_dir):
    write_fake_run(tmp_path / "run")
    args = train.parse_args(["--out", str(tmp_path / "run"), "--overwrite", "--data-dir", str(font_dir)])
    assert train.prepare_run_folder(args) is None
    assert not (tmp_path / "run" / "training_log.json").exists()
    assert not (tmp_path / "run" / "checkpoint_last.pth").exists()
    assert not (tmp_path / "run" / "visualizations").exists()
    assert (tmp_path / "run" / "notes.txt").read_text() == "kept"


def test_resume_without_checkpoint_is_rejected(tmp_path, font_dir):
    args = train.parse_args(["--out", str(tmp_path / "empty"), "--resume", "--data-dir", str(font_dir)])
    with pytest.raises(train.RunFolderError, match="no checkpoint_last.pth"):
        train.prepare_run_folder(args)


def test_resume_with_other_lr_is_rejected(straight_run, font_dir):
    args = train.parse_args(["--epochs", "3", "--lr", "1e-3", "--resume", "--out", str(straight_run),
                             "--data-dir", str(font_dir), *TINY_RUN])
    with pytest.raises(train.RunFolderError, match="--lr was 0.0002, now 0.001"):
        train.prepare_run_folder(args)
