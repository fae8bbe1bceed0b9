"""Loss, schedules, training loop, collapse diagnostics and style-conditioned sampling for the drum VAE.

All log probabilities and KL values are in nats; "per pattern" means summed
over the 144 cells (or the latent dimensions) and averaged over patterns.
"""
from __future__ import annotations

import contextlib
import math
from typing import Callable, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from problem2.hierarchical_vae import HierarchicalDrumVAE, VAEOutput

ANNEAL_METHODS = ("cyclical", "linear", "sigmoid", "none")
LR_SCHEDULES = ("constant", "cosine")
ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2016: a unit is active when Var_x(E_q[u | x]) > 0.01
LOG_2PI = math.log(2 * math.pi)


# ---------------------------------------------------------------------------
# Gaussian pieces of the ELBO

def gaussian_kl(mu_q: torch.Tensor, logvar_q: torch.Tensor,
                mu_p: torch.Tensor | None = None, logvar_p: torch.Tensor | None = None) -> torch.Tensor:
    """Return KL(N(mu_q, diag e^logvar_q) || N(mu_p, diag e^logvar_p)) per dimension, in nats.

    The output has the broadcast shape of the inputs (no sum over dimensions).
    With ``mu_p`` and ``logvar_p`` left as None the second Gaussian is N(0, I),
    and the sum over dimensions is -0.5 * sum(1 + logvar - mu^2 - e^logvar)
    (Kingma and Welling 2014, "Auto-Encoding Variational Bayes", appendix B).
    The general case is 0.5 * (logvar_p - logvar_q + (e^logvar_q + (mu_q - mu_p)^2) / e^logvar_p - 1).
    """
    if mu_p is None:
        mu_p = torch.zeros_like(mu_q)
    if logvar_p is None:
        logvar_p = torch.zeros_like(logvar_q)
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1.0)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Return log N(z; mu, diag e^logvar) per dimension, in nats (no sum over dimensions)."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp())


def gaussian_entropy(logvar: torch.Tensor) -> torch.Tensor:
    """Return the differential entropy of N(mu, diag e^logvar) per dimension, in nats."""
    return 0.5 * (LOG_2PI + 1.0 + logvar)


def low_level_kl_per_dim(output: VAEOutput) -> torch.Tensor:
    """Estimate the per-dimension terms of KL(q(z_low | x) || p(z_low | z_high)), [B, z_low_dim] nats.

    z_high is drawn from q(z_high | z_low) at the same z_low sample, so z_low
    and z_high are dependent under q and the expectation of
    log q(z_low | x) - log p(z_low | z_high) must be taken jointly. The
    estimate is -H[q(z_low | x)] (exact) minus log p(z_low | z_high) at the
    joint sample (one Monte Carlo draw), which is unbiased. The analytic KL
    between the two Gaussians at the sampled z_high would treat z_low as
    independent of z_high and so is not the ELBO's term.
    """
    entropy = gaussian_entropy(output.logvar_low)
    cross = gaussian_log_density(output.z_low, output.prior_mu_low, output.prior_logvar_low)
    return -entropy - cross


def apply_free_bits(kl_per_dim: torch.Tensor, free_bits: float) -> torch.Tensor:
    """Return the free-bits KL per latent dimension, [D], from per-pattern values [B, D] in nats.

    Each dimension's KL is first averaged over the batch and then clamped from
    below at ``free_bits`` nats (Kingma et al. 2016, "Improved Variational
    Inference with Inverse Autoregressive Flow"), so a dimension below the floor
    gets no gradient pushing its KL further down. The clamp applies per
    dimension, never to the total. ``free_bits`` = 0 returns the plain batch mean.
    """
    if free_bits < 0:
        raise ValueError(f"free_bits must be >= 0 nats, got {free_bits}")
    batch_mean = kl_per_dim.mean(dim=0)
    if free_bits == 0:
        return batch_mean
    return torch.clamp(batch_mean, min=free_bits)


class ELBOTerms(NamedTuple):
    """Terms of the hierarchical ELBO for one batch, in nats.

    loss: scalar to minimise, recon + beta_low * KL_low + beta_high * KL_high
        with free bits applied per dimension.
    elbo: scalar, the true ELBO per pattern (KL weights 1, no free bits).
    recon: scalar, -E_q[log p(x | z)] per pattern.
    kl_low, kl_high: scalars, the two KL terms per pattern (no free bits).
        kl_low can be negative. It equals the conditional KL of z_low given
        z_high minus the information that z_high carries about the z_low
        sample, and kl_high pays for that information (see ``low_level_kl_per_dim``).
    kl_low_per_dim, kl_high_per_dim: [z_low_dim], [z_high_dim], batch means.
    elbo_per_pattern: [B], the ELBO of each pattern (one sample of z).
    """

    loss: torch.Tensor
    elbo: torch.Tensor
    recon: torch.Tensor
    kl_low: torch.Tensor
    kl_high: torch.Tensor
    kl_low_per_dim: torch.Tensor
    kl_high_per_dim: torch.Tensor
    elbo_per_pattern: torch.Tensor


def compute_hierarchical_elbo(x: torch.Tensor, output: VAEOutput, beta_low: float = 1.0,
                              beta_high: float = 1.0, free_bits: float = 0.0,
                              free_bits_high: float | None = None) -> ELBOTerms:
    """Compute the hierarchical ELBO and the training loss for patterns x [B, 16, 9] in {0, 1}.

    ELBO(x) = E_q[log p(x | z_high, z_low)]
              - KL(q(z_low | x) || p(z_low | z_high))
              - KL(q(z_high | z_low) || N(0, I))

    with one sample (z_low, z_high) from q(z_low | x) q(z_high | z_low) in
    ``output``. The reconstruction term is the Bernoulli log likelihood summed
    over the 144 cells. The high-level KL is the analytic Gaussian KL at the
    sampled z_low; the low-level KL is estimated as in ``low_level_kl_per_dim``.
    ``beta_low`` and ``beta_high`` weight the two KL terms in the loss (the
    annealing schedule and the per-level weight set them) and ``free_bits`` is
    the per-dimension floor of ``apply_free_bits`` for z_low, and for z_high
    too unless ``free_bits_high`` is given. None of them changes ``elbo``.
    """
    x = x.float()
    recon_per_pattern = F.binary_cross_entropy_with_logits(output.logits, x, reduction="none").sum(dim=(1, 2))
    kl_low_dims = low_level_kl_per_dim(output)
    kl_high_dims = gaussian_kl(output.mu_high, output.logvar_high)

    kl_low_per_pattern = kl_low_dims.sum(dim=1)
    kl_high_per_pattern = kl_high_dims.sum(dim=1)
    elbo_per_pattern = -(recon_per_pattern + kl_low_per_pattern + kl_high_per_pattern)

    recon = recon_per_pattern.mean()
    if free_bits_high is None:
        free_bits_high = free_bits
    loss = (recon
            + beta_low * apply_free_bits(kl_low_dims, free_bits).sum()
            + beta_high * apply_free_bits(kl_high_dims, free_bits_high).sum())
    return ELBOTerms(
        loss=loss,
        elbo=elbo_per_pattern.mean(),
        recon=recon,
        kl_low=kl_low_per_pattern.mean(),
        kl_high=kl_high_per_pattern.mean(),
        kl_low_per_dim=kl_low_dims.mean(dim=0),
        kl_high_per_dim=kl_high_dims.mean(dim=0),
        elbo_per_pattern=elbo_per_pattern,
    )


# ---------------------------------------------------------------------------
# Schedules

def kl_anneal_schedule(epoch: float, method: str = "cyclical", total_epochs: int = 100,
                       n_cycles: int = 4, ratio: float = 0.5, sigmoid_steepness: float = 10.0) -> float:
    """Return the KL weight beta in [0, 1] for a 0-based (possibly fractional) ``epoch``.

    - "cyclical" (Fu et al. 2019, "Cyclical Annealing Schedule"): the run is cut
      into ``n_cycles`` equal cycles, and in each cycle beta rises linearly from 0
      to 1 over the first share ``ratio`` of the cycle and then stays at 1.
    - "linear": beta rises linearly from 0 to 1 over the first share ``ratio`` of
      the run, then stays at 1.
    - "sigmoid": beta = 1 / (1 + exp(-k (epoch / (ratio * total_epochs) - 0.5)))
      with k = ``sigmoid_steepness``, so it is 0.5 halfway through the warm-up.
    - "none": beta = 1 from the start.
    """
    if method not in ANNEAL_METHODS:
        raise ValueError(f"invalid annealing method {method!r}: choose one of {', '.join(ANNEAL_METHODS)}")
    if total_epochs < 1:
        raise ValueError(f"total_epochs must be >= 1, got {total_epochs}")
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    if n_cycles < 1:
        raise ValueError(f"n_cycles must be >= 1, got {n_cycles}")
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")

    if method == "none":
        return 1.0
    if method == "linear":
        return min(1.0, epoch / (ratio * total_epochs))
    if method == "sigmoid":
        return 1.0 / (1.0 + math.exp(-sigmoid_steepness * (epoch / (ratio * total_epochs) - 0.5)))
    cycle_length = total_epochs / n_cycles
    position = (epoch % cycle_length) / cycle_length  # share of the current cycle already done, in [0, 1)
    return min(1.0, position / ratio)


def temperature_annealing_schedule(epoch: float, total_epochs: int = 100, start: float = 1.5,
                                   end: float = 1.0) -> float:
    """Return the sampling temperature for a 0-based ``epoch``: geometric from ``start`` to ``end``.

    T(epoch) = start * (end / start) ** (epoch / (total_epochs - 1)), so the
    first epoch samples at ``start`` and the last at ``end``. Training uses it
    for the preview samples it draws at each evaluation (hotter, more varied
    patterns early on); the loss does not depend on it.
    """
    if start <= 0 or end <= 0:
        raise ValueError(f"temperatures must be positive, got start={start}, end={end}")
    if total_epochs < 1:
        raise ValueError(f"total_epochs must be >= 1, got {total_epochs}")
    progress = min(1.0, epoch / max(1, total_epochs - 1))
    return float(start * (end / start) ** progress)


def learning_rate_schedule(epoch: int, base_lr: float, schedule: str = "constant", total_epochs: int = 100,
                           final_ratio: float = 0.01) -> float:
    """Return the learning rate of a 0-based ``epoch``.

    "constant" keeps ``base_lr``. "cosine" follows SGDR's cosine curve
    (Loshchilov and Hutter 2017) without restarts, from ``base_lr`` at epoch 0
    down to ``final_ratio * base_lr`` at the last epoch.
    """
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {schedule!r}: choose one of {', '.join(LR_SCHEDULES)}")
    if schedule == "constant":
        return base_lr
    progress = min(1.0, epoch / max(1, total_epochs - 1))
    final_lr = final_ratio * base_lr
    return final_lr + 0.5 * (base_lr - final_lr) * (1.0 + math.cos(math.pi * progress))


# ---------------------------------------------------------------------------
# Data and random-state helpers

def patterns_tensor(data) -> torch.Tensor:
    """Return all patterns of ``data`` as a float tensor [N, 16, 9].

    ``data`` may be a tensor or array [N, 16, 9], a dataset with a ``patterns``
    attribute, or a DataLoader whose batches are tensors or tuples with the
    patterns first.
    """
    if isinstance(data, torch.Tensor):
        return data.float()
    if isinstance(data, np.ndarray):
        return torch.from_numpy(data).float()
    if hasattr(data, "patterns"):
        return patterns_tensor(data.patterns)
    if isinstance(data, torch.utils.data.DataLoader):
        batches = [batch[0] if isinstance(batch, (tuple, list)) else batch for batch in data]
        return torch.cat(batches).float()
    raise TypeError(f"expected patterns as a tensor, array, dataset or DataLoader, got {type(data).__name__}")


@contextlib.contextmanager
def fixed_seed(seed: int, device: torch.device | str = "cpu"):
    """Run the block with torch's RNG seeded to ``seed`` and restore the outer RNG state afterwards.

    Evaluations use it so they are reproducible and leave the training run's
    random stream untouched.
    """
    device = torch.device(device)
    # NOTE: only the CPU and CUDA generators are forked; on MPS the device stream is not restored.
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _batches(patterns: torch.Tensor, batch_size: int):
    for start in range(0, len(patterns), batch_size):
        yield patterns[start:start + batch_size]


# ---------------------------------------------------------------------------
# Training

def train_one_epoch(model: HierarchicalDrumVAE, optimizer: torch.optim.Optimizer, data_loader,
                    device: torch.device, beta_low: float, beta_high: float, free_bits: float = 0.0,
                    free_bits_high: float | None = None, grad_clip: float = 10.0, progress: bool = True,
                    description: str = "") -> dict:
    """Train for one pass over ``data_loader``; return the epoch's mean terms (nats per pattern).

    NaN guard: a batch whose loss or gradient is not finite is skipped (no
    optimizer step) and counted in ``nonfinite_steps``. If every batch of the
    epoch is skipped, FloatingPointError is raised, because training has diverged.
    """
    model.train()
    sums = {"loss": 0.0, "elbo": 0.0, "recon": 0.0, "kl_low": 0.0, "kl_high": 0.0}
    kl_low_dims = torch.zeros(model.z_low_dim)
    kl_high_dims = torch.zeros(model.z_high_dim)
    n_patterns = 0
    n_steps = 0
    nonfinite_steps = 0

    bar = tqdm(data_loader, desc=description, leave=False, disable=not progress)
    for batch in bar:
        x = (batch[0] if isinstance(batch, (tuple, list)) else batch).to(device).float()
        output = model(x)
        terms = compute_hierarchical_elbo(x, output, beta_low, beta_high, free_bits, free_bits_high)
        n_steps += 1

        # NaN guard: skip the update when the loss or any gradient is not finite.
        if not torch.isfinite(terms.loss):
            nonfinite_steps += 1
            continue
        optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        if not torch.isfinite(grad_norm):
            nonfinite_steps += 1
            optimizer.zero_grad(set_to_none=True)
            continue
        optimizer.step()

        batch_size = len(x)
        n_patterns += batch_size
        for key in sums:
            sums[key] += getattr(terms, key).item() * batch_size
        kl_low_dims += terms.kl_low_per_dim.detach().cpu() * batch_size
        kl_high_dims += terms.kl_high_per_dim.detach().cpu() * batch_size
        bar.set_postfix(loss=f"{terms.loss.item():.2f}")

    if n_patterns == 0:
        raise FloatingPointError(
            f"all {n_steps} training steps of the epoch had a non-finite loss or gradient: "
            "training diverged; lower the learning rate (--lr) or resume from an earlier checkpoint"
        )
    result = {key: value / n_patterns for key, value in sums.items()}
    result["kl_low_per_dim"] = (kl_low_dims / n_patterns).tolist()
    result["kl_high_per_dim"] = (kl_high_dims / n_patterns).tolist()
    result["nonfinite_steps"] = nonfinite_steps
    return result


@torch.no_grad()
def evaluate_elbo(model: HierarchicalDrumVAE, data, device: torch.device, n_samples: int = 10,
                  seed: int = 0, batch_size: int = 500) -> dict:
    """Return the true ELBO (KL weights 1, no free bits) and its terms on ``data``, nats per pattern.

    Each pattern's terms are averaged over ``n_samples`` draws of z; the draws
    come from a fixed seed so the numbers are reproducible.
    """
    model.eval()
    patterns = patterns_tensor(data)
    totals = {"elbo": 0.0, "recon": 0.0, "kl_low": 0.0, "kl_high": 0.0}
    with fixed_seed(seed, device):
        for x in _batches(patterns, batch_size):
            x = x.to(device)
            for _ in range(n_samples):
                terms = compute_hierarchical_elbo(x, model(x))
                for key in totals:
                    totals[key] += getattr(terms, key).item() * len(x)
    count = len(patterns) * n_samples
    result = {key: value / count for key, value in totals.items()}
    result["loss"] = -result["elbo"]
    return result


def train_hierarchical_vae(model: HierarchicalDrumVAE, data_loader, num_epochs: int, device,
                           val_data=None, lr: float = 1e-3, anneal: str = "cyclical", n_cycles: int = 4,
                           anneal_ratio: float = 0.5, free_bits: float = 0.0,
                           free_bits_high: float | None = None, kl_high_weight: float = 1.0,
                           lr_schedule: str = "constant",
                           optimizer: torch.optim.Optimizer | None = None, start_epoch: int = 0,
                           history: dict | None = None,
                           on_epoch_end: Callable[[int, dict], None] | None = None,
                           progress: bool = True) -> dict:
    """Train ``model`` for epochs ``start_epoch`` .. ``num_epochs - 1``; return the history.

    Each epoch weights the z_low KL with beta = ``kl_anneal_schedule(epoch,
    anneal, num_epochs, n_cycles, anneal_ratio)`` and the z_high KL with
    ``kl_high_weight`` * beta, and applies the per-dimension floors
    ``free_bits`` (z_low, and z_high unless ``free_bits_high`` is given), in
    nats. ``lr_schedule`` sets the learning rate of each epoch from ``lr``
    (``learning_rate_schedule``). The history is {"epochs": [record, ...]}, one
    record per epoch with the training means, beta, temperature, and, when
    ``val_data`` is given, the true validation ELBO and its terms (``val_*``)
    and the active units per level. ``on_epoch_end(epoch, record)`` runs after
    each epoch (train.py uses it to log, evaluate and checkpoint) and may add
    entries to the record. Pass ``optimizer``, ``start_epoch`` and ``history``
    to continue an earlier run.
    """
    device = torch.device(device)
    model.to(device)
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    if history is None:
        history = {"epochs": []}

    for epoch in range(start_epoch, num_epochs):
        beta = kl_anneal_schedule(epoch, anneal, num_epochs, n_cycles, anneal_ratio)
        temperature = temperature_annealing_schedule(epoch, num_epochs)
        learning_rate = learning_rate_schedule(epoch, lr, lr_schedule, num_epochs)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate
        train_terms = train_one_epoch(model, optimizer, data_loader, device, beta, kl_high_weight * beta,
                                      free_bits, free_bits_high, progress=progress,
                                      description=f"epoch {epoch + 1}/{num_epochs}")
        record = {"epoch": epoch + 1, "beta": beta, "beta_high": kl_high_weight * beta,
                  "temperature": temperature, "lr": learning_rate}
        record.update({f"train_{key}": value for key, value in train_terms.items()})

        if val_data is not None:
            val_terms = evaluate_elbo(model, val_data, device)
            record.update({f"val_{key}": value for key, value in val_terms.items()})
            collapse = analyze_posterior_collapse(model, val_data, device)
            record["active_units_low"] = collapse["active_units_low"]
            record["active_units_high"] = collapse["active_units_high"]

        if on_epoch_end is not None:
            on_epoch_end(epoch, record)
        history["epochs"].append(record)
    return history


# ---------------------------------------------------------------------------
# Diagnostics

@torch.no_grad()
def posterior_means(model: HierarchicalDrumVAE, data, device, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Return the deterministic posterior means (mu_low [N, z_low_dim], mu_high [N, z_high_dim]).

    mu_high is q(z_high | z_low)'s mean at z_low = mu_low.
    """
    model.eval()
    patterns = patterns_tensor(data)
    lows, highs = [], []
    for x in _batches(patterns, batch_size):
        mu_low, _, mu_high, _ = model.encode_hierarchy(x.to(device), sample=False)
        lows.append(mu_low.cpu())
        highs.append(mu_high.cpu())
    return torch.cat(lows).numpy(), torch.cat(highs).numpy()


@torch.no_grad()
def analyze_posterior_collapse(model: HierarchicalDrumVAE, data_loader_or_patterns, device,
                               threshold: float = ACTIVE_UNIT_THRESHOLD, batch_size: int = 500) -> dict:
    """Measure how much each latent dimension is used, per level, on patterns [N, 16, 9].

    Returns a dict with, per level (``low``, ``high``):

    - ``kl_per_dim_<level>`` (list, nats per pattern, mean over the data) and
      ``kl_<level>`` (their sum): for z_high, KL(q(z_high | z_low = mu_low) || N(0, I));
      for z_low, KL(q(z_low | x) || p(z_low | z_high = mu_high)), the
      information in z_low beyond what the posterior-mean z_high predicts.
      Both are analytic at the posterior means, so they are deterministic and
      never negative, unlike the ELBO's sampled low-level term.
    - ``variance_<level>`` (list): variance over the data of each dimension's
      posterior mean, and ``active_units_<level>``: how many exceed ``threshold``.
    - ``collapsed_<level>``: True when the level has no active unit.
    """
    device = torch.device(device)
    model.eval()
    patterns = patterns_tensor(data_loader_or_patterns)
    kl_low = torch.zeros(model.z_low_dim)
    kl_high = torch.zeros(model.z_high_dim)
    means_low, means_high = [], []
    for x in _batches(patterns, batch_size):
        mu_low, logvar_low, mu_high, logvar_high = model.encode_hierarchy(x.to(device), sample=False)
        prior_mu_low, prior_logvar_low = model.prior_low(mu_high)
        kl_low += gaussian_kl(mu_low, logvar_low, prior_mu_low, prior_logvar_low).sum(dim=0).cpu()
        kl_high += gaussian_kl(mu_high, logvar_high).sum(dim=0).cpu()
        means_low.append(mu_low.cpu())
        means_high.append(mu_high.cpu())
    kl_low /= len(patterns)
    kl_high /= len(patterns)

    result = {}
    for level, means, kl in (("low", means_low, kl_low), ("high", means_high, kl_high)):
        variance = torch.cat(means).var(dim=0, unbiased=False)
        result[f"kl_per_dim_{level}"] = kl.tolist()
        result[f"kl_{level}"] = float(kl.sum())
        result[f"variance_{level}"] = variance.tolist()
        result[f"active_units_{level}"] = int((variance > threshold).sum())
        result[f"collapsed_{level}"] = result[f"active_units_{level}"] == 0
    return result


# ---------------------------------------------------------------------------
# Style-conditioned generation

@torch.no_grad()
def style_centroids(model: HierarchicalDrumVAE, patterns, styles, n_styles: int = 5,
                    device="cpu") -> torch.Tensor:
    """Return each style's mean posterior z_high, [n_styles, z_high_dim] (CPU float tensor).

    ``patterns`` [N, 16, 9] and ``styles`` [N] int in 0 .. n_styles - 1; the
    posterior means are the deterministic ones of ``posterior_means``.
    """
    styles = np.asarray(styles)
    _, mu_high = posterior_means(model, patterns, device)
    missing = [s for s in range(n_styles) if not (styles == s).any()]
    if missing:
        raise ValueError(f"no patterns of style(s) {missing}: every style needs at least one pattern")
    return torch.from_numpy(np.stack([mu_high[styles == s].mean(axis=0) for s in range(n_styles)]))


@torch.no_grad()
def sample_diverse_patterns(model: HierarchicalDrumVAE, n_styles: int = 5, n_variations: int = 10,
                            temperature: float = 1.0, z_high: torch.Tensor | None = None,
                            device="cpu") -> torch.Tensor:
    """Draw ``n_variations`` patterns for each of ``n_styles`` z_high values; float [n_styles, n_variations, 16, 9].

    Row i shares one z_high: ``z_high[i]`` when given ([n_styles, z_high_dim],
    e.g. from ``style_centroids``), else a draw from N(0, temperature^2 I).
    Each variation draws its own z_low from p(z_low | z_high) at ``temperature``.
    """
    model.eval()
    if z_high is None:
        z_high = temperature * torch.randn(n_styles, model.z_high_dim)
    if tuple(z_high.shape) != (n_styles, model.z_high_dim):
        raise ValueError(f"z_high must have shape [{n_styles}, {model.z_high_dim}], got {tuple(z_high.shape)}")
    repeated = z_high.to(device).repeat_interleave(n_variations, dim=0)
    patterns = model.sample(n_styles * n_variations, temperature=temperature, z_high=repeated)
    return patterns.reshape(n_styles, n_variations, *patterns.shape[1:]).cpu()


STYLE_SAMPLING_METHODS = ("region", "posterior", "centroid")


@torch.no_grad()
def sample_style_patterns(model: HierarchicalDrumVAE, patterns, styles, n_per_style: int,
                          n_styles: int = 5, temperature: float = 1.0, method: str = "region",
                          device="cpu", seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Draw ``n_per_style`` patterns per style with z_high taken from that style's region.

    ``method`` sets where z_high comes from, given the style's patterns in
    ``patterns`` [N, 16, 9] with labels ``styles`` [N]:

    - "region": N(c, diag(v)), where c and v are the mean and variance over the
      style's patterns of their posterior-mean z_high (``posterior_means``);
    - "posterior": the style's aggregate posterior, i.e. z_high ~ q(z_high | x)
      through a z_low sample, for a randomly picked pattern x of the style;
    - "centroid": c itself, the same z_high for every draw.

    Then z_low ~ p(z_low | z_high) and x ~ p(x | z_high, z_low), both at
    ``temperature``. Returns (patterns float [n_styles * n_per_style, 16, 9] of
    0/1, intended styles int64 [n_styles * n_per_style]).
    """
    if method not in STYLE_SAMPLING_METHODS:
        raise ValueError(f"invalid method {method!r}: choose one of {', '.join(STYLE_SAMPLING_METHODS)}")
    device = torch.device(device)
    model.eval()
    data = patterns_tensor(patterns)
    styles = np.asarray(styles)
    members = [np.flatnonzero(styles == style) for style in range(n_styles)]
    missing = [style for style, index in enumerate(members) if len(index) == 0]
    if missing:
        raise ValueError(f"no patterns of style(s) {missing}: every style needs at least one pattern")
    intended = np.repeat(np.arange(n_styles, dtype=np.int64), n_per_style)

    with fixed_seed(seed, device):
        if method == "posterior":
            rng = np.random.default_rng(seed)
            index = np.concatenate([rng.choice(m, size=n_per_style, replace=True) for m in members])
            _, _, mu_high, logvar_high = model.encode_hierarchy(data[index].to(device), sample=True)
            z_high = model.reparameterize(mu_high, logvar_high)
        else:
            _, means = posterior_means(model, data, device)
            means = torch.from_numpy(means)
            centres = torch.stack([means[m].mean(dim=0) for m in members])[intended]
            z_high = centres
            if method == "region":
                spreads = torch.stack([means[m].var(dim=0, unbiased=False).sqrt() for m in members])[intended]
                z_high = centres + spreads * torch.randn_like(centres)
        generated = model.sample(len(intended), temperature=temperature, z_high=z_high.to(device))
    return generated.cpu(), intended
