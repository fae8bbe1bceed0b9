"""Known-mode benchmark: vanilla GAN and the three remedies on 2-D Gaussian mixtures.

    python problem1/toy_mixture.py                   # ring and grid, 4 methods, 3 seeds
    python problem1/toy_mixture.py --quick           # a smoke-test-sized run
    python -m problem1.toy_mixture --datasets ring --methods vanilla unrolled --seeds 0 1

Where every mode is known, mode collapse is measured exactly. Two mixtures
with equal weights:

* ring: 8 Gaussians on a circle of radius 2, standard deviation 0.02, the
  ring of Metz et al. 2016, "Unrolled Generative Adversarial Networks". The
  public reference notebook for that paper (poolio/unrolled_gan) samples
  radius 1 and standard deviation 0.01, the same shape at half the scale.
* grid: 25 Gaussians at {-4, -2, 0, 2, 4}^2, standard deviation 0.05, the
  grid of Srivastava et al. 2017 (VEEGAN) and Lin et al. 2018 (PacGAN).

NOTE: the ring and grid settings, the 2,500 scored samples and PacGAN's
20-sample threshold are quoted as these papers are usually reproduced. The
papers' own text was not checked here.

Metrics, after VEEGAN and PacGAN, on ``--eval-samples`` generated points:

* a sample is high-quality when it lies within 3 standard deviations of the
  nearest mode centre;
* a mode is covered when at least ``COVERAGE_SHARE`` (20%) of its fair share
  n/K of all samples are high-quality samples of that mode. With 2,500
  samples on the grid this is PacGAN's threshold of 20 samples;
* KL(p || uniform) in nats, where p is the histogram over modes of the
  high-quality samples. It is 0 for perfect balance and log K when all of
  them sit in one mode.

Results go to ``--out`` (default problem1/results/toy_mixture/):
``results.md`` (markdown table, mean and standard deviation over seeds),
``results.json`` (every run) and ``samples.png`` (one scatter per dataset and
method, lowest seed). The unrolled and minibatch runs take most of the time.

5,000 steps (the default) are not enough for every method to converge on
the grid. There, a method whose samples still cover the whole square with a
few percent near a mode has not collapsed but is slow, so read the
high-quality share beside the modes covered. Use ``--steps`` for longer runs.
"""
from __future__ import annotations

import argparse
import math
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.distance import cdist
from scipy.stats import entropy
from torch import Tensor, nn
from tqdm import tqdm

from problem1.fixes import FIX_CHOICES, MINIBATCH_STATISTICS, make_remedy
from problem1.training_dynamics import discriminator_loss_from_logits, generator_nonsaturating_loss
from provided.paths import PROBLEM1_RESULTS
from provided.runtime import atomic_write_json, seed_everything, select_device, software_versions

DATASETS = ("ring", "grid")
METHODS = ("vanilla",) + FIX_CHOICES
DEFAULT_OUT = PROBLEM1_RESULTS / "toy_mixture"

# Settings of the default run; each one is a command-line option.
STEPS = 5000              # training steps per run (one D and one G update each)
BATCH_SIZE = 256          # points per real and per generated batch
G_LEARNING_RATE = 1e-3    # Adam, generator
# Adam, discriminator. With D at 1e-3 as well, the vanilla GAN spread over 3-6 ring modes
# and the unrolled GAN collapsed on one seed of three. At 1e-4 the vanilla GAN collapsed
# onto a single ring mode and the unrolled GAN covered 6-8 of 8, the contrast this
# benchmark exists to measure (5,000 steps, seeds 0-2).
D_LEARNING_RATE = 1e-4
BETAS = (0.5, 0.999)      # Adam betas, as in the letter GAN
Z_DIM = 64                # latent dimension of the toy generator
HIDDEN = 128              # width of the two hidden layers of both MLPs
ACTIVATION = "relu"       # hidden-layer nonlinearity of both MLPs
UNROLL_STEPS = 5          # k of the unrolled remedy (gradients flow through the k steps)
# Minibatch discrimination costs O(batch^2 * B * C) per pass. At batch 256 the authors'
# B = 100, C = 5 made a toy step about 90 times slower than a vanilla one, so the toy
# uses B = 8, C = 4.
MINIBATCH_KERNELS = 8     # B of minibatch discrimination
MINIBATCH_KERNEL_DIM = 4  # C of minibatch discrimination
MINIBATCH_STATISTIC = "mean"  # closeness averaged over the other samples (the paper sums it)
MINIBATCH_HIDDEN = 64     # hidden units of the minibatch head (0: the paper's linear head)
EVAL_SAMPLES = 2500       # generated points scored per run (VEEGAN and PacGAN score 2,500)
SEEDS = (0, 1, 2)
WORKERS = 2               # runs trained in parallel, one process each
THREADS = 1               # torch intra-op threads per worker
COVERAGE_SHARE = 0.2      # a mode is covered at >= this fraction of its fair share n/K
HIGH_QUALITY_STDS = 3.0   # high-quality radius, in standard deviations of a mode

# --quick: small enough for a unit test; too short for any method to converge.
# D learns at 1e-3 here, because at the default 1e-4, 200 steps leave every method's samples far from the modes.
QUICK_OPTIONS = {"datasets": ["ring"], "seeds": [0, 1], "steps": 200, "batch_size": 64, "unroll_steps": 2,
                 "eval_samples": 1000, "d_lr": 1e-3}
QUICK_DESCRIPTION = "ring only, seeds 0 1, 200 steps of batch 64, D learning rate 1e-3, k = 2, 1,000 scored points"


@dataclass(frozen=True)
class GaussianMixture2D:
    """An equal-weight mixture of isotropic 2-D Gaussians.

    centers: [K, 2] mode centres; std: the standard deviation of every mode
    along each axis (same unit as the centres).
    """

    name: str
    centers: np.ndarray
    std: float

    @property
    def num_modes(self) -> int:
        return len(self.centers)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw n points [n, 2] (float32): a uniformly chosen mode plus Gaussian noise."""
        centers = torch.as_tensor(self.centers, dtype=torch.float32)
        modes = torch.randint(self.num_modes, (n,), generator=generator)
        noise = torch.randn(n, 2, generator=generator) * self.std
        return centers[modes] + noise


def make_mixture(name: str) -> GaussianMixture2D:
    """Build the "ring" (8 modes, radius 2, std 0.02) or "grid" (5x5, spacing 2, std 0.05) mixture."""
    if name == "ring":
        angles = 2 * np.pi * np.arange(8) / 8
        centers = 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        return GaussianMixture2D("ring", centers, 0.02)
    if name == "grid":
        axis = np.arange(-4.0, 5.0, 2.0)
        centers = np.array([(x, y) for x in axis for y in axis])
        return GaussianMixture2D("grid", centers, 0.05)
    raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")


ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}: choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class ToyGenerator(nn.Module):
    """MLP generator: z [B, z_dim] -> points [B, 2], two hidden layers, linear output."""

    def __init__(self, z_dim: int = Z_DIM, hidden: int = HIDDEN, activation: str = ACTIVATION):
        super().__init__()
        self.z_dim = z_dim
        self.conditional = False
        self.net = nn.Sequential(
            nn.Linear(z_dim, hidden), _activation(activation),
            nn.Linear(hidden, hidden), _activation(activation),
            nn.Linear(hidden, 2),
        )

    def forward(self, z: Tensor, class_label: Tensor | None = None) -> Tensor:
        if class_label is not None:
            raise ValueError("ToyGenerator is unconditional: pass class_label=None")
        return self.net(z)


class ToyDiscriminator(nn.Module):
    """MLP discriminator with the letter discriminator's structure, so every remedy applies unchanged.

    ``features``: points [B, 2] -> [B, hidden] (two hidden layers);
    ``classifier``: [B, classifier_in_features] -> logits [B, 1];
    ``feature_matching_features`` returns the ``features`` output, the last
    hidden layer.
    """

    def __init__(self, hidden: int = HIDDEN, activation: str = ACTIVATION):
        super().__init__()
        self.conditional = False
        self.features = nn.Sequential(
            nn.Linear(2, hidden), _activation(activation),
            nn.Linear(hidden, hidden), _activation(activation),
        )
        self.classifier_in_features = hidden
        self.classifier = nn.Linear(hidden, 1)

    def feature_matching_features(self, points: Tensor, class_label: Tensor | None = None) -> Tensor:
        if class_label is not None:
            raise ValueError("ToyDiscriminator is unconditional: pass class_label=None")
        return self.features(points)

    def logits(self, points: Tensor, class_label: Tensor | None = None) -> Tensor:
        return self.classifier(self.feature_matching_features(points, class_label))

    def forward(self, points: Tensor, class_label: Tensor | None = None) -> Tensor:
        return torch.sigmoid(self.logits(points, class_label))


def mode_metrics(samples: np.ndarray, mixture: GaussianMixture2D) -> dict:
    """Score generated points [n, 2] against the mixture's known modes.

    Returns ``modes_covered`` (int, out of K), ``high_quality_share`` (in
    [0, 1]), ``kl_to_uniform`` (nats; NaN when no sample is high-quality)
    and ``mode_counts`` (high-quality samples per mode, a list of K ints).
    """
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 2 or samples.shape[1] != 2 or len(samples) == 0:
        raise ValueError(f"samples must be a non-empty [n, 2] array, got shape {list(samples.shape)}")

    distances = cdist(samples, mixture.centers)
    nearest = distances.argmin(axis=1)
    high_quality = distances[np.arange(len(samples)), nearest] <= HIGH_QUALITY_STDS * mixture.std
    counts = np.bincount(nearest[high_quality], minlength=mixture.num_modes)

    threshold = COVERAGE_SHARE * len(samples) / mixture.num_modes
    if counts.sum() > 0:
        kl = float(entropy(counts / counts.sum(), np.full(mixture.num_modes, 1.0 / mixture.num_modes)))
    else:
        kl = math.nan
    return {
        "modes_covered": int((counts >= threshold).sum()),
        "high_quality_share": float(high_quality.mean()),
        "kl_to_uniform": kl,
        "mode_counts": counts.tolist(),
    }


@dataclass(frozen=True)
class ToySettings:
    """Training settings of one toy run (defaults: the module constants)."""

    steps: int = STEPS
    batch_size: int = BATCH_SIZE
    g_lr: float = G_LEARNING_RATE
    d_lr: float = D_LEARNING_RATE
    z_dim: int = Z_DIM
    hidden: int = HIDDEN
    activation: str = ACTIVATION
    unroll_steps: int = UNROLL_STEPS
    minibatch_kernels: int = MINIBATCH_KERNELS
    minibatch_kernel_dim: int = MINIBATCH_KERNEL_DIM
    minibatch_statistic: str = MINIBATCH_STATISTIC
    minibatch_hidden: int = MINIBATCH_HIDDEN

    def __post_init__(self):
        for name in ("steps", "batch_size", "z_dim", "hidden", "unroll_steps", "minibatch_kernels",
                     "minibatch_kernel_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"invalid {name} {value!r}: expected an integer >= 1")
        for name in ("g_lr", "d_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"invalid {name} {getattr(self, name)!r}: expected a positive float")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"invalid activation {self.activation!r}: choose one of {', '.join(ACTIVATIONS)}")
        if self.minibatch_statistic not in MINIBATCH_STATISTICS:
            raise ValueError(f"invalid minibatch_statistic {self.minibatch_statistic!r}: "
                             f"choose one of {', '.join(MINIBATCH_STATISTICS)}")
        if isinstance(self.minibatch_hidden, bool) or not isinstance(self.minibatch_hidden, int) \
                or self.minibatch_hidden < 0:
            raise ValueError(f"invalid minibatch_hidden {self.minibatch_hidden!r}: expected an integer >= 0")


def make_toy_remedy(method: str, settings: ToySettings):
    """Return the remedy for ``method`` with the toy settings, or None for "vanilla"."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    if method == "vanilla":
        return None
    if method == "unrolled":
        return make_remedy(method, unroll_steps=settings.unroll_steps)
    if method == "minibatch":
        return make_remedy(method, num_kernels=settings.minibatch_kernels, kernel_dim=settings.minibatch_kernel_dim,
                           statistic=settings.minibatch_statistic, hidden_features=settings.minibatch_hidden)
    return make_remedy(method)


def train_toy_gan(
    mixture: GaussianMixture2D,
    method: str,
    seed: int,
    settings: ToySettings = ToySettings(),
    device: torch.device | str = "cpu",
) -> tuple[ToyGenerator, dict]:
    """Train one GAN on ``mixture`` with ``method`` ("vanilla" or a remedy name); return (generator, log).

    The two networks start from the same weights for every method with the
    same seed, and see the same real batches. Each step updates D once (BCE
    on a real and a generated batch, in separate passes) and then G once
    (the non-saturating loss, or the remedy's loss). The log has the final
    D and G losses and the training time in seconds.
    """
    device = torch.device(device)
    seed_everything(seed)
    generator = ToyGenerator(settings.z_dim, settings.hidden, settings.activation).to(device)
    discriminator = ToyDiscriminator(settings.hidden, settings.activation).to(device)
    remedy = make_toy_remedy(method, settings)
    if remedy is not None:
        remedy.prepare_discriminator(discriminator)
    g_optimizer = torch.optim.Adam(generator.parameters(), lr=settings.g_lr, betas=BETAS)
    d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=settings.d_lr, betas=BETAS)
    data_stream = torch.Generator().manual_seed(seed)
    batch_size, z_dim = settings.batch_size, settings.z_dim

    start = time.perf_counter()
    for _ in range(settings.steps):
        real = mixture.sample(batch_size, data_stream).to(device)

        # Update D: minimise BCE(D(x), 1) + BCE(D(G(z)), 0).
        z = torch.randn(batch_size, z_dim, device=device)
        fake = generator(z).detach()
        d_loss = discriminator_loss_from_logits(discriminator.logits(real), discriminator.logits(fake))
        d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        d_optimizer.step()

        # Update G: the non-saturating loss -log D(G(z)), or the remedy's objective.
        z = torch.randn(batch_size, z_dim, device=device)
        if remedy is None:
            g_loss = generator_nonsaturating_loss(discriminator.logits(generator(z)))
        else:
            g_loss, _ = remedy.generator_loss(
                generator=generator, discriminator=discriminator, real_images=real,
                z=z, class_label=None, d_optimizer=d_optimizer,
            )
        g_optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        g_optimizer.step()

    log = {
        "final_d_loss": d_loss.item(),
        "final_g_loss": g_loss.item(),
        "train_seconds": time.perf_counter() - start,
    }
    return generator, log


@torch.no_grad()
def generate_points(generator: ToyGenerator, n: int, seed: int) -> np.ndarray:
    """Draw n points [n, 2] from the generator with latent codes from a generator seeded with ``seed``."""
    z = torch.randn(n, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    device = next(generator.parameters()).device
    return generator(z.to(device)).cpu().numpy()


def run_one(dataset: str, method: str, seed: int, settings: ToySettings, eval_samples: int,
            threads: int = THREADS, device: str = "cpu") -> dict:
    """Train and score one (dataset, method, seed) run and return its record.

    A record has ``dataset``, ``method``, ``seed``, the ``mode_metrics``
    fields, the training log and ``samples`` (the scored points as an
    [n, 2] list). Sets torch's intra-op threads to ``threads`` for the
    calling process.
    """
    torch.set_num_threads(threads)
    mixture = make_mixture(dataset)
    generator, log = train_toy_gan(mixture, method, seed, settings, device)
    points = generate_points(generator, eval_samples, seed=10_000 + seed)
    record = {"dataset": dataset, "method": method, "seed": seed}
    record.update(mode_metrics(points, mixture))
    record.update(log)
    record["samples"] = points.tolist()
    return record


def run_benchmark(
    datasets=DATASETS,
    methods=METHODS,
    seeds=SEEDS,
    settings: ToySettings = ToySettings(),
    *,
    eval_samples: int = EVAL_SAMPLES,
    workers: int = WORKERS,
    threads: int = THREADS,
    device: str = "cpu",
    progress: bool = True,
) -> list[dict]:
    """Run every (dataset, method, seed) and return the records in that order.

    With ``workers`` > 1 the runs go to a pool of spawned processes, each
    using ``threads`` torch threads. A run's result does not depend on the
    worker that trains it.
    """
    runs = [(dataset, method, seed) for dataset in datasets for method in methods for seed in seeds]
    arguments = [(dataset, method, seed, settings, eval_samples, threads, device) for dataset, method, seed in runs]
    bar = tqdm(total=len(runs), desc="toy runs", disable=not progress)
    if workers == 1:
        records = []
        for argument in arguments:
            records.append(run_one(*argument))
            bar.update()
    else:
        # Spawned, not forked: forking a process after torch has started its thread pool can hang.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = [pool.submit(run_one, *argument) for argument in arguments]
            for future in as_completed(futures):
                future.result()
                bar.update()
            records = [future.result() for future in futures]
    bar.close()
    return records


def summarize(records: list[dict]) -> list[dict]:
    """Aggregate records per (dataset, method): mean and standard deviation (population) over seeds."""
    rows = []
    keys = sorted({(record["dataset"], record["method"]) for record in records},
                  key=lambda key: (DATASETS.index(key[0]), METHODS.index(key[1])))
    for dataset, method in keys:
        group = [record for record in records if record["dataset"] == dataset and record["method"] == method]
        row = {"dataset": dataset, "method": method, "num_modes": make_mixture(dataset).num_modes,
               "seeds": [record["seed"] for record in group]}
        for metric in ("modes_covered", "high_quality_share", "kl_to_uniform", "train_seconds"):
            values = np.array([record[metric] for record in group], dtype=np.float64)
            finite = values[np.isfinite(values)]
            row[f"{metric}_mean"] = float(finite.mean()) if len(finite) else math.nan
            row[f"{metric}_std"] = float(finite.std()) if len(finite) else math.nan
            row[f"{metric}_undefined"] = int(len(values) - len(finite))
        row["modes_covered_per_seed"] = [record["modes_covered"] for record in group]
        rows.append(row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    """Format ``summarize`` rows as a markdown table (mean ± standard deviation over seeds)."""
    lines = [
        "| dataset | method | modes covered | per seed | high-quality share | KL to uniform (nats) | seconds per run |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        kl = f"{row['kl_to_uniform_mean']:.3f} ± {row['kl_to_uniform_std']:.3f}"
        if row["kl_to_uniform_undefined"]:
            kl += f" ({row['kl_to_uniform_undefined']} runs without high-quality samples left out)"
        lines.append(
            f"| {row['dataset']} | {row['method']} "
            f"| {row['modes_covered_mean']:.1f} ± {row['modes_covered_std']:.1f} of {row['num_modes']} "
            f"| {', '.join(str(count) for count in row['modes_covered_per_seed'])} "
            f"| {row['high_quality_share_mean']:.3f} ± {row['high_quality_share_std']:.3f} "
            f"| {kl} "
            f"| {row['train_seconds_mean']:.1f} |"
        )
    return "\n".join(lines)


def plot_samples(records: list[dict], path: Path) -> None:
    """Save one scatter per (dataset, method) for the lowest seed, with the mode centres marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = [name for name in DATASETS if any(record["dataset"] == name for record in records)]
    methods = [name for name in METHODS if any(record["method"] == name for record in records)]
    figure, axes = plt.subplots(len(datasets), len(methods), figsize=(3.2 * len(methods), 3.2 * len(datasets)),
                                squeeze=False)
    for row, dataset in enumerate(datasets):
        mixture = make_mixture(dataset)
        limit = np.abs(mixture.centers).max() + 1.5
        for column, method in enumerate(methods):
            axis = axes[row][column]
            matching = [record for record in records if record["dataset"] == dataset and record["method"] == method]
            record = min(matching, key=lambda item: item["seed"])
            points = np.asarray(record["samples"])
            axis.scatter(points[:, 0], points[:, 1], s=2, alpha=0.4, color="tab:blue")
            axis.scatter(mixture.centers[:, 0], mixture.centers[:, 1], s=30, marker="x", color="tab:red")
            axis.set_xlim(-limit, limit)
            axis.set_ylim(-limit, limit)
            axis.set_aspect("equal")
            axis.set_title(f"{dataset} / {method}, seed {record['seed']}\n"
                           f"{record['modes_covered']} of {mixture.num_modes} modes, "
                           f"{100 * record['high_quality_share']:.0f}% high quality", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Vanilla GAN and the remedies on 2-D Gaussian mixtures with known modes.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS), help="mixtures to run")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                        help="vanilla GAN and/or remedies to run")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS), help="random seeds, one run each")
    parser.add_argument("--steps", type=int, default=STEPS, help="training steps per run (one D and one G update)")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="points per real and per generated batch")
    parser.add_argument("--g-lr", type=float, default=G_LEARNING_RATE, help="Adam learning rate of the generator")
    parser.add_argument("--d-lr", type=float, default=D_LEARNING_RATE, help="Adam learning rate of the discriminator")
    parser.add_argument("--z-dim", type=int, default=Z_DIM, help="latent dimension of the generator")
    parser.add_argument("--hidden", type=int, default=HIDDEN, help="hidden-layer width of both MLPs")
    parser.add_argument("--activation", choices=tuple(ACTIVATIONS), default=ACTIVATION,
                        help="hidden-layer nonlinearity of both MLPs")
    parser.add_argument("--unroll-steps", type=int, default=UNROLL_STEPS, help="lookahead steps k of the unrolled remedy")
    parser.add_argument("--mbd-kernels", type=int, default=MINIBATCH_KERNELS,
                        help="number of kernels B of minibatch discrimination")
    parser.add_argument("--mbd-kernel-dim", type=int, default=MINIBATCH_KERNEL_DIM,
                        help="dimension C of each minibatch-discrimination kernel")
    parser.add_argument("--mbd-statistic", choices=MINIBATCH_STATISTICS, default=MINIBATCH_STATISTIC,
                        help="average (mean) or sum each sample's closeness to the others")
    parser.add_argument("--mbd-hidden", type=int, default=MINIBATCH_HIDDEN,
                        help="hidden units of the minibatch head; 0 gives the paper's linear head")
    parser.add_argument("--eval-samples", type=int, default=EVAL_SAMPLES, help="generated points scored per run")
    parser.add_argument("--workers", type=int, default=WORKERS, help="runs trained in parallel (processes)")
    parser.add_argument("--threads", type=int, default=THREADS, help="torch intra-op CPU threads per worker")
    parser.add_argument("--device", choices=("cpu", "cuda", "mps", "auto"), default="cpu",
                        help="where each run trains; MLPs this small usually run fastest on the CPU")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output folder for results.md, results.json and samples.png")
    parser.add_argument("--quick", action="store_true", help=f"smoke-test size: {QUICK_DESCRIPTION}")
    return parser


def main(argv=None) -> list[dict]:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quick:
        # Options given on the command line still override the --quick values.
        parser.set_defaults(**QUICK_OPTIONS)
        args = parser.parse_args(argv)
    for option in ("eval_samples", "workers", "threads", "steps", "batch_size", "z_dim", "hidden", "unroll_steps",
                   "mbd_kernels", "mbd_kernel_dim"):
        if getattr(args, option) < 1:
            parser.error(f"invalid --{option.replace('_', '-')} {getattr(args, option)}: expected an integer >= 1")
    if args.mbd_hidden < 0:
        parser.error(f"invalid --mbd-hidden {args.mbd_hidden}: expected an integer >= 0")
    for option in ("g_lr", "d_lr"):
        if not (math.isfinite(getattr(args, option)) and getattr(args, option) > 0):
            parser.error(f"invalid --{option.replace('_', '-')} {getattr(args, option)}: expected a positive number")
    try:
        settings = ToySettings(
            steps=args.steps, batch_size=args.batch_size, g_lr=args.g_lr, d_lr=args.d_lr, z_dim=args.z_dim,
            hidden=args.hidden, activation=args.activation, unroll_steps=args.unroll_steps,
            minibatch_kernels=args.mbd_kernels, minibatch_kernel_dim=args.mbd_kernel_dim,
            minibatch_statistic=args.mbd_statistic, minibatch_hidden=args.mbd_hidden,
        )
        device = select_device(args.device)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    print(f"device {device}, {args.workers} workers x {args.threads} threads; {len(args.datasets)} datasets x "
          f"{len(args.methods)} methods x {len(args.seeds)} seeds, {settings.steps} steps each")

    start = time.perf_counter()
    records = run_benchmark(
        args.datasets, args.methods, args.seeds, settings, eval_samples=args.eval_samples,
        workers=args.workers, threads=args.threads, device=str(device),
    )
    wall_seconds = time.perf_counter() - start
    rows = summarize(records)
    table = markdown_table(rows)
    print(table)
    print(f"wall time {wall_seconds:.0f} s")

    command = "python problem1/toy_mixture.py " + " ".join(sys.argv[1:] if argv is None else argv)
    settings_record = {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(
        f"Command: `{command.strip()}`\n\n{table}\n\nWall time {wall_seconds:.0f} s "
        f"({args.workers} workers x {args.threads} threads).\n"
    )
    atomic_write_json(
        {"settings": settings_record, "versions": software_versions(), "wall_seconds": wall_seconds,
         "summary": rows, "runs": records},
        args.out / "results.json",
    )
    plot_samples(records, args.out / "samples.png")
    print(f"wrote {args.out / 'results.md'}, results.json and samples.png")
    return records


if __name__ == "__main__":
    main()
