"""Train the hierarchical drum VAE and measure how far it is from the true distribution.

    python problem2/train.py                                   # 100 epochs, cyclical annealing -> problem2/results/
    python problem2/train.py --anneal none --out problem2/results/compare/none
    python problem2/train.py --resume                          # continue the interrupted run in --out
    python -m problem2.train --epochs 5 --out /tmp/vae-smoke   # quick check

A run folder holds:
    training_log.json        config, seed and software versions, the best epoch,
                             the final evaluation, and one record per epoch: train
                             and val ELBO terms, beta, temperature and active units,
                             plus the full evaluation every --eval-every epochs
    best_model.pth           weights of the epoch with the best val ELBO (see below)
    last.pth                 full training state after the latest epoch, for --resume
    checkpoints/epoch_NNN.pth  the same state every --checkpoint-every epochs
    evaluation.json          final evaluation of best_model.pth (problem2/evaluate.py)
    visualizations/          training_curves.png, samples_epoch_NNN.png

best_model.pth is chosen by the val ELBO computed with both KL weights at 1
and no free bits, i.e. the true lower bound on log p(x), whatever beta the
schedule used for training in that epoch.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from problem2.dataset import DrumPatternDataset  # noqa: E402
from problem2.evaluate import ENTROPY_SAMPLES, evaluate_model, format_evaluation  # noqa: E402
from problem2.hierarchical_vae import HierarchicalDrumVAE  # noqa: E402
from problem2.training_utils import ANNEAL_METHODS, LR_SCHEDULES, fixed_seed, train_hierarchical_vae  # noqa: E402
from provided.drum_oracle import DrumOracle  # noqa: E402
from provided.paths import DEFAULT_DRUM_DIR, PROBLEM2_RESULTS  # noqa: E402
from provided.runtime import (DEVICE_CHOICES, atomic_torch_save, atomic_write_json,  # noqa: E402
                              seed_everything, select_device, software_versions)

# Settings that define a run. They are stored in the run folder, and --resume
# uses the stored values.
DEFAULTS = {
    "epochs": 100,
    "batch_size": 32,            # 25 optimizer steps per epoch on the 800 training patterns
    "lr": 1e-3,                  # Adam learning rate
    "lr_schedule": "constant",   # "cosine" decays the learning rate to 1% of --lr over the run
    "z_high_dim": 4,
    "z_low_dim": 12,
    "conv_channels": 64,         # width of the first encoder convolution (the next two have twice as many)
    "hidden_dim": 256,           # width of the decoder MLP and the encoder head
    "latent_hidden_dim": 64,     # width of the MLPs q(z_high | z_low) and p(z_low | z_high)
    "dropout": 0.2,              # decoder dropout, against overfitting the 800 training patterns
    "anneal": "cyclical",
    "n_cycles": 4,               # cyclical annealing: M cycles over the run (Fu et al. 2019)
    "anneal_ratio": 0.5,         # share R of each cycle (or of the run, linear and sigmoid) over which beta rises
    "free_bits": 0.0,            # KL floor per z_low dimension, nats (and per z_high dimension when free_bits_high is None)
    "free_bits_high": 0.75,      # KL floor per z_high dimension, nats: 4 x 0.75 = 3 nats, above log 5 for 5 styles
    "kl_high_weight": 1.0,       # weight of the z_high KL relative to beta (the z_low KL gets beta itself)
    "seed": 641,
    "eval_every": 10,            # epochs between full evaluations (IWAE NLL, kNN, generated patterns)
    "checkpoint_every": 20,      # epochs between kept checkpoints
    "iwae_samples": 1000,        # importance samples per pattern for the NLL
    "fresh_samples": 5000,       # oracle draws for the final NLL and KL without the val split's noise; 0 skips it
}
# Settings that runs stored before the setting existed lack, with the value those runs used.
MISSING_OPTION_DEFAULTS = {"lr_schedule": "constant"}
RUN_FILES = ("training_log.json", "best_model.pth", "last.pth", "evaluation.json")
RUN_FOLDERS = ("checkpoints", "visualizations")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train the hierarchical drum VAE (problem 2).")
    add = parser.add_argument

    # Run settings default to None so that --resume can tell which ones were given.
    # Model and optimiser:
    add("--epochs", type=int, help=f"training epochs (default {DEFAULTS['epochs']})")
    add("--batch-size", type=int, help=f"patterns per optimizer step (default {DEFAULTS['batch_size']})")
    add("--lr", type=float, help=f"Adam learning rate (default {DEFAULTS['lr']})")
    add("--lr-schedule", choices=LR_SCHEDULES,
        help=f"learning rate over the run: constant, or a cosine decay to 1%% of --lr (default {DEFAULTS['lr_schedule']})")
    add("--z-high-dim", type=int, help=f"size of z_high, the style level (default {DEFAULTS['z_high_dim']})")
    add("--z-low-dim", type=int, help=f"size of z_low, the variation level (default {DEFAULTS['z_low_dim']})")
    add("--conv-channels", type=int, help=f"channels of the first encoder convolution (default {DEFAULTS['conv_channels']})")
    add("--hidden-dim", type=int, help=f"width of the decoder and encoder MLPs (default {DEFAULTS['hidden_dim']})")
    add("--latent-hidden-dim", type=int,
        help=f"width of the MLPs between the latent levels (default {DEFAULTS['latent_hidden_dim']})")
    add("--dropout", type=float,
        help=f"dropout probability after each hidden decoder layer (default {DEFAULTS['dropout']})")

    # KL weights:
    add("--anneal", choices=ANNEAL_METHODS,
        help=f"KL annealing schedule; 'none' keeps beta at 1 (default {DEFAULTS['anneal']})")
    add("--n-cycles", type=int, help=f"cycles of the cyclical schedule (default {DEFAULTS['n_cycles']})")
    add("--anneal-ratio", type=float,
        help=f"share of each cycle (cyclical) or of the run (linear, sigmoid) over which beta rises "
             f"from 0 to 1 (default {DEFAULTS['anneal_ratio']})")
    add("--free-bits", type=float,
        help=f"minimum KL per z_low dimension in nats, applied to the batch mean of each dimension "
             f"(default {DEFAULTS['free_bits']})")
    add("--free-bits-high", type=float,
        help=f"minimum KL per z_high dimension in nats, applied like --free-bits "
             f"(default {DEFAULTS['free_bits_high']})")
    add("--kl-high-weight", type=float,
        help=f"weight of the z_high KL term relative to the schedule's beta; below 1 lets z_high carry "
             f"more information (default {DEFAULTS['kl_high_weight']})")
    add("--seed", type=int, help=f"random seed (default {DEFAULTS['seed']})")

    # Evaluation and checkpoints:
    add("--eval-every", type=int,
        help=f"epochs between full evaluations; 0 evaluates only at the end (default {DEFAULTS['eval_every']})")
    add("--checkpoint-every", type=int,
        help=f"epochs between kept checkpoints (default {DEFAULTS['checkpoint_every']})")
    add("--iwae-samples", type=int,
        help=f"importance samples per pattern for the NLL (default {DEFAULTS['iwae_samples']})")
    add("--fresh-samples", type=int,
        help=f"fresh patterns drawn from the true distribution for the final NLL; 0 skips "
             f"(default {DEFAULTS['fresh_samples']})")

    # Settings that do not change the result:
    add("--device", choices=DEVICE_CHOICES, default="auto", help="compute device (default: %(default)s)")
    add("--data-dir", type=Path, default=DEFAULT_DRUM_DIR,
        help="folder with patterns.npz (default: %(default)s)")
    add("--out", type=Path, default=PROBLEM2_RESULTS, help="run folder (default: %(default)s)")
    add("--resume", action="store_true", help="continue the run in --out from its last.pth")
    add("--overwrite", action="store_true", help="replace a run already in --out")
    add("--threads", type=int, default=1,
        help="CPU threads for torch (default: %(default)s; the model is small enough that more threads "
             "mostly add synchronisation cost)")
    add("--no-progress", action="store_true", help="hide the per-epoch progress bar")
    return parser


def resolve_config(args: argparse.Namespace, stored: dict | None) -> dict:
    """Return the run's config: command-line values over the defaults, or on --resume the stored config.

    On --resume a value given on the command line that differs from the stored one raises ValueError.
    """
    explicit = {key: getattr(args, key) for key in DEFAULTS if getattr(args, key) is not None}
    if stored is None:
        config = {**DEFAULTS, **explicit}
    else:
        conflicts = {key: (value, stored.get(key)) for key, value in explicit.items() if stored.get(key) != value}
        if conflicts:
            listing = ", ".join(f"--{key.replace('_', '-')} {new} (stored {old})"
                                for key, (new, old) in conflicts.items())
            raise ValueError(f"--resume continues the stored run, but these settings differ: {listing}; "
                             "drop them, or start a new run with --out DIR")
        config = {**DEFAULTS, **MISSING_OPTION_DEFAULTS, **stored}
    for key in ("epochs", "batch_size", "z_high_dim", "z_low_dim", "iwae_samples"):
        if config[key] < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be >= 1, got {config[key]}")
    for key in ("eval_every", "checkpoint_every", "fresh_samples"):
        if config[key] < 0:
            raise ValueError(f"--{key.replace('_', '-')} must be >= 0, got {config[key]}")
    if config["kl_high_weight"] <= 0:
        raise ValueError(f"--kl-high-weight must be positive, got {config['kl_high_weight']}")
    if config["lr"] <= 0:
        raise ValueError(f"--lr must be positive, got {config['lr']}")
    for key in ("free_bits", "free_bits_high"):
        if config[key] is not None and config[key] < 0:
            raise ValueError(f"--{key.replace('_', '-')} must be >= 0 nats, got {config[key]}")
    return config


def prepare_run_folder(out: Path, resume: bool, overwrite: bool) -> None:
    """Check that ``out`` may receive this run; with ``overwrite`` delete the files of an earlier run."""
    if resume and overwrite:
        raise ValueError("--resume and --overwrite contradict each other: pass one of them")
    existing = [name for name in RUN_FILES + RUN_FOLDERS if (out / name).exists()]
    if resume:
        if not (out / "last.pth").exists():
            raise FileNotFoundError(f"{out / 'last.pth'} not found: there is no run to resume in {out}")
        return
    if existing and not overwrite:
        if "last.pth" not in existing:
            # A run interrupted while saving its first epoch can leave best_model.pth without last.pth.
            raise FileExistsError(f"{out} contains files of a run without last.pth ({', '.join(existing)}), so it "
                                  "cannot be resumed: pass --overwrite to replace it, or --out DIR for a new folder")
        raise FileExistsError(f"{out} already contains a run ({', '.join(existing)}): pass --resume to continue "
                              "it, --overwrite to replace it, or --out DIR for a new folder")
    for name in existing:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def training_state(model, optimizer, loader_generator, config, epoch, history, best) -> dict:
    """Everything --resume needs to continue exactly where the run stopped (plain values and tensors)."""
    state = {
        "model_state": model.state_dict(),
        "model_args": model.model_args(),
        "optimizer_state": optimizer.state_dict(),
        "config": config,
        "epoch": epoch,
        "history": history,
        "best": best,
        "torch_rng_state": torch.get_rng_state(),
        "loader_rng_state": loader_generator.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda_rng_states"] = torch.cuda.get_rng_state_all()
    return state


def plot_training_curves(records: list[dict], path: Path) -> None:
    """Plot the ELBO terms per epoch with the beta schedule and the active units; save a PNG at ``path``."""
    epochs = [record["epoch"] for record in records]
    figure, (ax_loss, ax_kl, ax_units) = plt.subplots(1, 3, figsize=(16, 4.5))

    ax_loss.plot(epochs, [r["train_recon"] for r in records], label="train reconstruction")
    ax_loss.plot(epochs, [-r["val_elbo"] for r in records], label="val -ELBO (beta 1)")
    ax_loss.plot(epochs, [r["val_recon"] for r in records], label="val reconstruction")
    evaluated = [r for r in records if "evaluation" in r]
    if evaluated:
        ax_loss.plot([r["epoch"] for r in evaluated], [r["evaluation"]["val"]["nll"] for r in evaluated],
                     "o", label="val NLL (IWAE)")
        ax_loss.axhline(evaluated[-1]["evaluation"]["val"]["entropy"], color="gray", linestyle=":",
                        label="H(X), true entropy")
    ax_loss.set(xlabel="epoch", ylabel="nats per pattern", title="ELBO terms")
    ax_loss.legend(fontsize=8)

    ax_kl.plot(epochs, [r["val_kl_low"] for r in records], label="val KL low")
    ax_kl.plot(epochs, [r["val_kl_high"] for r in records], label="val KL high")
    ax_kl.axhline(0.0, color="gray", linewidth=0.5)  # the sampled z_low term can be negative
    ax_kl.set(xlabel="epoch", ylabel="nats per pattern", title="KL terms and beta")
    ax_beta = ax_kl.twinx()
    ax_beta.plot(epochs, [r["beta"] for r in records], color="black", alpha=0.4, label="beta")
    ax_beta.set(ylabel="beta", ylim=(-0.05, 1.05))
    handles, labels = ax_kl.get_legend_handles_labels()
    beta_handles, beta_labels = ax_beta.get_legend_handles_labels()
    ax_kl.legend(handles + beta_handles, labels + beta_labels, fontsize=8)

    ax_units.plot(epochs, [r["active_units_low"] for r in records], label="z_low")
    ax_units.plot(epochs, [r["active_units_high"] for r in records], label="z_high")
    ax_units.set(xlabel="epoch", ylabel="active units", title="Active units (Var of posterior mean > 0.01)")
    ax_units.legend(fontsize=8)

    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_samples(model, temperature: float, path: Path, n: int = 8, seed: int = 0) -> None:
    """Save a row of ``n`` patterns sampled from the prior at ``temperature`` as a PNG."""
    with fixed_seed(seed, next(model.parameters()).device):
        patterns = model.sample(n, temperature=temperature).cpu().numpy()
    figure, axes = plt.subplots(1, n, figsize=(2 * n, 2.6))
    for ax, pattern in zip(axes, patterns):
        ax.imshow(pattern.T, aspect="auto", cmap="Greys", origin="lower", vmin=0, vmax=1)
        ax.set(xticks=[0, 4, 8, 12], yticks=[])
    figure.suptitle(f"prior samples, temperature {temperature:.2f}")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)


def format_epoch(record: dict, total_epochs: int, seconds: float) -> str:
    return (f"epoch {record['epoch']:3d}/{total_epochs} | beta {record['beta']:.2f} T {record['temperature']:.2f} | "
            f"train loss {record['train_loss']:.2f} | val -ELBO {-record['val_elbo']:.2f} "
            f"(recon {record['val_recon']:.2f}, KL low {record['val_kl_low']:.2f}, high {record['val_kl_high']:.2f}) | "
            f"AU {record['active_units_low']}/{record['active_units_high']} | {seconds:.1f} s")


def run(argv=None) -> dict:
    """Train (or resume) one run as the command line describes; return its training log."""
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    prepare_run_folder(out, args.resume, args.overwrite)
    device = select_device(args.device)
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)

    checkpoint = None
    if args.resume:
        checkpoint = torch.load(out / "last.pth", map_location="cpu", weights_only=True)
    config = resolve_config(args, checkpoint["config"] if checkpoint else None)

    seed_everything(config["seed"])
    train_set = DrumPatternDataset(args.data_dir, "train")
    val_set = DrumPatternDataset(args.data_dir, "val")
    oracle = DrumOracle.from_data_dir(args.data_dir)
    loader_generator = torch.Generator().manual_seed(config["seed"])
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=config["batch_size"], shuffle=True,
                                               generator=loader_generator)

    model = HierarchicalDrumVAE(z_high_dim=config["z_high_dim"], z_low_dim=config["z_low_dim"],
                                conv_channels=config["conv_channels"], hidden_dim=config["hidden_dim"],
                                latent_hidden_dim=config["latent_hidden_dim"],
                                dropout=config["dropout"]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])

    if checkpoint is None:
        history = {"epochs": []}
        best = {"epoch": None, "val_elbo": None}
        entropy, entropy_se = oracle.entropy(ENTROPY_SAMPLES, seed=0)
        log = {"status": "running", "config": config, "seed": config["seed"], "data_dir": str(args.data_dir),
               "device": str(device), "software": software_versions(),
               "entropy": {"nats": entropy, "standard_error": entropy_se, "samples": ENTROPY_SAMPLES}}
    else:
        model.load_state_dict(checkpoint["model_state"])
        optimizer.load_state_dict(checkpoint["optimizer_state"])
        torch.set_rng_state(checkpoint["torch_rng_state"])
        loader_generator.set_state(checkpoint["loader_rng_state"])
        if "cuda_rng_states" in checkpoint and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(checkpoint["cuda_rng_states"])
        history, best = checkpoint["history"], checkpoint["best"]
        with open(out / "training_log.json") as handle:
            log = json.load(handle)
        if log.get("status") == "finished":
            print(f"{out} contains a finished run of {config['epochs']} epochs; nothing to do")
            return log
        log.update(epochs=history["epochs"])
        entropy = log["entropy"]["nats"]
        print(f"resuming {out} after epoch {checkpoint['epoch']} of {config['epochs']}")

    print(f"device {device} | {len(train_set)} train / {len(val_set)} val patterns | "
          f"{sum(p.numel() for p in model.parameters())} parameters | H(X) = {entropy:.2f} nats | out {out}")
    start_epoch = len(history["epochs"])
    epoch_started = [time.perf_counter()]

    def on_epoch_end(epoch: int, record: dict) -> None:
        if not np.isfinite(record["val_elbo"]):
            raise FloatingPointError(f"val ELBO is {record['val_elbo']} after epoch {epoch + 1}: training "
                                     f"diverged; lower --lr, or resume from {out / 'checkpoints'}")
        print(format_epoch(record, config["epochs"], time.perf_counter() - epoch_started[0]))
        last_epoch = epoch + 1 == config["epochs"]
        if config["eval_every"] and ((epoch + 1) % config["eval_every"] == 0 or last_epoch):
            record["evaluation"] = evaluate_model(model, train_set, val_set, oracle, entropy,
                                                  k=config["iwae_samples"], device=device)
            print(f"  evaluation: {format_evaluation(record['evaluation'])}")
            plot_samples(model, record["temperature"], out / "visualizations" / f"samples_epoch_{epoch + 1:03d}.png")

        if best["val_elbo"] is None or record["val_elbo"] > best["val_elbo"]:
            best.update(epoch=epoch + 1, val_elbo=record["val_elbo"])
            atomic_torch_save({"model_state": model.state_dict(), "model_args": model.model_args(),
                               "config": config, "epoch": epoch + 1, "val_elbo": record["val_elbo"]},
                              out / "best_model.pth")

        state = training_state(model, optimizer, loader_generator, config, epoch + 1,
                               {"epochs": history["epochs"] + [record]}, best)
        atomic_torch_save(state, out / "last.pth")
        if config["checkpoint_every"] and (epoch + 1) % config["checkpoint_every"] == 0:
            atomic_torch_save(state, out / "checkpoints" / f"epoch_{epoch + 1:03d}.pth")
            print(f"  checkpoint: {out / 'checkpoints' / f'epoch_{epoch + 1:03d}.pth'}")
        log.update(epochs=history["epochs"] + [record], best_epoch=best["epoch"], best_val_elbo=best["val_elbo"])
        atomic_write_json(log, out / "training_log.json")
        epoch_started[0] = time.perf_counter()

    try:
        train_hierarchical_vae(model, train_loader, config["epochs"], device, val_data=val_set,
                               anneal=config["anneal"], n_cycles=config["n_cycles"],
                               anneal_ratio=config["anneal_ratio"], free_bits=config["free_bits"],
                               free_bits_high=config["free_bits_high"], kl_high_weight=config["kl_high_weight"],
                               lr=config["lr"], lr_schedule=config["lr_schedule"], optimizer=optimizer, start_epoch=start_epoch, history=history,
                               on_epoch_end=on_epoch_end, progress=not args.no_progress)
    except KeyboardInterrupt:
        if (out / "training_log.json").exists():
            log["status"] = "interrupted"
            atomic_write_json(log, out / "training_log.json")
        raise

    if history["epochs"]:
        plot_training_curves(history["epochs"], out / "visualizations" / "training_curves.png")
    best_state = torch.load(out / "best_model.pth", map_location="cpu", weights_only=True)
    model.load_state_dict(best_state["model_state"])
    evaluation = evaluate_model(model, train_set, val_set, oracle, entropy, k=config["iwae_samples"],
                                fresh_samples=config["fresh_samples"], device=device)
    evaluation["epoch"] = best["epoch"]
    atomic_write_json(evaluation, out / "evaluation.json")
    log.update(status="finished", final_evaluation=evaluation)
    atomic_write_json(log, out / "training_log.json")
    print(f"best epoch {best['epoch']} (val ELBO {best['val_elbo']:.2f}): {format_evaluation(evaluation)}")
    if "fresh" in evaluation:
        fresh = evaluation["fresh"]
        print(f"  on {fresh['n_patterns']} fresh oracle draws: NLL {fresh['nll']:.2f} nats, "
              f"KL to truth {fresh['paired_kl']:.3f} +- {fresh['paired_kl_standard_error']:.3f} nats")
    return log


def main(argv=None) -> int:
    try:
        run(argv)
    except (ValueError, FileExistsError, FileNotFoundError, FloatingPointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # Every finished epoch is already in last.pth, written atomically at the end of that epoch.
        print("\ninterrupted: finished epochs are saved in the run folder's last.pth; continue with the same "
              "--out plus --resume (with none finished, rerun with --overwrite)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
