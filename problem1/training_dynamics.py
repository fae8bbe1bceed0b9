"""GAN training loop, per-epoch mode-collapse measurements and the mode-collapse figure.

    from problem1.training_dynamics import train_gan, LetterEvaluator
    history = train_gan(G, D, ShuffledBatches(train.images, train.labels, 64), 100, "cpu",
                        evaluator=LetterEvaluator(val.images, z_dim=100))

The command-line entry point is ``python problem1/train.py``; it drives the
same ``GANTrainer`` and adds checkpoints, resume and figures.

Objective (Goodfellow et al. 2014, with the non-saturating generator loss):
D minimises BCE(D(x), 1) + BCE(D(G(z)), 0); G minimises BCE(D(G(z)), 1),
or the loss of a remedy from ``problem1.fixes``. Images reach both networks
in [-1, 1]; datasets supply [0, 1] and the loop rescales them.
"""
from __future__ import annotations

import contextlib
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn
from tqdm.auto import tqdm

from problem1.models import NUM_LETTERS, one_hot_labels
from provided.paths import DEFAULT_FONT_DIR

LETTERS = tuple(chr(ord("A") + index) for index in range(NUM_LETTERS))

# Values logged for every training step, in this order.
STEP_KEYS = ("d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm")


# --------------------------------------------------------------------------- losses


def discriminator_loss_from_logits(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Return the discriminator's BCE loss: mean BCE(real -> 1) + mean BCE(fake -> 0), in nats.

    The two batch means are summed, not averaged, as in the DCGAN reference
    implementation (errD = errD_real + errD_fake); a discriminator that
    cannot tell the two apart scores 2 ln 2 = 1.386.
    """
    real_term = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake_term = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real_term + fake_term


def generator_nonsaturating_loss(fake_logits: Tensor) -> Tensor:
    """Return mean BCE(D(G(z)) -> 1) = -mean log D(G(z)), in nats (the non-saturating loss)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


# --------------------------------------------------------------------------- data order and RNG state


class ShuffledBatches:
    """Mini-batches drawn from in-memory tensors, reshuffled every epoch by a generator of its own.

    images: [N, 1, 28, 28] float in [0, 1]; labels: int64 [N]. Each pass
    yields ``ceil(N / batch_size)`` pairs (images, labels); the last batch is
    smaller when N is not a multiple. The shuffling generator's state is part
    of ``state_dict``, so a resumed run gets the same order of batches.
    """

    def __init__(self, images: Tensor, labels: Tensor, batch_size: int = 64, seed: int = 0):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"images and labels differ in length: {images.shape[0]} images, {labels.shape[0]} labels")
        if images.shape[0] == 0:
            raise ValueError("no training images")
        self.images = images.contiguous()
        self.labels = labels
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(self.images.shape[0] / self.batch_size)

    def __iter__(self):
        order = torch.randperm(self.images.shape[0], generator=self.generator)
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.images[index], self.labels[index]

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


def capture_rng_state() -> dict:
    """Return the global torch, CUDA, NumPy and Python RNG states as checkpoint-safe values."""
    numpy_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Restore what ``capture_rng_state`` returned."""
    torch.set_rng_state(state["torch"])
    name, keys, position, has_gauss, cached_gaussian = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached_gaussian))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def preserved_rng_state():
    """Run the block, then put every global RNG back, so evaluation never shifts training's random stream."""
    state = capture_rng_state()
    try:
        yield
    finally:
        restore_rng_state(state)


# --------------------------------------------------------------------------- training


class TrainingDiverged(RuntimeError):
    """Raised when a loss or gradient norm becomes NaN, infinite or larger than the allowed maximum."""


# Layers whose output for one sample does not depend on the other samples of the batch.
_PER_SAMPLE_LAYERS = (
    nn.Sequential, nn.Conv2d, nn.Linear, nn.LeakyReLU, nn.ReLU, nn.Dropout, nn.Dropout2d, nn.Flatten, nn.Identity,
)


def _is_per_sample(module: nn.Module) -> bool:
    """Return True when every submodule is a known per-sample layer (no BatchNorm, no minibatch statistics)."""
    return all(type(sub) in _PER_SAMPLE_LAYERS or sub is module for sub in module.modules())


def _total_grad_norm(parameters) -> Tensor:
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.nn.utils.get_total_norm(grads)


class GANTrainer:
    """One generator, one discriminator, their Adam optimizers, an optional remedy, and the step history.

    Each ``train_step`` updates D once on (real, G(z).detach()) and then G
    once with the non-saturating loss or ``remedy.generator_loss``. The
    remedy's ``prepare_discriminator`` runs before the optimizers exist.

    ``history`` contains plain Python values (JSON-ready), as columns of lists:

    - ``remedy``: the remedy's name, "vanilla" for none.
    - ``steps``: per logged step, ``epoch``, ``step`` (global, from 1), the
      ``STEP_KEYS`` and any remedy statistics.
    - ``epochs``: per epoch, ``epoch`` (from 1), ``seconds`` (training time
      only, evaluation excluded) and the batch means of ``STEP_KEYS``.
    - ``evaluations``: per evaluation, the fields of ``LetterEvaluator.evaluate``
      (train.py adds ``epoch`` and ``seconds``).
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        device,
        *,
        remedy=None,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        max_loss: float = 1e3,
        log_every: int = 1,
        autocast_dtype: torch.dtype | None = None,
    ):
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if log_every <= 0:
            raise ValueError(f"log_every must be positive, got {log_every}")

        self.device = torch.device(device)
        if remedy is not None:
            remedy.prepare_discriminator(discriminator)
        # On the CPU, oneDNN convolutions in channels-last layout made this
        # step about 10% faster (torch 2.13, 1 thread, batch 64).
        self.memory_format = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        self.generator = generator.to(self.device, memory_format=self.memory_format)
        self.discriminator = discriminator.to(self.device, memory_format=self.memory_format)
        self.remedy = remedy


        self.g_optimizer = torch.optim.Adam(self.generator.parameters(), lr=lr, betas=betas)
        self.d_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=betas)
        # Both BCE losses are in nats, so one ceiling fits them. A remedy's own
        # generator loss (feature matching: a squared feature distance) has
        # another scale and is only checked for NaN and inf, unless the remedy
        # sets max_generator_loss.
        self.max_loss = max_loss
        self.max_generator_loss = max_loss if remedy is None else getattr(remedy, "max_generator_loss", math.inf)
        self.log_every = log_every
        # Mixed precision for the forward passes (torch.bfloat16 on CPU); None trains in fp32.
        self.autocast_dtype = autocast_dtype

        self.conditional = bool(getattr(generator, "conditional", False))
        self.num_classes = getattr(generator, "num_classes", NUM_LETTERS)
        self.epoch = 0  # completed epochs
        self.global_step = 0
        self.history = {
            "remedy": remedy.name if remedy is not None else "vanilla",
            "steps": {"epoch": [], "step": [], **{key: [] for key in STEP_KEYS}},
            "epochs": {"epoch": [], "seconds": [], **{key: [] for key in STEP_KEYS}},
            "evaluations": {},
        }
        self._g_params = [p for p in self.generator.parameters() if p.requires_grad]
        # Real and generated images may share one discriminator pass only when
        # no layer mixes samples (minibatch discrimination and BatchNorm do).
        self.joint_discriminator_pass = _is_per_sample(self.discriminator)

    # ----------------------------------------------------------------- one step

    def train_step(self, images: Tensor, labels: Tensor) -> tuple[Tensor, dict]:
        """Update D once and G once on one batch.

        images: [B, 1, 28, 28] in [0, 1]; labels: int64 [B] (used only when
        the generator is conditional). Returns the ``STEP_KEYS`` values as one
        detached tensor [6] (no device synchronisation) and the remedy's dict
        of floats.
        """
        if self.autocast_dtype is None:
            return self._train_step(images, labels)
        with torch.autocast(self.device.type, dtype=self.autocast_dtype):
            return self._train_step(images, labels)

    def _train_step(self, images: Tensor, labels: Tensor) -> tuple[Tensor, dict]:
        real = images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format) * 2.0 - 1.0
        batch_size = real.shape[0]
        class_label = one_hot_labels(labels.to(self.device), self.num_classes) if self.conditional else None
        z = torch.randn(batch_size, self.generator.z_dim, device=self.device)
        fake = self.generator(z, class_label)

        # Update D: minimise BCE(D(x), 1) + BCE(D(G(z)), 0). When no layer
        # mixes samples, one pass over both halves equals two separate passes
        # and costs fewer kernel calls.
        if self.joint_discriminator_pass:
            pair_label = torch.cat([class_label, class_label]) if class_label is not None else None
            logits = self.discriminator.logits(torch.cat([real, fake.detach()]), pair_label)
            real_logits, fake_logits = logits[:batch_size], logits[batch_size:]
        else:
            real_logits = self.discriminator.logits(real, class_label)
            fake_logits = self.discriminator.logits(fake.detach(), class_label)
        d_loss = discriminator_loss_from_logits(real_logits, fake_logits)
        self.d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        d_grad_norm = _total_grad_norm(self.discriminator.parameters())
        self.d_optimizer.step()

        # Update G: minimise BCE(D(G(z)), 1), or the remedy's loss.
        if self.remedy is None:
            g_loss = generator_nonsaturating_loss(self.discriminator.logits(fake, class_label))
            remedy_stats = {}
        else:
            g_loss, remedy_stats = self.remedy.generator_loss(
                generator=self.generator,
                discriminator=self.discriminator,
                real_images=real,
                z=z,
                class_label=class_label,
                d_optimizer=self.d_optimizer,
            )
        # autograd.grad over G's parameters only: the discriminator's weight
        # gradients, which this update would discard, are never computed.
        g_grads = torch.autograd.grad(g_loss, self._g_params, allow_unused=True)
        for parameter, grad in zip(self._g_params, g_grads):
            parameter.grad = grad
        g_grad_norm = _total_grad_norm(self._g_params)
        self.g_optimizer.step()

        with torch.no_grad():
            stats = torch.stack(
                [
                    d_loss.detach(),
                    g_loss.detach(),
                    torch.sigmoid(real_logits.detach()).mean(),
                    torch.sigmoid(fake_logits.detach()).mean(),
                    d_grad_norm.to(d_loss.device),
                    g_grad_norm.to(d_loss.device),
                ]
            ).float()
        return stats, remedy_stats

    # ----------------------------------------------------------------- one epoch

    def train_epoch(self, batches, *, progress: bool = True, sync_every: int = 10) -> dict:
        """Run one pass over ``batches`` and return the epoch's record (epoch, seconds, batch means).

        Step values move to the host every ``sync_every`` steps, when they are
        checked and logged. Raises TrainingDiverged when a loss or gradient
        norm is not finite or a loss exceeds its ceiling (``max_loss``, or
        ``max_generator_loss`` for a remedy's generator loss). Nothing from the
        failed epoch enters ``history`` then, but the networks hold the
        diverged weights, so restore a checkpoint before training further.
        """
        epoch = self.epoch + 1
        step_log = {"epoch": [], "step": [], **{key: [] for key in STEP_KEYS}}
        epoch_sums = torch.zeros(len(STEP_KEYS), dtype=torch.float64)
        pending: list[tuple[int, Tensor, dict]] = []
        n_steps = 0

        self.generator.train()
        self.discriminator.train()
        start = time.perf_counter()
        bar = tqdm(batches, desc=f"epoch {epoch}", leave=False, disable=not progress, dynamic_ncols=True)
        for images, labels in bar:
            n_steps += 1
            stats, remedy_stats = self.train_step(images, labels)
            pending.append((self.global_step + n_steps, stats, remedy_stats))
            if len(pending) >= sync_every:
                latest = self._flush(pending, epoch, step_log, epoch_sums)
                bar.set_postfix(d_loss=f"{latest[0]:.3f}", g_loss=f"{latest[1]:.3f}", refresh=False)
        if pending:
            self._flush(pending, epoch, step_log, epoch_sums)
        bar.close()
        seconds = time.perf_counter() - start
        if n_steps == 0:
            raise ValueError("the data loader yielded no batches")

        # The epoch finished without divergence: commit its records.
        self.epoch = epoch
        self.global_step += n_steps
        for key, values in step_log.items():
            self.history["steps"].setdefault(key, []).extend(values)
        means = (epoch_sums / n_steps).tolist()
        record = {"epoch": epoch, "seconds": seconds, **dict(zip(STEP_KEYS, means))}
        for key, value in record.items():
            self.history["epochs"][key].append(value)
        return record

    def _flush(self, pending, epoch, step_log, epoch_sums) -> list[float]:
        """Move pending step values to the host, check them, and log every ``log_every``-th step."""
        values = torch.stack([stats for _, stats, _ in pending]).double().cpu()
        finite = torch.isfinite(values).all(dim=1)
        too_large = (values[:, 0].abs() > self.max_loss) | (values[:, 1].abs() > self.max_generator_loss)
        for row, (step, _, remedy_stats) in enumerate(pending):
            if not bool(finite[row]) or bool(too_large[row]):
                described = ", ".join(f"{key}={value:.4g}" for key, value in zip(STEP_KEYS, values[row].tolist()))
                raise TrainingDiverged(
                    f"training diverged at epoch {epoch}, step {step}: {described} "
                    f"(limits |d_loss| <= {self.max_loss:g}, |g_loss| <= {self.max_generator_loss:g}); "
                    "the last good checkpoint is kept"
                )
            if step % self.log_every == 0:
                step_log["epoch"].append(epoch)
                step_log["step"].append(step)
                for key, value in zip(STEP_KEYS, values[row].tolist()):
                    step_log[key].append(value)
                for key, value in remedy_stats.items():
                    step_log.setdefault(key, []).append(float(value))
        epoch_sums += values.sum(dim=0)
        latest = values[-1].tolist()
        pending.clear()
        return latest

    def record_evaluation(self, metrics: dict) -> None:
        """Append one ``LetterEvaluator.evaluate`` result to ``history["evaluations"]``."""
        evaluations = self.history["evaluations"]
        for key, value in metrics.items():
            evaluations.setdefault(key, []).append(value)

    # ----------------------------------------------------------------- checkpoint state

    def state_dict(self) -> dict:
        """Return everything needed to continue training, except the global RNG states."""
        return {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "g_optimizer": self.g_optimizer.state_dict(),
            "d_optimizer": self.d_optimizer.state_dict(),
            "remedy": self.remedy.state_dict() if self.remedy is not None else {},
            "epoch": self.epoch,
            "global_step": self.global_step,
            "history": self.history,
        }

    def load_state_dict(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.g_optimizer.load_state_dict(state["g_optimizer"])
        self.d_optimizer.load_state_dict(state["d_optimizer"])
        if self.remedy is not None:
            self.remedy.load_state_dict(state["remedy"])
        self.epoch = state["epoch"]
        self.global_step = state["global_step"]
        self.history = state["history"]


# --------------------------------------------------------------------------- evaluation


class LetterEvaluator:
    """Per-epoch scorer of a generator on fixed latent codes, judged by the trained letter classifier.

    real_images: validation images [N, 1, 28, 28] in [0, 1]. Their classifier
    feature statistics are computed once here, so each ``evaluate`` call
    only scores the generated samples. The classifier is the one that
    ``load_letter_classifier(font_dir)`` returns (trained on first use).
    The n_samples codes come from a torch.Generator seeded with ``seed``, so
    evaluation neither reads nor advances the training RNG. A conditional
    generator gets the labels 0, 1, ..., 25, 0, 1, ... in turn.
    """

    def __init__(
        self,
        real_images: Tensor,
        *,
        z_dim: int = 100,
        conditional: bool = False,
        n_samples: int = 1000,
        seed: int = 0,
        font_dir=DEFAULT_FONT_DIR,
        batch_size: int = 500,
    ):
        from provided.letter_classifier import load_letter_classifier
        from provided.metrics import letter_feature_statistics

        if n_samples <= 0:
            raise ValueError(f"n_samples must be positive, got {n_samples}")
        self.font_dir = Path(font_dir)
        self.classifier = load_letter_classifier(self.font_dir)
        self.n_samples = n_samples
        self.batch_size = batch_size
        self.z = torch.randn(n_samples, z_dim, generator=torch.Generator().manual_seed(seed))
        self.labels = torch.arange(n_samples) % NUM_LETTERS if conditional else None
        self.real_mu, self.real_sigma = letter_feature_statistics(
            real_images, value_range=(0.0, 1.0), classifier=self.classifier
        )

    @torch.no_grad()
    def _probabilities(self, images: Tensor) -> Tensor:
        """Return letter probabilities [N, 26] for images in [-1, 1], in batches of ``batch_size``."""
        return torch.cat([
            self.classifier.predict_proba(images[start : start + self.batch_size]).cpu()
            for start in range(0, len(images), self.batch_size)
        ])

    @torch.no_grad()
    def generate(self, generator: nn.Module) -> Tensor:
        """Return the generator's images for the fixed codes, [n_samples, 1, 28, 28] in [-1, 1], on the CPU.

        The generator runs in eval mode (BatchNorm running statistics) and
        returns to its previous mode afterwards.
        """
        was_training = generator.training
        device = next(generator.parameters()).device
        generator.eval()
        try:
            chunks = []
            for start in range(0, self.n_samples, self.batch_size):
                z = self.z[start : start + self.batch_size].to(device)
                labels = None
                if self.labels is not None:
                    labels = self.labels[start : start + self.batch_size].to(device)
                chunks.append(generator(z, labels).float().cpu())
        finally:
            generator.train(was_training)
        return torch.cat(chunks)

    @torch.no_grad()
    def evaluate(self, generator: nn.Module) -> dict:
        """Return the mode-collapse metrics of ``generator`` as plain Python values.

        Keys: ``letters_covered`` (letters the classifier finds, of 26),
        ``coverage`` (the same as a fraction), ``letter_counts`` (26 counts in
        A-Z order), ``missing_letters``, ``effective_letters`` (exp of the
        entropy of the letter histogram), ``kl_from_uniform`` (nats),
        ``recognizable_fraction``, ``fld`` (Frechet letter distance to the
        validation images; lower is better) and ``n_samples``.
        """
        from provided.metrics import frechet_distance, letter_feature_statistics, mode_coverage_score

        samples = self.generate(generator)
        coverage = mode_coverage_score(samples, self._probabilities, value_range=(-1.0, 1.0))
        mu, sigma = letter_feature_statistics(samples, value_range=(-1.0, 1.0), classifier=self.classifier)
        fld = frechet_distance(mu, sigma, self.real_mu, self.real_sigma)
        counts = [int(coverage["letter_counts"].get(letter, 0)) for letter in LETTERS]
        return {
            "letters_covered": NUM_LETTERS - len(coverage["missing_letters"]),
            "coverage": float(coverage["coverage_score"]),
            "letter_counts": counts,
            "missing_letters": sorted(coverage["missing_letters"]),
            "effective_letters": float(coverage["effective_letters"]),
            "kl_from_uniform": float(coverage["kl_from_uniform"]),
            "recognizable_fraction": float(coverage["recognizable_fraction"]),
            "fld": float(fld),
            "n_samples": len(samples),
        }


def analyze_mode_coverage(
    generator: nn.Module, device, n_samples: int = 1000, *, seed: int = 0, font_dir=DEFAULT_FONT_DIR
) -> float:
    """Return the fraction of the 26 letters (0 to 1) that the trained classifier finds among n_samples images.

    A letter counts when at least one sample is read as it with probability
    >= 0.9 (``provided.metrics.mode_coverage_score``). The codes come from a
    generator of their own seeded with ``seed``, so the global RNG is
    untouched. ``device`` is where the generator runs.
    """
    from provided.metrics import mode_coverage_score

    generator = generator.to(device)
    z = torch.randn(n_samples, generator.z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    labels = (torch.arange(n_samples) % NUM_LETTERS).to(device) if getattr(generator, "conditional", False) else None
    was_training = generator.training
    generator.eval()
    try:
        with torch.no_grad():
            samples = generator(z, labels).float().cpu()
    finally:
        generator.train(was_training)
    return float(mode_coverage_score(samples, value_range=(-1.0, 1.0), font_dir=font_dir)["coverage_score"])


# --------------------------------------------------------------------------- library loop


def train_gan(
    generator: nn.Module,
    discriminator: nn.Module,
    data_loader,
    num_epochs: int = 100,
    device="cpu",
    *,
    remedy=None,
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    evaluator: LetterEvaluator | None = None,
    eval_every: int = 1,
    log_every: int = 1,
    max_loss: float = 1e3,
    progress: bool = True,
) -> dict:
    """Train ``generator`` against ``discriminator`` for ``num_epochs`` passes and return the history.

    data_loader: any iterable of (images [B, 1, 28, 28] in [0, 1], int64
    labels [B]), for example ``ShuffledBatches`` or a torch DataLoader over
    ``FontDataset``. remedy: None for the vanilla GAN, or a
    ``problem1.fixes.Remedy``. evaluator: a ``LetterEvaluator`` scored every
    ``eval_every`` epochs and after the last one; None skips evaluation.
    The history is ``GANTrainer.history``. Raises TrainingDiverged on a
    NaN or exploding loss. This loop keeps no checkpoints; train.py does.
    """
    if num_epochs <= 0:
        raise ValueError(f"num_epochs must be positive, got {num_epochs}")
    if eval_every <= 0:
        raise ValueError(f"eval_every must be positive, got {eval_every}")
    trainer = GANTrainer(
        generator, discriminator, device, remedy=remedy, lr=lr, betas=betas, max_loss=max_loss, log_every=log_every
    )
    for _ in range(num_epochs):
        record = trainer.train_epoch(data_loader, progress=progress)
        summary = f"epoch {record['epoch']}/{num_epochs}  d_loss {record['d_loss']:.3f}  g_loss {record['g_loss']:.3f}"
        if evaluator is not None and (record["epoch"] % eval_every == 0 or record["epoch"] == num_epochs):
            with preserved_rng_state():
                metrics = evaluator.evaluate(trainer.generator)
            trainer.record_evaluation({"epoch": record["epoch"], **metrics})
            summary += f"  letters {metrics['letters_covered']}/26  fld {metrics['fld']:.2f}"
        if progress:
            tqdm.write(summary)
    return trainer.history


# --------------------------------------------------------------------------- figure


def letter_shares(history: dict) -> tuple[list[int], np.ndarray]:
    """Return the evaluated epochs and each letter's share of all evaluation samples, [n_evaluations, 26].

    A share counts only the samples the classifier recognises as that
    letter, so a row sums to the recognisable fraction, not to 1.
    """
    evaluations = history.get("evaluations", {})
    epochs = list(evaluations.get("epoch", []))
    counts = np.asarray(evaluations.get("letter_counts", []), dtype=float).reshape(len(epochs), NUM_LETTERS)
    n_samples = np.asarray(evaluations.get("n_samples", [1] * len(epochs)), dtype=float).reshape(-1, 1)
    return epochs, counts / n_samples


def visualize_mode_collapse(history: dict, save_path) -> Figure:
    """Draw coverage, effective letters, the letter survival heatmap and the losses; save to ``save_path``.

    Panels: letters covered and effective letters per evaluated epoch, the
    letter x epoch share heatmap, the epoch-mean losses, and the epoch-mean
    D(x), D(G(z)) with the Frechet letter distance. Evaluation panels stay
    empty when the history has no evaluations. Returns the figure.
    """
    from provided.visualize import plot_letter_survival_heatmap

    epochs, shares = letter_shares(history)
    evaluations = history.get("evaluations", {})
    per_epoch = history["epochs"]

    figure = Figure(figsize=(14, 9))
    axes = figure.subplots(2, 2)
    figure.suptitle(f"Mode collapse analysis ({history.get('remedy', 'vanilla')})")

    ax = axes[0, 0]
    if epochs:
        ax.plot(epochs, evaluations["letters_covered"], marker="o", ms=3, label="letters covered")
        ax.plot(epochs, evaluations["effective_letters"], marker="s", ms=3, label="effective letters (exp entropy)")
        ax.legend(loc="lower left")
    ax.axhline(NUM_LETTERS, color="gray", lw=0.8, ls="--")
    ax.set_ylim(0, NUM_LETTERS + 1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("letters")
    ax.set_title("Coverage over training")

    if epochs:
        plot_letter_survival_heatmap(epochs, shares, ax=axes[0, 1])
    else:
        axes[0, 1].set_title("Letter survival (no evaluations)")

    ax = axes[1, 0]
    ax.plot(per_epoch["epoch"], per_epoch["d_loss"], label="D loss")
    ax.plot(per_epoch["epoch"], per_epoch["g_loss"], label="G loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (epoch mean)")
    ax.set_title("Losses")
    ax.legend()

    ax = axes[1, 1]
    ax.plot(per_epoch["epoch"], per_epoch["d_real"], label="D(x)")
    ax.plot(per_epoch["epoch"], per_epoch["d_fake"], label="D(G(z))")
    ax.set_ylim(0, 1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("discriminator output (epoch mean)")
    ax.set_title("Discriminator outputs and sample quality")
    ax.legend(loc="upper left")
    if epochs:
        twin = ax.twinx()
        twin.plot(epochs, evaluations["fld"], color="tab:red", ls=":")
        twin.set_ylabel("Frechet letter distance (dotted)", color="tab:red")

    figure.tight_layout()
    save_path = Path(save_path)
    save_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(save_path, dpi=120)
    return figure
