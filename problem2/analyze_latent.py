"""Analyse the latent hierarchy of a trained drum VAE: what z_high and z_low encode.

    python problem2/analyze_latent.py
    python problem2/analyze_latent.py --model problem2/results/best_model.pth --out /tmp/analysis

Every function returns a dict of numbers (keys listed in its docstring) and
writes its figures, as PNG, into ``out_dir``. ``figures`` in each dict maps a
short name to the written path. The script runs all of them, together with
the experiments of ``problem2.creative``, and writes ``summary.json``.

Posterior means: q(z_low | x) gives mu_low, and q(z_high | z_low) evaluated at
mu_low gives mu_high (``problem2.training_utils.posterior_means``). Decoded
patterns are the cells with p > 0.5, unless a function's ``decode`` is
"sample" (Bernoulli draws, as the model generates). Style judgements come from
the exact likelihood oracle ``provided.drum_oracle.DrumOracle``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from threadpoolctl import threadpool_limits  # installed with scikit-learn

from problem2.generate import (
    DEFAULT_MODEL_PATH,
    collect_patterns,
    decode_patterns,
    load_model,
    load_patterns,
    model_device,
    oracle_styles,
    plot_pattern_grid,
    prior_low_std_normal,
    save_figure,
    style_index,
)
from problem2.training_utils import posterior_means, style_centroids
from provided.drum_oracle import DrumOracle
from provided.drum_process import INSTRUMENTS, STYLES
from provided.paths import DEFAULT_DRUM_DIR, PROBLEM2_RESULTS
from provided.runtime import DEVICE_CHOICES, atomic_write_json, select_device

DEFAULT_ANALYSIS_DIR = PROBLEM2_RESULTS / "latent_analysis"
DEFAULT_TEMPERATURES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
STYLE_COLOURS = ("tab:red", "tab:blue", "tab:orange", "tab:green", "tab:purple")  # in STYLES order


def prepare_model(model, device=None) -> torch.device:
    """Put ``model`` in eval mode (moved to ``device`` when one is given) and return its device."""
    if device is not None:
        model.to(torch.device(device))
    model.eval()
    return model_device(model)


def as_single_pattern(pattern) -> torch.Tensor:
    """Return one pattern as float [16, 9], raising ValueError for any other shape."""
    tensor = torch.as_tensor(np.asarray(pattern), dtype=torch.float32)
    if tuple(tensor.shape) != (16, len(INSTRUMENTS)):
        raise ValueError(f"expected one pattern of shape [16, 9], got {tuple(tensor.shape)}")
    return tensor


# ---------------------------------------------------------------------------
# Statistics on latent codes

def style_variance_decomposition(codes, labels) -> dict:
    """Split the total variance of ``codes`` [N, D] into between-style and within-style parts.

    With class shares w_s = n_s / N, class means m_s and the overall mean m
    (population variances, summed over the D dimensions):
    between = sum_s w_s * |m_s - m|^2, within = sum_s w_s * sum_d var_s,d, and
    between + within is the total variance. Returns ``between_style_variance``,
    ``within_style_variance``, ``variance_ratio`` (between / within, inf when
    within is 0) and ``style_variance_fraction`` (between / total, 0 to 1).
    """
    codes = np.asarray(codes, dtype=np.float64)
    labels = np.asarray(labels)
    overall_mean = codes.mean(axis=0)
    between = 0.0
    within = 0.0
    for label in np.unique(labels):
        members = codes[labels == label]
        share = len(members) / len(codes)
        between += share * float(((members.mean(axis=0) - overall_mean) ** 2).sum())
        within += share * float(members.var(axis=0).sum())
    total = between + within
    return {
        "between_style_variance": between,
        "within_style_variance": within,
        "variance_ratio": between / within if within > 0 else float("inf"),
        "style_variance_fraction": between / total if total > 0 else 0.0,
    }


def knn_style_accuracy(codes, labels, k: int = 5, n_folds: int = 5, seed: int = 0) -> float:
    """Return the stratified k-fold cross-validated accuracy of a k-NN style classifier on ``codes`` [N, D].

    Euclidean distance on the raw codes. ``n_folds`` is lowered to the size of
    the smallest style when that is smaller. Fewer than 2 patterns in some
    style raise ValueError.
    """
    labels = np.asarray(labels)
    counts = np.bincount(labels)
    smallest = int(counts[counts > 0].min()) if labels.size else 0
    if smallest < 2:
        raise ValueError(f"k-NN accuracy needs at least 2 patterns of every style present, got {smallest}")
    folds = StratifiedKFold(n_splits=min(n_folds, smallest), shuffle=True, random_state=seed)
    classifier = KNeighborsClassifier(n_neighbors=k)
    scores = cross_val_score(classifier, np.asarray(codes), labels, cv=folds)
    return float(scores.mean())


def interpolate_vectors(start, end, alphas, method: str = "linear") -> torch.Tensor:
    """Interpolate between vectors ``start`` and ``end`` [D] at ``alphas`` [T]; return [T, D].

    "linear": (1 - a) * start + a * end. "spherical" (slerp):
    sin((1 - a) w) / sin(w) * start + sin(a w) / sin(w) * end, with w the
    angle between the vectors. Slerp falls back to linear for (anti)parallel
    or zero vectors.
    """
    start = torch.as_tensor(start, dtype=torch.float32)
    end = torch.as_tensor(end, dtype=torch.float32)
    alphas = torch.as_tensor(np.asarray(alphas), dtype=torch.float32)[:, None]
    linear = (1 - alphas) * start + alphas * end
    if method == "linear":
        return linear
    if method != "spherical":
        raise ValueError(f"invalid interpolation method {method!r}: choose linear or spherical")
    norms = start.norm() * end.norm()
    if norms < 1e-8:
        return linear
    cosine = torch.clamp(torch.dot(start, end) / norms, -1.0, 1.0)
    omega = torch.arccos(cosine)
    if torch.sin(omega).abs() < 1e-4:
        return linear
    return (torch.sin((1 - alphas) * omega) * start + torch.sin(alphas * omega) * end) / torch.sin(omega)


# ---------------------------------------------------------------------------
# The analyses

def visualize_latent_hierarchy(model, data_loader, device=None, *, out_dir=DEFAULT_ANALYSIS_DIR,
                               n_variations: int = 8, temperature: float = 1.0, max_points: int = 1000,
                               perplexity: float = 30.0, seed: int = 0) -> dict:
    """Plot t-SNE maps of both latent levels coloured by style, and per-style rows of decoded patterns.

    ``data_loader``: labelled patterns (see ``problem2.generate.collect_patterns``).
    t-SNE runs on at most ``max_points`` randomly chosen posterior means. In
    the rows, every style uses its centroid z_high, and column j uses the
    same standard-normal z_low noise for every style, at ``temperature``.

    Returns a dict with:
        silhouette_z_high, silhouette_z_low: silhouette score of the style
            labels on all posterior means of that level, -1 to 1
        silhouette_tsne_z_high, silhouette_tsne_z_low: the same on the 2-D t-SNE maps
        n_points: points in the t-SNE maps
        figures: ``tsne``, ``style_rows``
    """
    device = prepare_model(model, device)
    out_dir = Path(out_dir)
    patterns, styles = collect_patterns(data_loader)
    labels = styles.numpy()
    mu_low, mu_high = posterior_means(model, patterns, device)

    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(labels), size=min(max_points, len(labels)), replace=False))
    result = {
        "silhouette_z_high": float(silhouette_score(mu_high, labels)),
        "silhouette_z_low": float(silhouette_score(mu_low, labels)),
        "n_points": int(len(chosen)),
    }

    figure = Figure(figsize=(11, 5))
    axes = figure.subplots(1, 2)
    for ax, name, codes in ((axes[0], "z_high", mu_high), (axes[1], "z_low", mu_low)):
        # t-SNE needs a perplexity below the number of points, so small sets use (n - 1) / 3.
        # One OpenMP thread, as in provided.visualize: under load, extra threads made t-SNE several times slower.
        tsne = TSNE(n_components=2, perplexity=min(perplexity, (len(chosen) - 1) / 3), init="pca",
                    random_state=seed)
        with threadpool_limits(limits=1):
            embedding = tsne.fit_transform(codes[chosen])
        score = float(silhouette_score(embedding, labels[chosen]))
        result[f"silhouette_tsne_{name}"] = score
        for style, colour in enumerate(STYLE_COLOURS):
            members = labels[chosen] == style
            ax.scatter(embedding[members, 0], embedding[members, 1], s=8, color=colour, label=STYLES[style])
        ax.set_title(f"t-SNE of {name} posterior means\nsilhouette: {result[f'silhouette_{name}']:.2f} "
                     f"({codes.shape[1]}-d), {score:.2f} (2-d map)")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].legend(loc="best", fontsize=8)
    tsne_path = save_figure(figure, out_dir / "latent_tsne.png")

    centroids = style_centroids(model, patterns, styles, device=device)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(n_variations, model.z_low_dim, generator=generator)
    rows = []
    for style in range(len(STYLES)):
        z_high = centroids[style].expand(n_variations, -1)
        z_low = prior_low_std_normal(model, z_high, noise, temperature)
        rows.append(decode_patterns(model, z_high, z_low)[0])
    rows_path = plot_pattern_grid(
        np.stack(rows), out_dir / "style_rows.png", row_labels=list(STYLES),
        column_labels=[f"z_low #{j}" for j in range(n_variations)],
        title="Each row: one style's z_high centroid; each column: one z_low noise draw",
    )
    result["figures"] = {"tsne": str(tsne_path), "style_rows": str(rows_path)}
    return result


def _switch_alpha(alphas, predicted, target: int):
    """Return the first alpha from which every later prediction is ``target`` (None if the last one is not)."""
    switch = None
    for alpha, style in zip(alphas, predicted):
        if style == target:
            switch = float(alpha) if switch is None else switch
        else:
            switch = None
    return switch


def interpolate_styles(model, pattern1, pattern2, n_steps: int = 10, device=None, *, oracle=None,
                       out_dir=DEFAULT_ANALYSIS_DIR, decode: str = "threshold", seed: int = 0) -> dict:
    """Interpolate from ``pattern1`` to ``pattern2`` [16, 9] along three latent paths, linearly and spherically.

    Paths: ``z_high`` (z_high moves, z_low stays at pattern1's), ``z_low``
    (z_low moves, z_high stays at pattern1's) and ``both``. Every point is
    decoded (``decode``) and judged by the oracle (default: the generative
    process's oracle).

    Returns a dict with (``method`` is "linear" or "spherical"):
        alphas: n_steps values from 0 to 1
        source_style, target_style: the oracle's style of the two input patterns
        posterior[method][path]: n_steps rows of the 5 style probabilities
        target_posterior[method][path]: p(target style) per alpha
        switch_alpha[method][path]: first alpha from which every decoded
            pattern is the target style, None if the last one is not
        figures: ``linear``, ``spherical``, ``posterior``
    """
    if n_steps < 2:
        raise ValueError(f"invalid n_steps {n_steps}: expected at least 2")
    device = prepare_model(model, device)
    oracle = oracle or DrumOracle.from_generative_process()
    out_dir = Path(out_dir)
    endpoints = torch.stack([as_single_pattern(pattern1), as_single_pattern(pattern2)])
    _, endpoint_styles = oracle_styles(oracle, endpoints.numpy())
    source, target = (int(s) for s in endpoint_styles)
    mu_low, mu_high = posterior_means(model, endpoints, device)
    alphas = np.linspace(0.0, 1.0, n_steps)

    result = {"alphas": alphas.tolist(), "source_style": STYLES[source] if source >= 0 else None,
              "target_style": STYLES[target] if target >= 0 else None,
              "posterior": {}, "target_posterior": {}, "switch_alpha": {}, "figures": {}}
    generator = torch.Generator().manual_seed(seed)
    for method in ("linear", "spherical"):
        high_path = interpolate_vectors(mu_high[0], mu_high[1], alphas, method)
        low_path = interpolate_vectors(mu_low[0], mu_low[1], alphas, method)
        fixed_high = torch.as_tensor(mu_high[0], dtype=torch.float32).expand(n_steps, -1)
        fixed_low = torch.as_tensor(mu_low[0], dtype=torch.float32).expand(n_steps, -1)
        latents = {"z_high": (high_path, fixed_low), "z_low": (fixed_high, low_path), "both": (high_path, low_path)}

        rows = []
        for key in ("posterior", "target_posterior", "switch_alpha"):
            result[key][method] = {}
        for path_name, (z_high, z_low) in latents.items():
            decoded, _ = decode_patterns(model, z_high, z_low, mode=decode, generator=generator)
            posterior, predicted = oracle_styles(oracle, decoded)
            rows.append(decoded)
            result["posterior"][method][path_name] = posterior.tolist()
            result["target_posterior"][method][path_name] = posterior[:, target].tolist() if target >= 0 else None
            result["switch_alpha"][method][path_name] = _switch_alpha(alphas, predicted, target)
        result["figures"][method] = str(plot_pattern_grid(
            np.stack(rows), out_dir / f"interpolation_{method}.png",
            row_labels=[f"{name} moves" for name in latents],
            column_labels=[f"a={a:.2f}" for a in alphas],
            title=f"{method.capitalize()} interpolation, {result['source_style']} -> {result['target_style']}",
        ))

    figure = Figure(figsize=(13, 3.6))
    axes = figure.subplots(1, 3, sharey=True)
    for ax, path_name in zip(axes, ("z_high", "z_low", "both")):
        for method, line_style in (("linear", "-"), ("spherical", "--")):
            posterior = np.asarray(result["posterior"][method][path_name])
            for style, colour in ((source, "tab:blue"), (target, "tab:red")):
                if style >= 0:
                    ax.plot(alphas, posterior[:, style], line_style, color=colour,
                            label=f"p({STYLES[style]}), {method}")
        ax.set_title(f"{path_name} moves")
        ax.set_xlabel("interpolation weight a")
    axes[0].set_ylabel("oracle style posterior")
    axes[0].legend(fontsize=7)
    result["figures"]["posterior"] = str(save_figure(figure, out_dir / "interpolation_posterior.png"))
    return result


def measure_disentanglement(model, data_loader, device=None, *, out_dir=DEFAULT_ANALYSIS_DIR, k: int = 5,
                            n_folds: int = 5, seed: int = 0) -> dict:
    """Measure how much style each latent level carries; save the dict as ``disentanglement.json``.

    Levels: ``z_high`` and ``z_low`` (posterior means), and
    ``z_low_residual``: z_low standardised by the conditional prior,
    (mu_low - mu_prior(mu_high)) / sigma_prior(mu_high), which is the part of z_low
    that p(z_low | z_high) does not already explain.

    Returns a dict with:
        z_high, z_low, z_low_residual: the keys of ``style_variance_decomposition``
            plus ``knn_accuracy`` (see ``knn_style_accuracy``)
        chance_accuracy: share of the most common style
        n_patterns, k, json_path
        figures: ``bars``
    A good hierarchy has a high k-NN accuracy and style share on z_high,
    and a residual close to chance.
    """
    device = prepare_model(model, device)
    out_dir = Path(out_dir)
    patterns, styles = collect_patterns(data_loader)
    labels = styles.numpy()
    mu_low, mu_high = posterior_means(model, patterns, device)
    with torch.no_grad():
        prior_mu, prior_logvar = model.prior_low(torch.as_tensor(mu_high, device=device))
    residual = (mu_low - prior_mu.cpu().numpy()) / np.exp(0.5 * prior_logvar.cpu().numpy())

    result = {"n_patterns": int(len(labels)), "k": k,
              "chance_accuracy": float(np.bincount(labels).max() / len(labels))}
    for level, codes in (("z_high", mu_high), ("z_low", mu_low), ("z_low_residual", residual)):
        stats = style_variance_decomposition(codes, labels)
        stats["knn_accuracy"] = knn_style_accuracy(codes, labels, k=k, n_folds=n_folds, seed=seed)
        result[level] = stats

    levels = ("z_high", "z_low", "z_low_residual")
    figure = Figure(figsize=(9, 3.4))
    axes = figure.subplots(1, 2)
    axes[0].bar(levels, [result[level]["knn_accuracy"] for level in levels], color="tab:blue")
    axes[0].axhline(result["chance_accuracy"], color="black", linestyle=":", label="chance")
    axes[0].set_ylim(0, 1.05)
    axes[0].set_title(f"{k}-NN style accuracy (cross-validated)")
    axes[0].legend(fontsize=8)
    axes[1].bar(levels, [result[level]["style_variance_fraction"] for level in levels], color="tab:orange")
    axes[1].set_ylim(0, 1.05)
    axes[1].set_title("between-style share of the variance")
    result["figures"] = {"bars": str(save_figure(figure, out_dir / "disentanglement.png"))}

    json_path = out_dir / "disentanglement.json"
    result["json_path"] = str(json_path)
    atomic_write_json(result, json_path)
    return result


def controllable_generation(model, genre_labels=STYLES, device=None, *, data_loader=None, oracle=None,
                            out_dir=DEFAULT_ANALYSIS_DIR, n_per_style: int = 10, n_eval: int = 200,
                            temperatures=DEFAULT_TEMPERATURES, decode: str = "sample", seed: int = 0) -> dict:
    """Generate patterns for requested styles from their z_high centroids and control their complexity.

    ``genre_labels``: style names to generate. ``data_loader``: labelled
    patterns whose posterior means give the centroids (required). For each
    style, z_high is its centroid and z_low = mu_prior + T * sigma_prior * noise,
    where T is the z_low temperature (the decoder's logits are not tempered).
    The same ``n_eval`` noise draws serve every temperature.

    Returns a dict with (densities are shares of the 144 cells, 0 to 1):
        styles, decode, temperatures: the settings
        centroids: {style: z_high centroid as a list}
        oracle_accuracy: {style: share of the ``n_eval`` patterns at T = 1
            that the oracle assigns to the style}
        oracle_accuracy_mean: their mean (None when 1.0 is not among the temperatures)
        mean_neg_log_p_true: {style: mean -log p_true of those patterns, nats}
        expected_density: {style: [mean cell probability per T]}
        threshold_density: {style: [share of cells with p > 0.5 per T]}
        accuracy_by_temperature: {style: [oracle accuracy per T]}
        data_density: {style: share of hit cells in the data}
        figures: ``samples`` (``n_per_style`` patterns per style), ``complexity``
    """
    if data_loader is None:
        raise ValueError("controllable_generation needs data_loader: labelled patterns for the style centroids")
    device = prepare_model(model, device)
    oracle = oracle or DrumOracle.from_generative_process()
    out_dir = Path(out_dir)
    requested = [style_index(name) for name in genre_labels]
    patterns, styles = collect_patterns(data_loader)
    centroids = style_centroids(model, patterns, styles, device=device)
    temperatures = [float(t) for t in temperatures]

    result = {"styles": [STYLES[s] for s in requested], "decode": decode, "temperatures": temperatures,
              "centroids": {}, "oracle_accuracy": {}, "mean_neg_log_p_true": {}, "expected_density": {},
              "threshold_density": {}, "accuracy_by_temperature": {}, "data_density": {}}
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(n_eval, model.z_low_dim, generator=generator)
    sample_rows = []
    for style in requested:
        name = STYLES[style]
        z_high = centroids[style].expand(n_eval, -1)
        result["centroids"][name] = centroids[style].tolist()
        result["data_density"][name] = float(patterns[styles == style].mean())
        expected, thresholded, accuracies = [], [], []
        for temperature in temperatures:
            z_low = prior_low_std_normal(model, z_high, noise, temperature)
            decoded, probabilities = decode_patterns(model, z_high, z_low, mode=decode, generator=generator)
            _, predicted = oracle_styles(oracle, decoded)
            expected.append(float(probabilities.mean()))
            thresholded.append(float((probabilities > 0.5).mean()))
            accuracies.append(float((predicted == style).mean()))
            if temperature == 1.0:
                result["oracle_accuracy"][name] = accuracies[-1]
                log_p = oracle.log_prob(decoded)
                result["mean_neg_log_p_true"][name] = float(-log_p[np.isfinite(log_p)].mean())
                sample_rows.append(decoded[:n_per_style])
        result["expected_density"][name] = expected
        result["threshold_density"][name] = thresholded
        result["accuracy_by_temperature"][name] = accuracies
    if result["oracle_accuracy"]:
        result["oracle_accuracy_mean"] = float(np.mean(list(result["oracle_accuracy"].values())))
    else:
        result["oracle_accuracy_mean"] = None  # 1.0 is not among the temperatures

    figures = {}
    if sample_rows:
        figures["samples"] = str(plot_pattern_grid(
            np.stack(sample_rows), out_dir / "samples_per_style.png", row_labels=result["styles"],
            title=f"{n_per_style} generated patterns per style (centroid z_high, z_low from the prior, {decode})",
        ))
    figure = Figure(figsize=(11, 3.8))
    axes = figure.subplots(1, 2)
    for style in requested:
        name, colour = STYLES[style], STYLE_COLOURS[style]
        axes[0].plot(temperatures, result["expected_density"][name], "o-", color=colour, label=name)
        axes[0].axhline(result["data_density"][name], color=colour, linestyle=":", linewidth=1)
        axes[1].plot(temperatures, result["accuracy_by_temperature"][name], "o-", color=colour, label=name)
    axes[0].set_xlabel("z_low temperature T")
    axes[0].set_ylabel("expected share of hit cells")
    axes[0].set_title("Complexity vs temperature (dotted: data)")
    axes[0].legend(fontsize=8)
    axes[1].set_xlabel("z_low temperature T")
    axes[1].set_ylabel("oracle style accuracy")
    axes[1].set_ylim(0, 1.05)
    axes[1].set_title(f"Style accuracy vs temperature ({decode})")
    figures["complexity"] = str(save_figure(figure, out_dir / "complexity_vs_temperature.png"))
    result["figures"] = figures
    return result


def latent_traversal(model, data_loader, device=None, *, level: str = "z_high", dims=None, n_values: int = 7,
                     span: float = 2.5, base_style: str | None = None, oracle=None,
                     out_dir=DEFAULT_ANALYSIS_DIR) -> dict:
    """Move one latent dimension at a time and record what the decoded patterns change.

    The base point is the mean posterior z_high of ``data_loader`` (or the
    centroid of ``base_style``). Dimension d moves over ``n_values`` offsets
    from -``span`` to +``span`` standard deviations of its posterior means in
    the data. For ``level`` "z_high", z_low is the prior mean of p(z_low | z_high)
    at each point (the model's own top-down path). For "z_low", z_high stays at
    the base and z_low moves around the prior mean.

    Returns a dict with:
        level, dims, base_style: the settings
        offsets: the offsets, in data standard deviations
        data_std: standard deviation of each traversed dimension in the data
        and, as lists aligned with ``dims``:
        expected_density: [mean cell probability per offset]
        instrument_hits: {instrument: [expected hits per bar per offset]}
        most_changed_instrument: the instrument whose expected hits change most
        density_range: max - min of expected_density
        oracle_style: [style of the thresholded pattern per offset, None when silent]
        figures: ``grid``, ``curves``
    """
    if level not in ("z_high", "z_low"):
        raise ValueError(f"invalid level {level!r}: choose z_high or z_low")
    device = prepare_model(model, device)
    oracle = oracle or DrumOracle.from_generative_process()
    out_dir = Path(out_dir)
    patterns, styles = collect_patterns(data_loader)
    mu_low, mu_high = posterior_means(model, patterns, device)
    codes = mu_high if level == "z_high" else mu_low
    dims = list(range(codes.shape[1])) if dims is None else [int(d) for d in dims]
    if any(not 0 <= d < codes.shape[1] for d in dims):
        raise ValueError(f"invalid dims {dims} for {level}: expected indices in 0-{codes.shape[1] - 1}")
    offsets = np.linspace(-span, span, n_values)
    data_std = codes.std(axis=0)

    if base_style is None:
        base_high = torch.as_tensor(mu_high.mean(axis=0), dtype=torch.float32)
    else:
        base_high = style_centroids(model, patterns, styles, device=device)[style_index(base_style)].float()
    base_high = base_high.to(device)
    zero_noise = torch.zeros(n_values, model.z_low_dim)

    result = {"level": level, "dims": dims, "offsets": offsets.tolist(), "data_std": data_std[dims].tolist(),
              "base_style": base_style, "expected_density": [], "instrument_hits": [],
              "most_changed_instrument": [], "density_range": [], "oracle_style": []}
    rows = []
    for d in dims:
        shift = torch.as_tensor(offsets * data_std[d], dtype=torch.float32, device=device)
        z_high = base_high.expand(n_values, -1).clone()
        if level == "z_high":
            z_high[:, d] += shift
            z_low = prior_low_std_normal(model, z_high, zero_noise)
        else:
            z_low = prior_low_std_normal(model, z_high, zero_noise)
            z_low[:, d] += shift
        decoded, probabilities = decode_patterns(model, z_high, z_low)
        rows.append(decoded)
        hits = probabilities.sum(axis=1)  # [n_values, 9] expected hits per instrument
        change = hits.max(axis=0) - hits.min(axis=0)
        _, predicted = oracle_styles(oracle, decoded)
        expected_density = probabilities.mean(axis=(1, 2))
        result["expected_density"].append(expected_density.tolist())
        result["instrument_hits"].append({name: hits[:, i].tolist() for i, name in enumerate(INSTRUMENTS)})
        result["most_changed_instrument"].append(INSTRUMENTS[int(change.argmax())])
        result["density_range"].append(float(expected_density.max() - expected_density.min()))
        result["oracle_style"].append([STYLES[s] if s >= 0 else None for s in predicted])

    grid_path = plot_pattern_grid(
        np.stack(rows), out_dir / f"traversal_{level}.png",
        row_labels=[f"{level}[{d}]" for d in dims], column_labels=[f"{o:+.1f} sd" for o in offsets],
        title=f"Traversal of {level}, one dimension per row",
    )
    figure = Figure(figsize=(11, 3.6))
    axes = figure.subplots(1, 2)
    for index, d in enumerate(dims):
        axes[0].plot(offsets, result["expected_density"][index], "o-", label=f"{level}[{d}]")
        changed = result["most_changed_instrument"][index]
        axes[1].plot(offsets, result["instrument_hits"][index][changed], "o-", label=f"{level}[{d}]: {changed}")
    axes[0].set_xlabel("offset (data standard deviations)")
    axes[0].set_ylabel("expected share of hit cells")
    axes[0].set_title("Density along each dimension")
    axes[1].set_xlabel("offset (data standard deviations)")
    axes[1].set_ylabel("expected hits per bar")
    axes[1].set_title("Most changed instrument of each dimension")
    for ax in axes:
        ax.legend(fontsize=7)
    curves_path = save_figure(figure, out_dir / f"traversal_{level}_curves.png")
    result["figures"] = {"grid": str(grid_path), "curves": str(curves_path)}
    return result


# ---------------------------------------------------------------------------
# Command line

def json_ready(value):
    """Return ``value`` with numpy arrays dropped and numpy scalars turned into Python numbers, for JSON."""
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items() if not isinstance(item, np.ndarray)}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def first_pattern_of(data, style: str) -> torch.Tensor:
    """Return the first pattern [16, 9] of ``style`` in labelled ``data``."""
    patterns, styles = collect_patterns(data)
    matches = (styles == style_index(style)).nonzero()
    if len(matches) == 0:
        raise ValueError(f"no pattern of style {style!r} in the data")
    return patterns[int(matches[0])]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH,
                        help="trained checkpoint (default: %(default)s)")
    parser.add_argument("--drum-dir", type=Path, default=DEFAULT_DRUM_DIR,
                        help="drum dataset: train split for centroids and maps, val split for the "
                        "disentanglement scores (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_ANALYSIS_DIR,
                        help="folder for figures, disentanglement.json and summary.json (default: %(default)s)")
    parser.add_argument("--styles", nargs=2, default=("rock", "jazz"), metavar=("FROM", "TO"),
                        help="style pair for interpolation, blending and transfer (default: rock jazz)")
    parser.add_argument("--tsne-points", type=int, default=1000,
                        help="maximum number of patterns in the t-SNE maps (default: %(default)s)")
    parser.add_argument("--n-eval", type=int, default=200,
                        help="generated patterns per style for the oracle accuracy (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed for every random draw (default: %(default)s)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="cpu",
                        help="device for the model (default: %(default)s; the analysis is small)")
    return parser


def main(argv=None) -> dict:
    """Run every analysis and creative experiment; write figures and ``summary.json`` to --out."""
    from problem2.creative import genre_blending, humanize_variations, long_sequence, style_transfer
    from problem2.generate import export_pattern

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        source_style, target_style = (STYLES[style_index(name)] for name in args.styles)
        model = load_model(args.model, select_device(args.device))
        train = load_patterns(args.drum_dir, "train")
        val = load_patterns(args.drum_dir, "val")
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    oracle = DrumOracle.from_data_dir(args.drum_dir)
    out = Path(args.out)
    print(f"model {args.model} | data {args.drum_dir} | out {out}")

    results = {"model": str(args.model)}
    results["hierarchy"] = visualize_latent_hierarchy(model, train, out_dir=out, max_points=args.tsne_points,
                                                      seed=args.seed)
    results["disentanglement"] = measure_disentanglement(model, val, out_dir=out, seed=args.seed)
    results["interpolation"] = interpolate_styles(model, first_pattern_of(val, source_style),
                                                  first_pattern_of(val, target_style), oracle=oracle,
                                                  out_dir=out, seed=args.seed)
    results["controllable"] = controllable_generation(model, STYLES, data_loader=train, oracle=oracle,
                                                      out_dir=out, n_eval=args.n_eval, seed=args.seed)
    for level in ("z_high", "z_low"):
        results[f"traversal_{level}"] = latent_traversal(model, train, level=level, oracle=oracle, out_dir=out)

    centroids = style_centroids(model, *train).numpy()
    results["blending"] = genre_blending(model, source_style, target_style, centroids, oracle=oracle,
                                         out_dir=out, seed=args.seed)
    sources = torch.stack([first_pattern_of(val, style) for style in STYLES if style != target_style])
    results["style_transfer"] = style_transfer(model, sources, target_style, centroids, oracle=oracle, out_dir=out)
    results["humanize"] = humanize_variations(model, first_pattern_of(val, source_style), oracle=oracle,
                                              out_dir=out, seed=args.seed)
    results["long_sequence"] = long_sequence(model, source_style, centroids, oracle=oracle, out_dir=out,
                                             seed=args.seed)
    export_pattern(results["long_sequence"]["sequence"], out, f"long_sequence_{source_style}_audio", loops=1)

    summary_path = out / "summary.json"
    atomic_write_json(json_ready(results), summary_path)

    hierarchy, disentanglement = results["hierarchy"], results["disentanglement"]
    controllable, blending = results["controllable"], results["blending"]
    print(f"silhouette of styles: z_high {hierarchy['silhouette_z_high']:.3f}, z_low {hierarchy['silhouette_z_low']:.3f}")
    print("k-NN style accuracy (val): " + ", ".join(
        f"{level} {disentanglement[level]['knn_accuracy']:.3f}" for level in ("z_high", "z_low", "z_low_residual"))
        + f" (chance {disentanglement['chance_accuracy']:.3f})")
    print("oracle accuracy of generated patterns: " + ", ".join(
        f"{name} {value:.3f}" for name, value in controllable["oracle_accuracy"].items())
        + f" (mean {controllable['oracle_accuracy_mean']:.3f}, {controllable['decode']})")
    crossover = blending["crossover_alpha"]
    print(f"blend {source_style} -> {target_style}: crossover at a = "
          + (f"{crossover:.2f}" if crossover is not None else "none"))
    print(f"wrote {summary_path}")
    return results


if __name__ == "__main__":
    main()
