"""Evaluate a trained drum VAE against the true distribution.

    python problem2/evaluate.py                      # problem2/results/best_model.pth
    python problem2/evaluate.py --run problem2/results/compare/linear
    python problem2/evaluate.py --compare problem2/results problem2/results/compare/*

A single run's evaluation is printed and written to <run>/evaluation.json:
the val NLL by importance sampling (IWAE, k = 1000), H(X) and the forward KL
to the true distribution from the exact oracle, the same on fresh oracle
draws, reconstruction accuracy, posterior-collapse diagnostics, k-NN style
accuracy of z_high, and oracle scores of style-conditioned samples.
--compare tabulates runs (their evaluation.json, computed when missing) as
markdown, printed and written to problem2/results/compare/comparison.md.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import precision_recall_fscore_support
from sklearn.neighbors import KNeighborsClassifier
from torch.nn import functional as F

from problem2.dataset import DrumPatternDataset
from problem2.hierarchical_vae import HierarchicalDrumVAE, load_vae_checkpoint
from problem2.training_utils import (analyze_posterior_collapse, fixed_seed, gaussian_log_density,
                                     patterns_tensor, posterior_means, sample_style_patterns)
from provided.drum_oracle import DrumOracle, forward_kl, paired_forward_kl
from provided.drum_process import STYLES
from provided.metrics import drum_pattern_validity, sequence_diversity
from provided.paths import DEFAULT_DRUM_DIR, PROBLEM2_RESULTS
from provided.runtime import DEVICE_CHOICES, atomic_write_json, select_device

ENTROPY_SAMPLES = 200_000  # Monte Carlo draws for H(X); its standard error is about 0.02 nats


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
    ``batch_size`` patterns, so memory use is about chunk_size * batch_size * 144
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
                              n_per_style: int = 200, temperature: float = 1.0, method: str = "region",
                              device="cpu", seed: int = 0) -> dict:
    """Score patterns generated per style (``sample_style_patterns``) with the true distribution.

    Returns a dict with these keys:

    - ``style_accuracy``: share of patterns whose Bayes-optimal oracle style is
      the intended one, and ``style_accuracy_per_style``, the same per style.
    - ``neg_log_p_true``: mean -log p_true in nats per pattern (inf when a
      pattern has probability 0).
    - ``validity``: mean ``drum_pattern_validity``.
    - ``diversity``: ``sequence_diversity`` within each style, averaged over styles.
    """
    generated, intended = sample_style_patterns(model, patterns, styles, n_per_style,
                                                n_styles=oracle.n_styles, temperature=temperature,
                                                method=method, device=device, seed=seed)
    generated = generated.numpy().astype(np.uint8)
    predicted = oracle.predict_style(generated)
    per_style = [float((predicted[intended == s] == s).mean()) for s in range(oracle.n_styles)]
    diversity = [sequence_diversity(generated[intended == s]) for s in range(oracle.n_styles)]
    return {
        "n_per_style": n_per_style,
        "temperature": temperature,
        "method": method,
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
    The keys are:

    - ``val``: ``likelihood_metrics`` on the val split, and ``fresh``: the same
      on ``fresh_samples`` new draws from the oracle (absent when 0).
    - ``reconstruction`` and ``posterior_collapse``: on the val split.
    - ``knn_style_accuracy``: z_high means, fit on train, scored on val.
    - ``generated``: ``generated_pattern_metrics`` at temperature 1 with z_high
      from each style's region, and ``generated_centroid``: the same with
      z_high at each style's centroid.
    """
    device = torch.device(device)
    model.eval()
    train_styles = np.asarray(train_set.styles)
    result = {"val": likelihood_metrics(model, oracle, val_set.patterns, entropy, k, device, seed)}
    if fresh_samples > 0:
        fresh_patterns, _ = oracle.sample(fresh_samples, seed=seed)
        result["fresh"] = likelihood_metrics(model, oracle, fresh_patterns, entropy, k, device, seed)
    result["reconstruction"] = reconstruction_metrics(model, val_set.patterns, device)
    result["posterior_collapse"] = analyze_posterior_collapse(model, val_set.patterns, device)
    result["knn_style_accuracy"] = knn_style_accuracy(model, train_set.patterns, train_styles,
                                                      val_set.patterns, val_set.styles, device)
    result["generated"] = generated_pattern_metrics(model, oracle, train_set.patterns, train_styles,
                                                    n_per_style, device=device, seed=seed)
    result["generated_centroid"] = generated_pattern_metrics(model, oracle, train_set.patterns, train_styles,
                                                             n_per_style, method="centroid", device=device,
                                                             seed=seed)
    return result


def style_temperature_sweep(model: HierarchicalDrumVAE, oracle: DrumOracle, patterns, styles,
                            temperatures, methods=("region", "centroid"), n_per_style: int = 1000,
                            device="cpu", seed: int = 0) -> list[dict]:
    """Return ``generated_pattern_metrics`` for every (method, temperature) pair.

    Temperature scales the spread of the z_low prior and divides the decoder
    logits, so values below 1 trade diversity for style purity; T = 1 samples
    the model itself.
    """
    return [generated_pattern_metrics(model, oracle, patterns, styles, n_per_style, temperature=float(t),
                                      method=method, device=device, seed=seed)
            for method in methods for t in temperatures]


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


# ---------------------------------------------------------------------------
# Command line: evaluate one run, or tabulate several

COMPARISON_COLUMNS = (
    ("run", "run"),
    ("schedule", "anneal"),
    ("free bits (low/high)", "free_bits"),
    ("best epoch", "epoch"),
    ("val NLL (nats)", "val_nll"),
    ("KL to truth, val (nats)", "kl_val"),
    ("KL to truth, paired val", "kl_paired"),
    ("KL to truth, fresh draws", "kl_fresh"),
    ("recon bit acc", "bit_accuracy"),
    ("hit F1", "hit_f1"),
    ("active units low/high", "active_units"),
    ("KL low/high (nats)", "kl_levels"),
    ("kNN style acc (z_high)", "knn"),
    ("generated style acc (region/centroid)", "generated_accuracy"),
    ("generated -log p_true", "generated_nll"),
    ("validity", "validity"),
    ("diversity", "diversity"),
)


def _read_json(path: Path) -> dict:
    with open(path) as handle:
        return json.load(handle)


def comparison_row(run_dir: Path, evaluation: dict, config: dict) -> dict:
    """Return the cells of one run's row in the comparison table, formatted as text."""
    val = evaluation["val"]
    collapse = evaluation["posterior_collapse"]
    generated = evaluation["generated"]
    free_bits_high = config.get("free_bits_high")
    label = run_dir.name
    if run_dir.resolve() == PROBLEM2_RESULTS.resolve():
        label = "default run"
    row = {
        "run": label,
        "anneal": str(config.get("anneal", "?")),
        "free_bits": f"{config.get('free_bits', 0):g}/{config.get('free_bits', 0) if free_bits_high is None else free_bits_high:g}",
        "epoch": str(evaluation.get("epoch", "?")),
        "val_nll": f"{val['nll']:.2f} ± {val['nll_standard_error']:.2f}",
        "kl_val": f"{val['kl_to_truth']:.2f}",
        "kl_paired": f"{val['paired_kl']:.2f} ± {val['paired_kl_standard_error']:.2f}",
        "kl_fresh": "-",
        "bit_accuracy": f"{evaluation['reconstruction']['bit_accuracy']:.2%}",
        "hit_f1": f"{evaluation['reconstruction']['hit_f1']:.3f}",
        "active_units": f"{collapse['active_units_low']}/{collapse['active_units_high']}",
        "kl_levels": f"{collapse['kl_low']:.2f}/{collapse['kl_high']:.2f}",
        "knn": f"{evaluation['knn_style_accuracy']:.1%}",
        "generated_accuracy": f"{generated['style_accuracy']:.1%}",
        "generated_nll": f"{generated['neg_log_p_true']:.2f}",
        "validity": f"{generated['validity']:.3f}",
        "diversity": f"{generated['diversity']:.3f}",
    }
    if "generated_centroid" in evaluation:
        row["generated_accuracy"] += f" / {evaluation['generated_centroid']['style_accuracy']:.1%}"
    if "fresh" in evaluation:
        fresh = evaluation["fresh"]
        row["kl_fresh"] = f"{fresh['paired_kl']:.2f} ± {fresh['paired_kl_standard_error']:.2f}"
    return row


def comparison_table(rows: list[dict]) -> str:
    """Return a markdown table of comparison rows (dicts keyed like ``COMPARISON_COLUMNS``)."""
    lines = ["| " + " | ".join(title for title, _ in COMPARISON_COLUMNS) + " |",
             "|" + "---|" * len(COMPARISON_COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join(row[key] for _, key in COMPARISON_COLUMNS) + " |")
    return "\n".join(lines)


def evaluate_run(run_dir: Path, data_dir: Path, k: int, fresh_samples: int, device, seed: int) -> dict:
    """Evaluate ``run_dir/best_model.pth``, write ``run_dir/evaluation.json`` and return the result."""
    model, checkpoint = load_vae_checkpoint(run_dir / "best_model.pth", map_location=device)
    train_set = DrumPatternDataset(data_dir, "train")
    val_set = DrumPatternDataset(data_dir, "val")
    oracle = DrumOracle.from_data_dir(data_dir)
    entropy, entropy_se = oracle.entropy(ENTROPY_SAMPLES, seed=0)
    evaluation = evaluate_model(model, train_set, val_set, oracle, entropy, k=k, fresh_samples=fresh_samples,
                                device=device, seed=seed)
    evaluation["epoch"] = checkpoint.get("epoch")
    evaluation["entropy_standard_error"] = entropy_se
    atomic_write_json(evaluation, run_dir / "evaluation.json")
    return evaluation


def print_evaluation(evaluation: dict) -> None:
    val = evaluation["val"]
    print(f"H(X) = {val['entropy']:.3f} nats per pattern (oracle)")
    print(f"val NLL = {val['nll']:.3f} +- {val['nll_standard_error']:.3f} nats (IWAE, k = {val['iwae_samples']}, "
          f"{val['n_patterns']} patterns)")
    print(f"KL(p_true || model) = NLL - H(X) = {val['kl_to_truth']:.3f} nats; paired estimate "
          f"{val['paired_kl']:.3f} +- {val['paired_kl_standard_error']:.3f}")
    if "fresh" in evaluation:
        fresh = evaluation["fresh"]
        print(f"on {fresh['n_patterns']} fresh oracle draws: NLL = {fresh['nll']:.3f} +- "
              f"{fresh['nll_standard_error']:.3f}, KL = {fresh['kl_to_truth']:.3f}, paired "
              f"{fresh['paired_kl']:.3f} +- {fresh['paired_kl_standard_error']:.3f} nats")
    reconstruction = evaluation["reconstruction"]
    print(f"reconstruction (val): bit accuracy {reconstruction['bit_accuracy']:.2%}, hit F1 "
          f"{reconstruction['hit_f1']:.3f}")
    collapse = evaluation["posterior_collapse"]
    print(f"active units: z_low {collapse['active_units_low']}, z_high {collapse['active_units_high']}; "
          f"KL per dimension z_low {np.round(collapse['kl_per_dim_low'], 2).tolist()}, "
          f"z_high {np.round(collapse['kl_per_dim_high'], 2).tolist()}")
    print(f"kNN style accuracy on z_high means (val): {evaluation['knn_style_accuracy']:.2%}")
    generated = evaluation["generated"]
    print(f"generated ({generated['n_per_style']} per style, z_high from the style's {generated['method']}, "
          f"T = {generated['temperature']}): style accuracy {generated['style_accuracy']:.2%} "
          f"(per style {[round(a, 3) for a in generated['style_accuracy_per_style']]}), mean -log p_true "
          f"{generated['neg_log_p_true']:.2f} nats, validity {generated['validity']:.3f}, "
          f"diversity {generated['diversity']:.3f}")
    if "generated_centroid" in evaluation:
        centroid = evaluation["generated_centroid"]
        print(f"generated with z_high at each style's centroid: style accuracy {centroid['style_accuracy']:.2%}, "
              f"mean -log p_true {centroid['neg_log_p_true']:.2f} nats, diversity {centroid['diversity']:.3f}")


def print_style_sweep(run_dir: Path, data_dir: Path, temperatures, device, seed: int) -> None:
    model, _ = load_vae_checkpoint(run_dir / "best_model.pth", map_location=device)
    model.to(device)
    oracle = DrumOracle.from_data_dir(data_dir)
    train_set = DrumPatternDataset(data_dir, "train")
    rows = style_temperature_sweep(model, oracle, train_set.patterns, np.asarray(train_set.styles),
                                   temperatures, device=device, seed=seed)
    names = " | ".join(STYLES)
    print(f"| z_high from | T | style accuracy | {names} |")
    print("|---|---|---|" + "---|" * oracle.n_styles)
    for row in rows:
        per_style = " | ".join(f"{a:.1%}" for a in row["style_accuracy_per_style"])
        print(f"| {row['method']} | {row['temperature']:g} | {row['style_accuracy']:.2%} | {per_style} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate a drum VAE run, or compare several runs.")
    parser.add_argument("--run", type=Path, default=PROBLEM2_RESULTS,
                        help="run folder with best_model.pth (default: %(default)s)")
    parser.add_argument("--compare", type=Path, nargs="+", metavar="RUN",
                        help="tabulate these run folders (their evaluation.json, evaluated first when missing)")
    parser.add_argument("--table", type=Path, default=PROBLEM2_RESULTS / "compare" / "comparison.md",
                        help="markdown file for the --compare table (default: %(default)s)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DRUM_DIR,
                        help="folder with patterns.npz (default: %(default)s)")
    parser.add_argument("--iwae-samples", type=int, default=1000,
                        help="importance samples per pattern for the NLL (default: %(default)s)")
    parser.add_argument("--fresh-samples", type=int, default=5000,
                        help="fresh patterns drawn from the true distribution for a second NLL; 0 skips "
                             "(default: %(default)s)")
    parser.add_argument("--style-temperatures", type=float, nargs="+", metavar="T",
                        help="only tabulate the oracle style accuracy of generated patterns at these sampling "
                             "temperatures (1000 patterns per style)")
    parser.add_argument("--seed", type=int, default=0, help="seed of all evaluation draws (default: %(default)s)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="compute device (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default: %(default)s)")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))

    try:
        device = select_device(args.device)
        if args.style_temperatures:
            if min(args.style_temperatures) <= 0:
                raise ValueError(f"invalid --style-temperatures {args.style_temperatures}: each must be > 0")
            print_style_sweep(args.run, args.data_dir, args.style_temperatures, device, args.seed)
        elif args.compare:
            rows = []
            for run_dir in args.compare:
                if not (run_dir / "best_model.pth").exists():
                    print(f"skipping {run_dir}: no best_model.pth", file=sys.stderr)
                    continue
                if (run_dir / "evaluation.json").exists():
                    evaluation = _read_json(run_dir / "evaluation.json")
                else:
                    evaluation = evaluate_run(run_dir, args.data_dir, args.iwae_samples, args.fresh_samples,
                                              device, args.seed)
                config = _read_json(run_dir / "training_log.json")["config"]
                rows.append(comparison_row(run_dir, evaluation, config))
            if not rows:
                raise FileNotFoundError("no --compare folder contains a trained run (best_model.pth)")
            table = comparison_table(rows)
            args.table.parent.mkdir(parents=True, exist_ok=True)
            args.table.write_text(table + "\n")
            print(table)
            print(f"\nwrote {args.table}")
        else:
            print_evaluation(evaluate_run(args.run, args.data_dir, args.iwae_samples, args.fresh_samples,
                                          device, args.seed))
            print(f"wrote {args.run / 'evaluation.json'}")
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
