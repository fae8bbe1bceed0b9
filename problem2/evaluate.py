"""Evaluate a trained drum VAE against the true distribution.

    python problem2/evaluate.py                      # problem2/results/best_model.pth
    python problem2/evaluate.py --run problem2/results/compare/linear
    python problem2/evaluate.py --compare problem2/results/compare/*
"""
from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.metrics import precision_recall_fscore_support
from sklearn.neighbors import KNeighborsClassifier
from torch.nn import functional as F

from problem2.hierarchical_vae import HierarchicalDrumVAE
from problem2.training_utils import (analyze_posterior_collapse, fixed_seed, gaussian_log_density,
                                     patterns_tensor, posterior_means, sample_style_patterns)
from provided.drum_oracle import DrumOracle, forward_kl, paired_forward_kl
from provided.metrics import drum_pattern_validity, sequence_diversity


def iwae_log_weights(model: HierarchicalDrumVAE, x: torch.Tensor, k: int) -> torch.Tensor:
    """Return k importance log weights per pattern, [k, B] in nats, for x [B, 16, 9] in {0, 1}.

    Proposal q(z_low | x) q(z_high | z_low); target p(x | z_high, z_low)
    p(z_low | z_high) p(z_high), so log w = log p(x, z_high, z_low) - log q(z_high, z_low | x).
    Each weight's expectation under the proposal is p(x), and the mean of log w is the ELBO.
    """
    mu_low, logvar_low = model.encode_low(x)
    z_low = mu_low + torch.exp(0.5 * logvar_low) * torch.randn(k, *mu_low.shape, device=x.device)
    mu_high, logvar_high = model.encode_high(z_low)
    z_high = mu_high + torch.exp(0.5 * logvar_high) * torch.randn_like(mu_high)
    prior_mu_low, prior_logvar_low = model.prior_low(z_high)
    logits = model.decode_logits(z_high, z_low)

    log_px = -F.binary_cross_entropy_with_logits(
        logits, x.float().expand_as(logits), reduction="none").sum(dim=(-2, -1))
    log_p_low = gaussian_log_density(z_low, prior_mu_low, prior_logvar_low).sum(-1)
    log_p_high = gaussian_log_density(z_high, torch.zeros_like(z_high), torch.zeros_like(z_high)).sum(-1)
    log_q_low = gaussian_log_density(z_low, mu_low, logvar_low).sum(-1)
    log_q_high = gaussian_log_density(z_high, mu_high, logvar_high).sum(-1)
    return log_px + log_p_low + log_p_high - log_q_low - log_q_high


@torch.no_grad()
def iwae_log_likelihood(model: HierarchicalDrumVAE, data, k: int = 1000, device="cpu",
                        batch_size: int = 100, chunk_size: int = 250, seed: int = 0) -> np.ndarray:
    """Estimate log p_model(x) per pattern with the IWAE bound (Burda et al. 2016); float64 [N] nats.

    log p(x) >= E[log (1/k) sum_i w_i], which tightens as k grows and equals
    the ELBO at k = 1. The k samples are drawn ``chunk_size`` at a time for
    ``batch_size`` patterns, so memory holds about chunk_size * batch_size * 144
    floats however large k is.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1 importance samples, got {k}")
    device = torch.device(device)
    model.eval()
    patterns = patterns_tensor(data)
    results = []
    with fixed_seed(seed, device):
        for start in range(0, len(patterns), batch_size):
            x = patterns[start:start + batch_size].to(device)
            chunks = []
            for done in range(0, k, chunk_size):
                chunks.append(iwae_log_weights(model, x, min(chunk_size, k - done)).double())
            log_w = torch.cat(chunks)
            results.append((torch.logsumexp(log_w, dim=0) - math.log(k)).cpu())
    return torch.cat(results).numpy()


# ---------------------------------------------------------------------------
# Metrics

@torch.no_grad()
def reconstruction_metrics(model: HierarchicalDrumVAE, data, device="cpu", batch_size: int = 500) -> dict:
    """Return bit accuracy and hit precision, recall and F1 of deterministic reconstructions.

    Each pattern is encoded to its posterior means (z_low = mu_low, z_high =
    mu_high at mu_low) and decoded with the cells whose probability exceeds 0.5
    set to 1. A "hit" is a cell equal to 1; F1 is over all cells of all patterns.
    """
    model.eval()
    patterns = patterns_tensor(data)
    predictions = []
    for start in range(0, len(patterns), batch_size):
        x = patterns[start:start + batch_size].to(device)
        mu_low, _, mu_high, _ = model.encode_hierarchy(x, sample=False)
        predictions.append((model.decode_logits(mu_high, mu_low) > 0).cpu())
    truth = patterns.bool().numpy().ravel()
    predicted = torch.cat(predictions).numpy().ravel()
    precision, recall, f1, _ = precision_recall_fscore_support(truth, predicted, average="binary", zero_division=0)
    return {
        "bit_accuracy": float((truth == predicted).mean()),
        "hit_precision": float(precision),
        "hit_recall": float(recall),
        "hit_f1": float(f1),
    }


def knn_style_accuracy(model: HierarchicalDrumVAE, train_patterns, train_styles, val_patterns, val_styles,
                       device="cpu", n_neighbors: int = 5) -> float:
    """Return the val accuracy of a k-nearest-neighbour style classifier on posterior-mean z_high.

    The classifier (scikit-learn KNeighborsClassifier, Euclidean distance) is
    fit on the training patterns' z_high means and scored on the val patterns'.
    """
    _, train_high = posterior_means(model, train_patterns, device)
    _, val_high = posterior_means(model, val_patterns, device)
    classifier = KNeighborsClassifier(n_neighbors=n_neighbors).fit(train_high, np.asarray(train_styles))
    return float(classifier.score(val_high, np.asarray(val_styles)))


def generated_pattern_metrics(model: HierarchicalDrumVAE, oracle: DrumOracle, patterns, styles,
                              n_per_style: int = 200, temperature: float = 1.0, device="cpu",
                              seed: int = 0) -> dict:
    """Score patterns generated per style (``sample_style_patterns``) with the true distribution.

    Returns ``style_accuracy`` (share whose Bayes-optimal oracle style is the
    intended one), ``style_accuracy_per_style`` (list of 5), ``neg_log_p_true``
    (mean -log p_true, nats per pattern; inf when a pattern has probability 0),
    ``validity`` (mean ``drum_pattern_validity``) and ``diversity``
    (``sequence_diversity`` within each style, averaged over styles).
    """
    generated, intended = sample_style_patterns(model, patterns, styles, n_per_style,
                                                n_styles=oracle.n_styles, temperature=temperature,
                                                device=device, seed=seed)
    generated = generated.numpy().astype(np.uint8)
    predicted = oracle.predict_style(generated)
    per_style = [float((predicted[intended == s] == s).mean()) for s in range(oracle.n_styles)]
    diversity = [sequence_diversity(generated[intended == s]) for s in range(oracle.n_styles)]
    return {
        "n_per_style": n_per_style,
        "temperature": temperature,
        "style_accuracy": float((predicted == intended).mean()),
        "style_accuracy_per_style": per_style,
        "neg_log_p_true": float(-oracle.log_prob(generated).mean()),
        "validity": float(drum_pattern_validity(generated).mean()),
        "diversity": float(np.mean(diversity)),
    }


def likelihood_metrics(model: HierarchicalDrumVAE, oracle: DrumOracle, patterns, entropy: float,
                       k: int = 1000, device="cpu", seed: int = 0) -> dict:
    """Return the model's IWAE NLL on ``patterns`` and its forward KL to the true distribution.

    ``patterns`` must be draws from p_true (the val split or ``oracle.sample``).
    ``nll`` is the mean IWAE estimate of -log p_model(x) with ``k`` samples and
    ``nll_standard_error`` its standard error over patterns; ``kl_to_truth`` =
    nll - ``entropy`` (H(X) from the oracle), and ``paired_kl`` with
    ``paired_kl_standard_error`` is the mean of log p_true(x) - log p_model(x)
    over the same patterns, which has a much smaller standard error. Because
    the IWAE estimate bounds log p_model from below, both KL values are upper
    bounds in expectation. All values are in nats per pattern.
    """
    log_likelihood = iwae_log_likelihood(model, patterns, k=k, device=device, seed=seed)
    nll = -log_likelihood
    paired, paired_se = paired_forward_kl(oracle, patterns_tensor(patterns).numpy(), nll)
    return {
        "n_patterns": int(len(nll)),
        "iwae_samples": k,
        "nll": float(nll.mean()),
        "nll_standard_error": float(nll.std(ddof=1) / np.sqrt(len(nll))),
        "entropy": float(entropy),
        "kl_to_truth": forward_kl(float(nll.mean()), entropy),
        "paired_kl": paired,
        "paired_kl_standard_error": paired_se,
    }


def evaluate_model(model: HierarchicalDrumVAE, train_set, val_set, oracle: DrumOracle, entropy: float,
                   k: int = 1000, fresh_samples: int = 0, n_per_style: int = 200, device="cpu",
                   seed: int = 0) -> dict:
    """Run every evaluation of the model; return one JSON-ready dict.

    ``train_set`` and ``val_set`` are datasets with ``patterns`` and ``styles``.
    Keys: ``val`` (``likelihood_metrics`` on val), ``fresh`` (the same on
    ``fresh_samples`` new draws from the oracle, absent when 0),
    ``reconstruction`` (val), ``posterior_collapse`` (val),
    ``knn_style_accuracy`` (z_high means, fit on train, scored on val) and
    ``generated`` (``generated_pattern_metrics`` at temperature 1).
    """
    device = torch.device(device)
    model.eval()
    train_styles = np.asarray(train_set.styles)
    result = {"val": likelihood_metrics(model, oracle, val_set.patterns, entropy, k, device, seed)}
    if fresh_samples > 0:
        fresh_patterns, _ = oracle.sample(fresh_samples, seed=seed)
        result["fresh"] = likelihood_metrics(model, oracle, fresh_patterns, entropy, k, device, seed)
    result["reconstruction"] = reconstruction_metrics(model, val_set.patterns, device)
    result["posterior_collapse"] = analyze_posterior_collapse(model, val_set.patterns, device, seed=seed)
    result["knn_style_accuracy"] = knn_style_accuracy(model, train_set.patterns, train_styles,
                                                      val_set.patterns, val_set.styles, device)
    result["generated"] = generated_pattern_metrics(model, oracle, train_set.patterns, train_styles,
                                                    n_per_style, device=device, seed=seed)
    return result


def format_evaluation(evaluation: dict) -> str:
    """Return a one-line summary of ``evaluate_model``'s result."""
    val = evaluation["val"]
    collapse = evaluation["posterior_collapse"]
    generated = evaluation["generated"]
    return (f"val NLL {val['nll']:.2f} +- {val['nll_standard_error']:.2f} nats (IWAE k={val['iwae_samples']}), "
            f"KL to truth {val['kl_to_truth']:.2f} (paired {val['paired_kl']:.2f} +- "
            f"{val['paired_kl_standard_error']:.2f}), recon acc {evaluation['reconstruction']['bit_accuracy']:.2%}, "
            f"AU {collapse['active_units_low']}/{collapse['active_units_high']}, "
            f"kNN {evaluation['knn_style_accuracy']:.1%}, generated style acc {generated['style_accuracy']:.1%}")
