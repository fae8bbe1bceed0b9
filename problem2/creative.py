"""Creative experiments with a trained drum VAE: genre blending, style transfer, humanization, long sequences.

Each function takes the model, the per-style z_high centroids [5, z_high_dim]
(``problem2.training_utils.style_centroids``) where it needs them, and the
likelihood oracle. It returns a dict of numbers (keys listed in its
docstring) and writes its figures as PNG into ``out_dir``. ``figures`` maps a
short name to the written path. Decoded patterns (uint8 0/1 arrays) are
returned under ``patterns`` or ``sequence`` so they can be exported with
``problem2.generate.export_pattern``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from problem2.analyze_latent import DEFAULT_ANALYSIS_DIR, STYLE_COLOURS, as_single_pattern, prepare_model
from problem2.generate import (
    decode_patterns,
    oracle_styles,
    plot_pattern_grid,
    prior_low_std_normal,
    save_figure,
    style_index,
)
from problem2.training_utils import posterior_means
from provided.drum_oracle import DrumOracle
from provided.drum_process import STYLES
from provided.visualize import plot_drum_pattern

DEFAULT_CREATIVE_DIR = DEFAULT_ANALYSIS_DIR.parent / "generated_patterns"


def _crossover(alphas, difference):
    """Return the alpha where ``difference`` first goes from < 0 to >= 0, interpolated linearly (None if never).

    A difference that starts at >= 0 gives the first alpha.
    """
    if len(difference) and difference[0] >= 0:
        return float(alphas[0])
    for i in range(1, len(alphas)):
        if difference[i - 1] < 0 <= difference[i]:
            weight = -difference[i - 1] / (difference[i] - difference[i - 1])
            return float(alphas[i - 1] + weight * (alphas[i] - alphas[i - 1]))
    return None


def _cell_agreement(first, second) -> np.ndarray:
    """Return the share of equal cells of each pair of patterns [N, steps, 9], float [N]."""
    first, second = np.asarray(first), np.asarray(second)
    return (first == second).reshape(len(first), -1).mean(axis=1)


def genre_blending(model, style_a: str, style_b: str, centroids, *, oracle=None, out_dir=DEFAULT_CREATIVE_DIR,
                   n_steps: int = 11, n_samples: int = 64, temperature: float = 1.0, decode: str = "sample",
                   device=None, seed: int = 0) -> dict:
    """Decode along the line from ``style_a``'s centroid to ``style_b``'s and find where the oracle switches.

    At weight a (0 to 1, the share of ``style_b``) z_high = (1 - a) c_a + a c_b,
    and ``n_samples`` z_low draws from p(z_low | z_high) at ``temperature``
    (the same standard-normal noise at every a) are decoded with ``decode``.
    The pictured row uses the first noise draw, thresholded at p > 0.5.

    Returns a dict with:
        style_a, style_b, alphas, decode: the settings
        posterior_a, posterior_b: mean oracle posterior of each style per a
        share_b: share of patterns the oracle assigns to ``style_b`` per a
        crossover_alpha: a where the mean posterior of b first reaches that
            of a, interpolated between steps (None if it never does)
        expected_density: mean cell probability per a
        patterns: the pictured row, uint8 [n_steps, 16, 9]
        figures: ``blend``
    """
    device = prepare_model(model, device)
    oracle = oracle or DrumOracle.from_generative_process()
    index_a, index_b = style_index(style_a), style_index(style_b)
    centroids = torch.as_tensor(np.asarray(centroids), dtype=torch.float32, device=device)
    alphas = np.linspace(0.0, 1.0, n_steps)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(n_samples, model.z_low_dim, generator=generator)

    posterior_a, posterior_b, share_b, density, row = [], [], [], [], []
    for alpha in alphas:
        z_high = ((1 - alpha) * centroids[index_a] + alpha * centroids[index_b]).expand(n_samples, -1)
        z_low = prior_low_std_normal(model, z_high, noise, temperature)
        decoded, probabilities = decode_patterns(model, z_high, z_low, mode=decode, generator=generator)
        posterior, predicted = oracle_styles(oracle, decoded)
        posterior_a.append(float(posterior[:, index_a].mean()))
        posterior_b.append(float(posterior[:, index_b].mean()))
        share_b.append(float((predicted == index_b).mean()))
        density.append(float(probabilities.mean()))
        row.append((probabilities[0] > 0.5).astype(np.uint8))

    result = {
        "style_a": style_a, "style_b": style_b, "alphas": alphas.tolist(), "decode": decode,
        "posterior_a": posterior_a, "posterior_b": posterior_b, "share_b": share_b,
        "crossover_alpha": _crossover(alphas, np.subtract(posterior_b, posterior_a)),
        "expected_density": density, "patterns": np.stack(row),
    }

    figure = Figure(figsize=(1.5 * n_steps + 1, 5.2))
    grid = figure.add_gridspec(2, n_steps, height_ratios=(1.0, 1.3))
    for i, alpha in enumerate(alphas):
        ax = figure.add_subplot(grid[0, i])
        plot_drum_pattern(result["patterns"][i], title=f"a={alpha:.1f}", ax=ax)
        ax.set_xlabel("")
        if i:
            ax.set_yticklabels([])
            ax.set_ylabel("")
    ax = figure.add_subplot(grid[1, :])
    ax.plot(alphas, posterior_a, "o-", color=STYLE_COLOURS[index_a], label=f"p({style_a} | x)")
    ax.plot(alphas, posterior_b, "o-", color=STYLE_COLOURS[index_b], label=f"p({style_b} | x)")
    if result["crossover_alpha"] is not None:
        ax.axvline(result["crossover_alpha"], color="black", linestyle=":",
                   label=f"crossover a={result['crossover_alpha']:.2f}")
    ax.set_xlabel(f"blend weight a of {style_b}")
    ax.set_ylabel(f"mean oracle posterior ({n_samples} patterns)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    result["figures"] = {"blend": str(save_figure(figure, Path(out_dir) / f"blend_{style_a}_{style_b}.png"))}
    return result


def style_transfer(model, patterns, target_style: str, centroids, *, oracle=None, out_dir=DEFAULT_CREATIVE_DIR,
                   device=None) -> dict:
    """Give source ``patterns`` [N, 16, 9] the z_high of ``target_style`` and keep their z_low.

    Two ways to keep z_low: ``swap`` decodes (target centroid, source mu_low)
    as is. ``residual`` keeps the source's position relative to its own
    conditional prior, z_low = mu_p(c_t) + sigma_p(c_t) * (mu_low - mu_p(h_s)) / sigma_p(h_s),
    with h_s the source's mu_high and c_t the target centroid, so the variation
    moves with the style. Decoded patterns are thresholded at p > 0.5.

    Returns a dict with:
        target_style, n_patterns
        source_styles: the oracle's style of each source
        reconstruction_agreement: mean share of cells that the sources' own
            reconstructions get right
        swap, residual: {target_accuracy (share the oracle assigns to the
            target style), mean_target_posterior, agreement_with_source
            (mean share of cells equal to the source)}
        patterns: {"source", "swap", "residual": uint8 [N, 16, 9]}
        figures: ``transfer``
    """
    device = prepare_model(model, device)
    oracle = oracle or DrumOracle.from_generative_process()
    target = style_index(target_style)
    sources = torch.stack([as_single_pattern(p) for p in patterns])
    n = len(sources)
    mu_low, mu_high = posterior_means(model, sources, device)
    mu_low = torch.as_tensor(mu_low, device=device)
    mu_high = torch.as_tensor(mu_high, device=device)
    target_high = torch.as_tensor(np.asarray(centroids)[target], dtype=torch.float32, device=device).expand(n, -1)

    with torch.no_grad():
        source_mu, source_logvar = model.prior_low(mu_high)
        target_mu, target_logvar = model.prior_low(target_high)
    standardised = (mu_low - source_mu) / torch.exp(0.5 * source_logvar)
    latents = {
        "swap": mu_low,
        "residual": target_mu + torch.exp(0.5 * target_logvar) * standardised,
    }

    source_array = sources.numpy().astype(np.uint8)
    _, source_predicted = oracle_styles(oracle, source_array)
    reconstruction, _ = decode_patterns(model, mu_high, mu_low)
    result = {
        "target_style": target_style, "n_patterns": n,
        "source_styles": [STYLES[s] if s >= 0 else None for s in source_predicted],
        "reconstruction_agreement": float(_cell_agreement(reconstruction, source_array).mean()),
        "patterns": {"source": source_array},
    }
    for method, z_low in latents.items():
        decoded, _ = decode_patterns(model, target_high, z_low)
        posterior, predicted = oracle_styles(oracle, decoded)
        result[method] = {
            "target_accuracy": float((predicted == target).mean()),
            "mean_target_posterior": float(posterior[:, target].mean()),
            "agreement_with_source": float(_cell_agreement(decoded, source_array).mean()),
        }
        result["patterns"][method] = decoded

    rows = np.stack([result["patterns"][key] for key in ("source", "swap", "residual")])
    result["figures"] = {"transfer": str(plot_pattern_grid(
        rows, Path(out_dir) / f"style_transfer_to_{target_style}.png",
        row_labels=["source", "swap z_high", "residual"],
        column_labels=[f"from {name}" for name in result["source_styles"]],
        title=f"Style transfer to {target_style}: z_low kept, z_high = {target_style} centroid",
    ))}
    return result


def humanize_variations(model, pattern, *, scales=(0.25, 0.5, 1.0, 2.0), n_variations: int = 6, oracle=None,
                        out_dir=DEFAULT_CREATIVE_DIR, device=None, seed: int = 0) -> dict:
    """Perturb a pattern's z_low by small amounts and decode close variations of it.

    The pattern [16, 9] is encoded to (mu_low, sigma_low, mu_high). Variation
    j at scale s decodes (mu_high, mu_low + s * sigma_low * noise_j), thresholded
    at p > 0.5, with the same noise at every scale. Scale 1 is the spread of
    the posterior q(z_low | x).

    Returns a dict with:
        scales: the perturbation scales
        mean_cell_changes: per scale, the mean number of the 144 cells that
            differ from the unperturbed reconstruction
        same_style_rate: per scale, the share of variations that the oracle
            assigns to the reconstruction's style
        reconstruction_style: the oracle's style of the reconstruction
        patterns: uint8 [n_scales, n_variations, 16, 9]
        reconstruction: uint8 [16, 9]
        figures: ``variations``
    """
    device = prepare_model(model, device)
    oracle = oracle or DrumOracle.from_generative_process()
    source = as_single_pattern(pattern)[None].to(device)
    with torch.no_grad():
        mu_low, logvar_low, _, _ = model.encode_hierarchy(source, sample=False)
    _, mu_high = posterior_means(model, source, device)
    mu_high = torch.as_tensor(mu_high, device=device).expand(n_variations, -1)
    reconstruction, _ = decode_patterns(model, mu_high[:1], mu_low)
    _, reconstruction_style = oracle_styles(oracle, reconstruction)
    style = int(reconstruction_style[0])

    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(n_variations, model.z_low_dim, generator=generator).to(device)
    variations, changes, same_style = [], [], []
    for scale in scales:
        z_low = mu_low + scale * torch.exp(0.5 * logvar_low) * noise
        decoded, _ = decode_patterns(model, mu_high, z_low)
        _, predicted = oracle_styles(oracle, decoded)
        variations.append(decoded)
        changes.append(float((decoded != reconstruction).reshape(n_variations, -1).sum(axis=1).mean()))
        same_style.append(float((predicted == style).mean()))

    result = {
        "scales": [float(s) for s in scales], "mean_cell_changes": changes, "same_style_rate": same_style,
        "reconstruction_style": STYLES[style] if style >= 0 else None,
        "patterns": np.stack(variations), "reconstruction": reconstruction[0],
    }
    grid = np.zeros((len(scales), n_variations + 1, 16, reconstruction.shape[-1]), dtype=np.uint8)
    grid[:, 0] = reconstruction[0]
    grid[:, 1:] = result["patterns"]
    result["figures"] = {"variations": str(plot_pattern_grid(
        grid, Path(out_dir) / "humanize_variations.png",
        row_labels=[f"scale {s:g}" for s in scales],
        column_labels=["reconstruction"] + [f"variation {j + 1}" for j in range(n_variations)],
        title="z_low perturbations around one pattern (scale in posterior standard deviations)",
    ))}
    return result


def long_sequence(model, style: str, centroids, *, n_bars: int = 8, correlation: float = 0.8,
                  temperature: float = 1.0, decode: str = "threshold", oracle=None,
                  out_dir=DEFAULT_CREATIVE_DIR, device=None, seed: int = 0) -> dict:
    """Generate ``n_bars`` bars in one style: z_high fixed at the centroid, z_low moving smoothly.

    The z_low noise follows a stationary AR(1) process,
    e_t = correlation * e_(t-1) + sqrt(1 - correlation^2) * n_t with n_t ~ N(0, I),
    so every bar is a draw from p(z_low | z_high) at ``temperature`` and
    neighbouring bars are similar. Bars are decoded with ``decode``: the
    default "threshold" keeps the most likely pattern of each bar, so bars
    change only where z_low moves a cell across p = 0.5, while "sample" adds
    the model's cell noise to every bar.

    Returns a dict with:
        style, n_bars, correlation, decode: the settings
        style_consistency: share of bars the oracle assigns to ``style``
        mean_style_posterior: mean oracle posterior of ``style`` over the bars
        bar_styles: the oracle's style of each bar
        mean_cell_changes_between_bars: mean number of cells that differ
            between consecutive bars
        sequence: uint8 [n_bars * 16, 9]
        figures: ``sequence``
    """
    if n_bars < 1:
        raise ValueError(f"invalid n_bars {n_bars}: expected at least 1")
    if not 0.0 <= correlation < 1.0:
        raise ValueError(f"invalid correlation {correlation}: expected a value in [0, 1)")
    device = prepare_model(model, device)
    oracle = oracle or DrumOracle.from_generative_process()
    target = style_index(style)
    generator = torch.Generator().manual_seed(seed)
    innovations = torch.randn(n_bars, model.z_low_dim, generator=generator)
    noise = torch.empty_like(innovations)
    noise[0] = innovations[0]
    for t in range(1, n_bars):
        noise[t] = correlation * noise[t - 1] + (1 - correlation ** 2) ** 0.5 * innovations[t]

    z_high = torch.as_tensor(np.asarray(centroids)[target], dtype=torch.float32, device=device).expand(n_bars, -1)
    z_low = prior_low_std_normal(model, z_high, noise, temperature)
    bars, _ = decode_patterns(model, z_high, z_low, mode=decode, generator=generator)
    posterior, predicted = oracle_styles(oracle, bars)
    changes = (bars[1:] != bars[:-1]).reshape(n_bars - 1, -1).sum(axis=1) if n_bars > 1 else np.zeros(0)

    result = {
        "style": style, "n_bars": n_bars, "correlation": correlation, "decode": decode,
        "style_consistency": float((predicted == target).mean()),
        "mean_style_posterior": float(posterior[:, target].mean()),
        "bar_styles": [STYLES[s] if s >= 0 else None for s in predicted],
        "mean_cell_changes_between_bars": float(changes.mean()) if changes.size else 0.0,
        "sequence": bars.reshape(n_bars * bars.shape[1], bars.shape[2]),
    }

    figure = Figure(figsize=(min(2.2 * n_bars + 1.5, 30), 5.2))
    axes = figure.subplots(2, 1, gridspec_kw={"height_ratios": (2.0, 1.0)})
    plot_drum_pattern(result["sequence"], title=f"{n_bars} bars of {style} (z_high fixed, z_low AR(1), "
                      f"correlation {correlation})", ax=axes[0])
    for bar in range(1, n_bars):
        axes[0].axvline(bar * bars.shape[1] - 0.5, color="tab:red", linestyle="--", linewidth=1)
    axes[1].bar(np.arange(1, n_bars + 1), posterior[:, target], color=STYLE_COLOURS[target])
    axes[1].set_ylim(0, 1.05)
    axes[1].set_xlabel("bar")
    axes[1].set_ylabel(f"p({style} | bar)")
    result["figures"] = {"sequence": str(save_figure(figure, Path(out_dir) / f"long_sequence_{style}.png"))}
    return result
