"""Train the letter DCGAN, vanilla or with a mode-collapse remedy, and write a complete run folder.

    python problem1/train.py --experiment vanilla
    python problem1/train.py --experiment fixed --fix feature_matching
    python problem1/train.py --experiment vanilla --resume          # continue from checkpoint_last.pth
    python problem1/train.py --experiment vanilla --epochs 2 --subset 512 --out /tmp/p1_smoke

Run folder (default problem1/results/vanilla or problem1/results/fixed_<fix>,
with a "_conditional" suffix for --conditional):

    training_log.json          config, software versions, seed, status, the full history
    checkpoint_last.pth        rewritten after every epoch; --resume starts here
    checkpoint_epochNNN.pth    kept at the --checkpoint-epochs and at the final epoch
    best_generator.pth         generator weights of the evaluated epoch with the lowest
                               Frechet letter distance to the validation images
    mode_collapse_analysis.png coverage, effective letters, letter survival, losses
    visualizations/            letter grids at the --checkpoint-epochs, the final letter
                               histogram, an interpolation sequence

A checkpoint holds both networks, both optimizers, the remedy's state, every
RNG state (torch, NumPy, Python, the batch order), the history, the epoch and
the config, so a resumed CPU run with the same thread count reproduces an
uninterrupted one bit for bit.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from problem1.fixes import MINIBATCH_STATISTICS, MinibatchDiscrimination, UnrolledGAN
from problem1.models import NUM_LETTERS, Discriminator, Generator
from problem1.training_dynamics import (
    LETTERS,
    GANTrainer,
    LetterEvaluator,
    ShuffledBatches,
    TrainingDiverged,
    capture_rng_state,
    preserved_rng_state,
    restore_rng_state,
    visualize_mode_collapse,
)
from provided.paths import DEFAULT_FONT_DIR, PROBLEM1_RESULTS, missing_data_message
from provided.runtime import (
    DEVICE_CHOICES,
    atomic_torch_save,
    atomic_write_json,
    seed_everything,
    select_device,
    software_versions,
)

EXPERIMENTS = ("vanilla", "fixed")
DEFAULT_CHECKPOINT_EPOCHS = (10, 30, 50, 100)
CHECKPOINT_FORMAT = 1
LAST_CHECKPOINT = "checkpoint_last.pth"
LOG_NAME = "training_log.json"
BEST_GENERATOR = "best_generator.pth"
ANALYSIS_FIGURE = "mode_collapse_analysis.png"
# Files and folders a run writes; --overwrite deletes exactly these.
RUN_ARTIFACTS = (LOG_NAME, LAST_CHECKPOINT, BEST_GENERATOR, ANALYSIS_FIGURE, "visualizations", "evaluation")
# Options that define the training trajectory: a resumed run must use the same values.
TRAJECTORY_OPTIONS = (
    "experiment", "fix", "conditional", "batch_size", "lr", "z_dim", "seed", "subset", "remedy_options", "precision",
)
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}
# Values assumed for options that checkpoints from before the option existed do not record.
MISSING_OPTION_DEFAULTS = {"precision": "fp32"}


def _fix_choices() -> tuple[str, ...]:
    from problem1.fixes import FIX_CHOICES

    return FIX_CHOICES


# --------------------------------------------------------------------------- command line


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show each option's default, except a None default, whose meaning the option's help states."""

    def _get_help_string(self, action):
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Train the letter DCGAN (vanilla or with a mode-collapse remedy).",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("--experiment", choices=EXPERIMENTS, default="vanilla",
                        help="vanilla GAN, or 'fixed' to train with the remedy named by --fix")
    parser.add_argument("--fix", default=None,
                        help=f"remedy for --experiment fixed: one of {', '.join(_fix_choices())} "
                             "(default: feature_matching)")
    parser.add_argument("--epochs", type=int, default=100, help="total number of passes over the training set")
    parser.add_argument("--batch-size", type=int, default=64, help="images per training step")
    parser.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate of both networks")
    parser.add_argument("--z-dim", type=int, default=100, help="dimension of the latent code z")
    parser.add_argument("--seed", type=int, default=641, help="seed of every random number generator")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto",
                        help="where to train; auto picks CUDA, then MPS, then the CPU")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_FONT_DIR,
                        help="font dataset folder holding train/, val/ and metadata.json")
    parser.add_argument("--out", type=Path, default=None,
                        help="run folder (default: problem1/results/vanilla or fixed_<fix>, "
                             "plus _conditional with --conditional)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its checkpoint_last.pth")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete the run files already in --out and start again")
    parser.add_argument("--conditional", action="store_true",
                        help="condition both networks on the one-hot letter")

    parser.add_argument("--eval-every", type=int, default=1,
                        help="evaluate coverage and Frechet letter distance every this many epochs "
                             "(the final epoch is always evaluated)")
    parser.add_argument("--eval-samples", type=int, default=1000,
                        help="generated images per evaluation, from fixed latent codes")
    parser.add_argument("--checkpoint-epochs", type=str, default=",".join(map(str, DEFAULT_CHECKPOINT_EPOCHS)),
                        help="comma-separated epochs that keep a checkpoint and a letter grid")
    parser.add_argument("--subset", type=int, default=None,
                        help="train on this many randomly chosen training images only (smoke runs, tests)")
    parser.add_argument("--max-loss", type=float, default=1e3,
                        help="stop the run when a BCE loss exceeds this value in nats; any NaN or inf "
                             "loss also stops it")
    parser.add_argument("--precision", choices=tuple(PRECISIONS), default="fp32",
                        help="fp32, or bf16 autocast of the forward passes (faster on CPUs with bf16 support)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice); fewer threads help when "
                             "several runs share a machine")
    parser.add_argument("--no-progress", action="store_true", help="hide the per-epoch progress bar")

    remedy = parser.add_argument_group("remedy options (defaults: the remedy's own)")
    remedy.add_argument("--unroll-steps", type=int, default=None,
                        help="unrolled: lookahead discriminator steps k (remedy default 5)")
    remedy.add_argument("--unroll-first-order", action="store_true",
                        help="unrolled: do not differentiate through the lookahead steps")
    remedy.add_argument("--mbd-kernels", type=int, default=None,
                        help="minibatch: number of discrimination kernels B (remedy default 100)")
    remedy.add_argument("--mbd-kernel-dim", type=int, default=None,
                        help="minibatch: dimension C of each kernel (remedy default 5)")
    remedy.add_argument("--mbd-statistic", choices=MINIBATCH_STATISTICS, default=None,
                        help="minibatch: average (mean, the remedy default) or sum the closeness to the other samples")
    remedy.add_argument("--mbd-hidden", type=int, default=None,
                        help="minibatch: hidden units of the head after the closeness features; 0 gives the "
                             "paper's linear head (remedy default 64)")
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    """Parse and validate the command line; invalid values exit through ``parser.error``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.fix_given = args.fix is not None
    if args.fix is None:
        args.fix = "feature_matching"

    for option, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size), ("--z-dim", args.z_dim),
                          ("--eval-every", args.eval_every), ("--eval-samples", args.eval_samples)):
        if value <= 0:
            parser.error(f"{option} must be a positive integer, got {value}")
    for option, value in (("--lr", args.lr), ("--max-loss", args.max_loss)):
        if not (math.isfinite(value) and value > 0):
            parser.error(f"{option} must be a positive number, got {value}")
    if args.threads is not None and args.threads <= 0:
        parser.error(f"--threads must be a positive integer, got {args.threads}")
    if args.subset is not None and args.subset <= 0:
        parser.error(f"--subset must be a positive integer, got {args.subset}")
    if args.fix not in _fix_choices():
        parser.error(f"unknown --fix {args.fix!r}: choose one of {', '.join(_fix_choices())}")
    for option, value in (("--unroll-steps", args.unroll_steps), ("--mbd-kernels", args.mbd_kernels),
                          ("--mbd-kernel-dim", args.mbd_kernel_dim)):
        if value is not None and value <= 0:
            parser.error(f"{option} must be a positive integer, got {value}")
    if args.mbd_hidden is not None and args.mbd_hidden < 0:
        parser.error(f"--mbd-hidden must be an integer >= 0, got {args.mbd_hidden}")
    if args.resume and args.overwrite:
        parser.error("--resume and --overwrite exclude each other: pick one")
    try:
        args.checkpoint_epochs = sorted({int(part) for part in args.checkpoint_epochs.split(",") if part.strip()})
    except ValueError:
        parser.error(f"--checkpoint-epochs must be comma-separated integers, got {args.checkpoint_epochs!r}")
    if any(epoch <= 0 for epoch in args.checkpoint_epochs):
        parser.error(f"--checkpoint-epochs must be positive, got {args.checkpoint_epochs}")
    if not args.data_dir.is_dir():
        parser.error(missing_data_message(args.data_dir))
    try:
        args.device = select_device(args.device)
    except ValueError as error:
        parser.error(str(error))

    if args.experiment == "vanilla" and args.fix_given:
        parser.error(f"--fix {args.fix} needs --experiment fixed; a vanilla run uses no remedy")
    if args.experiment == "vanilla":
        args.fix = None
    unused = [option for option, value, fix in (
        ("--unroll-steps", args.unroll_steps, "unrolled"),
        ("--unroll-first-order", args.unroll_first_order or None, "unrolled"),
        ("--mbd-kernels", args.mbd_kernels, "minibatch"),
        ("--mbd-kernel-dim", args.mbd_kernel_dim, "minibatch"),
        ("--mbd-statistic", args.mbd_statistic, "minibatch"),
        ("--mbd-hidden", args.mbd_hidden, "minibatch"),
    ) if value is not None and args.fix != fix]
    if unused:
        parser.error(f"{', '.join(unused)}: used only with --experiment fixed and the matching --fix; "
                     f"this run uses {args.fix or 'no remedy'}")
    args.remedy_options = remedy_options(args)
    if args.out is None:
        name = "vanilla" if args.experiment == "vanilla" else f"fixed_{args.fix}"
        args.out = PROBLEM1_RESULTS / (name + ("_conditional" if args.conditional else ""))
    return args


# The remedy options each checkpoint records, with the command-line flag that sets each one.
REMEDY_OPTION_FLAGS = {
    "unroll_steps": "--unroll-steps",
    "differentiate_through_unroll": "--unroll-first-order",
    "num_kernels": "--mbd-kernels",
    "kernel_dim": "--mbd-kernel-dim",
    "statistic": "--mbd-statistic",
    "hidden_features": "--mbd-hidden",
}
# Remedy options that checkpoints from before they were always recorded leave out, with the
# values those runs trained with. Minibatch runs then summed the closeness and had a linear head.
MISSING_REMEDY_OPTIONS = {
    "unrolled": {"unroll_steps": 5, "differentiate_through_unroll": True},
    "minibatch": {"num_kernels": 100, "kernel_dim": 5, "statistic": "sum", "hidden_features": 0},
}


def remedy_options(args: argparse.Namespace) -> dict:
    """Return the keyword arguments for ``make_remedy``, defaults filled in (empty for vanilla and feature matching).

    Every option is recorded, so a resumed run can tell a default value from
    a changed one.
    """
    if args.fix == "unrolled":
        defaults = UnrolledGAN()
        return {
            "unroll_steps": defaults.unroll_steps if args.unroll_steps is None else args.unroll_steps,
            "differentiate_through_unroll": not args.unroll_first_order,
        }
    if args.fix == "minibatch":
        defaults = MinibatchDiscrimination()
        return {
            "num_kernels": defaults.num_kernels if args.mbd_kernels is None else args.mbd_kernels,
            "kernel_dim": defaults.kernel_dim if args.mbd_kernel_dim is None else args.mbd_kernel_dim,
            "statistic": args.mbd_statistic or defaults.statistic,
            "hidden_features": defaults.hidden_features if args.mbd_hidden is None else args.mbd_hidden,
        }
    return {}


def remedy_option_differences(fix: str | None, stored: dict, current: dict) -> list[str]:
    """Return one message per remedy option whose stored value differs from the current one."""
    stored = {**MISSING_REMEDY_OPTIONS.get(fix, {}), **stored}
    differences = []
    for key in sorted(set(stored) | set(current)):
        if stored.get(key) != current.get(key):
            flag = REMEDY_OPTION_FLAGS.get(key, key)
            differences.append(f"{flag} setting {key} was {stored.get(key)!r}, now {current.get(key)!r}")
    return differences


def run_config(args: argparse.Namespace) -> dict:
    """Return the run's settings as plain values, as stored in the log and in every checkpoint."""
    return {
        "experiment": args.experiment,
        "fix": args.fix,
        "remedy_options": args.remedy_options,
        "conditional": args.conditional,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "betas": [0.5, 0.999],
        "z_dim": args.z_dim,
        "seed": args.seed,
        "device": str(args.device),
        "data_dir": str(args.data_dir.resolve()),
        "subset": args.subset,
        "eval_every": args.eval_every,
        "eval_samples": args.eval_samples,
        "checkpoint_epochs": args.checkpoint_epochs,
        "max_loss": args.max_loss,
        "precision": args.precision,
        "threads": torch.get_num_threads(),
    }


# --------------------------------------------------------------------------- run folder


class RunFolderError(Exception):
    """Error for a run folder that cannot be used as requested; the message names the option to pass instead."""


def prepare_run_folder(args: argparse.Namespace) -> dict | None:
    """Check --out against --resume and --overwrite; return the checkpoint to resume from, or None.

    Raises RunFolderError when --out already contains a run and neither flag is
    given, when --resume finds no checkpoint, or when the checkpoint's
    trajectory options differ from the command line.
    """
    out = args.out
    log_path = out / LOG_NAME
    existing = _read_log(log_path)

    if args.overwrite:
        for name in RUN_ARTIFACTS:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        for path in out.glob("checkpoint_epoch*.pth"):
            path.unlink()
        return None

    if args.resume:
        checkpoint_path = out / LAST_CHECKPOINT
        if not checkpoint_path.exists():
            raise RunFolderError(f"no {LAST_CHECKPOINT} in {out} to resume from: drop --resume to start a new run")
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        if checkpoint.get("format") != CHECKPOINT_FORMAT:
            raise RunFolderError(f"{checkpoint_path} has format {checkpoint.get('format')}, expected {CHECKPOINT_FORMAT}")
        stored = checkpoint["config"]
        current = run_config(args)
        stored = {**MISSING_OPTION_DEFAULTS, **stored}
        differences = [
            f"--{key.replace('_', '-')} was {stored.get(key)!r}, now {current[key]!r}"
            for key in TRAJECTORY_OPTIONS
            if key != "remedy_options" and stored.get(key) != current[key]
        ]
        if stored.get("fix") == current["fix"]:
            differences += remedy_option_differences(current["fix"], stored.get("remedy_options") or {},
                                                     current["remedy_options"])
        if differences:
            raise RunFolderError(
                f"cannot resume {out}: " + "; ".join(differences) + ". Pass the original values to resume."
            )
        if checkpoint["trainer"]["epoch"] >= args.epochs:
            raise RunFolderError(
                f"{out} already finished {checkpoint['trainer']['epoch']} epochs: "
                f"pass a larger --epochs to train further"
            )
        return checkpoint

    has_checkpoint = (out / LAST_CHECKPOINT).exists() or any(out.glob("checkpoint_epoch*.pth"))
    if existing is not None and not has_checkpoint and existing.get("status") in ("interrupted", "running"):
        # The run stopped before its first epoch ended, so no finished work is lost by starting over.
        print(f"{out} holds a run that stopped before its first checkpoint: starting it again")
        return None
    has_run = existing is not None or has_checkpoint
    if has_run:
        described = "a run"
        if existing is not None:
            config = existing.get("config", {})
            name = config.get("experiment", "?") + (f" ({config['fix']})" if config.get("fix") else "")
            described = f"a {existing.get('status', 'unknown')} {name} run"
        raise RunFolderError(
            f"{out} already contains {described}: pass --resume to continue it, --overwrite to replace it, "
            f"or --out DIR for a new folder"
        )
    return None


def _read_log(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return {"status": "unreadable"}


# --------------------------------------------------------------------------- data and models


def load_font_data(data_dir: Path, subset: int | None, seed: int):
    """Return (train images, train labels, val images): [N, 1, 28, 28] in [0, 1] and int64 [N]."""
    from problem1.dataset import FontDataset

    train = FontDataset(data_dir, "train")
    val = FontDataset(data_dir, "val")
    train_images = torch.as_tensor(train.images, dtype=torch.float32)
    train_labels = torch.as_tensor(train.labels, dtype=torch.int64)
    if subset is not None and subset < len(train_labels):
        chosen = torch.randperm(len(train_labels), generator=torch.Generator().manual_seed(seed))[:subset]
        train_images, train_labels = train_images[chosen], train_labels[chosen]
    return train_images, train_labels, torch.as_tensor(val.images, dtype=torch.float32)


def build_trainer(args: argparse.Namespace) -> GANTrainer:
    """Build both networks, the remedy and the trainer from the parsed options."""
    generator = Generator(z_dim=args.z_dim, conditional=args.conditional)
    discriminator = Discriminator(conditional=args.conditional)
    remedy = None
    if args.experiment == "fixed":
        from problem1.fixes import make_remedy

        remedy = make_remedy(args.fix, **args.remedy_options)
    return GANTrainer(
        generator,
        discriminator,
        args.device,
        remedy=remedy,
        lr=args.lr,
        max_loss=args.max_loss,
        autocast_dtype=PRECISIONS[args.precision],
    )


def generator_file(trainer: GANTrainer, config: dict, **extra) -> dict:
    """Return the contents of a generator-only weights file, rebuildable with ``load_generator``."""
    return {
        "format": CHECKPOINT_FORMAT,
        "generator": trainer.generator.state_dict(),
        "model_args": {"z_dim": config["z_dim"], "conditional": config["conditional"]},
        "config": config,
        **extra,
    }


def load_generator(path, device="cpu") -> tuple[Generator, dict]:
    """Rebuild the generator stored in a checkpoint or best_generator.pth; return (generator in eval mode, file)."""
    contents = torch.load(path, map_location="cpu", weights_only=True)
    state = contents["generator"] if "generator" in contents else contents["trainer"]["generator"]
    model_args = contents.get("model_args") or {
        "z_dim": contents["config"]["z_dim"],
        "conditional": contents["config"]["conditional"],
    }
    generator = Generator(**model_args)
    generator.load_state_dict(state)
    return generator.to(device).eval(), contents


# --------------------------------------------------------------------------- figures


def save_letter_grid(generator, device, z_dim: int, seed: int, path: Path, classifier=None) -> None:
    """Save the alphabet grid of ``generator``, captioned by ``classifier`` when given, to ``path``."""
    from provided.visualize import plot_alphabet_grid

    plot_alphabet_grid(generator, device, z_dim, seed, classifier=classifier, save_path=path)


def save_final_figures(trainer: GANTrainer, out: Path, config: dict, device) -> None:
    """Write mode_collapse_analysis.png, the final letter histogram and an interpolation sequence."""
    from problem1.evaluate import interpolation_experiment
    from provided.visualize import plot_letter_histogram

    visualize_mode_collapse(trainer.history, out / ANALYSIS_FIGURE)
    evaluations = trainer.history["evaluations"]
    if evaluations.get("letter_counts"):
        counts = dict(zip(LETTERS, evaluations["letter_counts"][-1]))
        plot_letter_histogram(
            counts,
            title=f"Final letter histogram, epoch {evaluations['epoch'][-1]} "
                  f"({NUM_LETTERS - len(evaluations['missing_letters'][-1])}/26 letters)",
            save_path=out / "visualizations" / "letter_histogram_final.png",
        )
    interpolation_experiment(
        trainer.generator,
        device,
        save_dir=out / "visualizations",
        seed=config["seed"],
        alphabet_path=False,
        n_candidates=1000,
        font_dir=config["data_dir"],
    )


# --------------------------------------------------------------------------- main loop


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    config = run_config(args)
    try:
        checkpoint = prepare_run_folder(args)
    except RunFolderError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = args.out
    try:
        train_images, train_labels, val_images = load_font_data(args.data_dir, args.subset, args.seed)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    (out / "visualizations").mkdir(parents=True, exist_ok=True)
    device = args.device
    print(f"device: {device}; run folder: {out}")

    # Seed, then build: model initialisation draws from the global RNG.
    seed_everything(args.seed)
    batches = ShuffledBatches(train_images, train_labels, args.batch_size, seed=args.seed)
    trainer = build_trainer(args)
    with preserved_rng_state():  # the classifier may train on first use; keep the training RNG as it is
        evaluator = LetterEvaluator(
            val_images,
            z_dim=args.z_dim,
            conditional=args.conditional,
            n_samples=args.eval_samples,
            seed=args.seed,
            font_dir=args.data_dir,
        )
    best = {"epoch": None, "fld": math.inf}
    if checkpoint is not None:
        trainer.load_state_dict(checkpoint["trainer"])
        batches.load_state_dict(checkpoint["batches"])
        restore_rng_state(checkpoint["rng"])
        best = checkpoint["best"]
        print(f"resumed from {out / LAST_CHECKPOINT} at epoch {trainer.epoch}")

    log = {
        "config": config,
        "software": software_versions(),
        "seed": args.seed,
        "status": "running",
        "remedy": trainer.history["remedy"],
        "steps_per_epoch": len(batches),
        "n_train_images": len(train_labels),
        "best_generator": {"criterion": "lowest Frechet letter distance on the fixed evaluation codes", **best},
    }

    def write_log(status: str, **extra) -> None:
        log["status"] = status
        log["best_generator"].update(best)
        log.update(extra)
        log["history"] = trainer.history
        atomic_write_json(log, out / LOG_NAME)

    print(
        f"training {trainer.history['remedy']} GAN{' (conditional)' if args.conditional else ''}: "
        f"{len(train_labels)} images, {len(batches)} steps per epoch, "
        f"epochs {trainer.epoch + 1}-{args.epochs}"
    )
    write_log("running")
    # SIGTERM (a scheduler or kill) ends the run like Ctrl-C: log it, keep the last checkpoint.
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous_handler = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt) if in_main_thread else None
    try:
        for epoch in range(trainer.epoch + 1, args.epochs + 1):
            record = trainer.train_epoch(batches, progress=not args.no_progress)
            summary = (
                f"epoch {epoch:3d}/{args.epochs}  {record['seconds']:.1f} s  "
                f"d_loss {record['d_loss']:.3f}  g_loss {record['g_loss']:.3f}  "
                f"D(x) {record['d_real']:.2f}  D(G(z)) {record['d_fake']:.2f}"
            )

            # Evaluation and figures run on their own RNG streams and restore the global ones.
            with preserved_rng_state():
                if epoch % args.eval_every == 0 or epoch == args.epochs:
                    start = time.perf_counter()
                    metrics = evaluator.evaluate(trainer.generator)
                    trainer.record_evaluation({"epoch": epoch, **metrics, "seconds": time.perf_counter() - start})
                    summary += (
                        f"  letters {metrics['letters_covered']}/26  effective {metrics['effective_letters']:.1f}"
                        f"  recognizable {metrics['recognizable_fraction']:.2f}  FLD {metrics['fld']:.2f}"
                    )
                    if metrics["fld"] < best["fld"]:
                        best = {"epoch": epoch, "fld": metrics["fld"]}
                        atomic_torch_save(generator_file(trainer, config, **best), out / BEST_GENERATOR)
                        summary += "  (best)"
                if epoch in args.checkpoint_epochs or epoch == args.epochs:
                    save_letter_grid(
                        trainer.generator, device, args.z_dim, args.seed,
                        out / "visualizations" / f"letters_epoch{epoch:03d}.png", classifier=evaluator.classifier,
                    )

            # Checkpoint: captured after evaluation, which left the RNG states untouched.
            state = {
                "format": CHECKPOINT_FORMAT,
                "config": config,
                "trainer": trainer.state_dict(),
                "batches": batches.state_dict(),
                "rng": capture_rng_state(),
                "best": best,
            }
            atomic_torch_save(state, out / LAST_CHECKPOINT)
            if epoch in args.checkpoint_epochs or epoch == args.epochs:
                atomic_torch_save(state, out / f"checkpoint_epoch{epoch:03d}.pth")
            write_log("running")
            tqdm.write(summary)
    except TrainingDiverged as error:
        write_log("diverged", error=str(error))
        print(f"error: {error} ({out / LAST_CHECKPOINT}, epoch {trainer.epoch})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        write_log("interrupted")
        if (out / LAST_CHECKPOINT).exists():
            print(
                f"\ninterrupted: epochs 1-{trainer.epoch} are saved in {out / LAST_CHECKPOINT}; "
                f"continue with the same options plus --resume",
                file=sys.stderr,
            )
        else:
            print("\ninterrupted before the first epoch ended: nothing to resume; rerun the same command "
                  "to start again", file=sys.stderr)
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous_handler)

    with preserved_rng_state():
        save_final_figures(trainer, out, config, device)
    seconds = trainer.history["epochs"]["seconds"]
    write_log("finished", seconds_per_epoch_median=sorted(seconds)[len(seconds) // 2])
    print(f"finished {args.epochs} epochs; best generator: epoch {best['epoch']} (FLD {best['fld']:.2f}); "
          f"results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
