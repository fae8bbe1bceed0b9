"""Exact likelihood oracle for the drum dataset's true distribution.

Given its style, every cell of a 16 x 9 pattern (steps x instruments) is an
independent Bernoulli draw with probability ``q[style, step, instrument]``, so
the data distribution is a mixture of 5 products of Bernoullis::

    p_true(x) = sum_s w_s * prod_cells q^x * (1 - q)^(1 - x)

with one exception: an all-zero draw is replaced by a single kick at step 0.
The oracle accounts for that rule exactly, so ``p_true`` of the all-zero
pattern is 0 and the single-kick pattern carries the mass of both draws.

Usage::

    python -m provided.drum_oracle                    # H(X), Bayes accuracy, -log p_true of the data
    python -m provided.drum_oracle --drum-dir DIR --n-samples 200000

Problem 2 uses it for the forward KL between the true distribution and a
model q_model, in nats per pattern::

    KL(p_true || q_model) = E_p[-log q_model(x)] - H(X)
                          ~ mean over val of -log q_model(x) - H(X)

``forward_kl`` computes that difference. ``paired_forward_kl`` estimates the
same quantity as the mean of ``log p_true(x) - log q_model(x)`` over the same
patterns, which has a much smaller standard error on 200 val patterns. When the
model's NLL is an ELBO bound (a VAE), both give an upper bound on the KL.
"""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.special import logsumexp

from provided import drum_process
from provided.paths import DEFAULT_DRUM_DIR, missing_data_message

PATTERN_SHAPE = (drum_process.TIMESTEPS, len(drum_process.INSTRUMENTS))
KICK_COLUMN = drum_process.INSTRUMENTS.index("kick")
CELL_PROBABILITIES_KEY = "cell_probabilities"  # array name in patterns.npz
SAMPLING_CHUNK = 50_000  # patterns drawn per batch in Monte Carlo estimates, bounds memory


def _as_binary_patterns(x) -> np.ndarray:
    """Validate patterns and return them as float64 [N, 16, 9] of 0/1 (a single [16, 9] becomes N=1)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.shape == PATTERN_SHAPE:
        x = x[None]
    if x.ndim != 3 or x.shape[1:] != PATTERN_SHAPE:
        raise ValueError(f"expected patterns of shape [N, 16, 9] (steps x instruments), got {x.shape}")
    x = x.astype(np.float64)
    if not np.isin(x, (0.0, 1.0)).all():
        raise ValueError(
            "patterns must be binary (0/1): threshold model probabilities first, "
            "e.g. (probs > 0.5), or draw Bernoulli samples"
        )
    return x


class DrumOracle:
    """The true drum distribution: a mixture of products of Bernoullis over [16, 9] cells.

    ``cell_probabilities``: float [S, 16, 9], the probability that each cell is 1
    given style s (values strictly inside (0, 1)). ``style_weights``: [S] prior
    style probabilities, uniform when None. All log probabilities are in nats.
    """

    def __init__(self, cell_probabilities, style_weights=None):
        q = np.asarray(cell_probabilities, dtype=np.float64)
        if q.ndim != 3 or q.shape[1:] != PATTERN_SHAPE:
            raise ValueError(f"cell_probabilities must have shape [S, 16, 9], got {q.shape}")
        if not ((q > 0.0) & (q < 1.0)).all():
            raise ValueError(
                "cell_probabilities must lie strictly inside (0, 1), because a cell with q = 0 or 1 "
                "makes log p_true infinite for patterns that contradict it"
            )
        n_styles = q.shape[0]
        if style_weights is None:
            weights = np.full(n_styles, 1.0 / n_styles)
        else:
            weights = np.asarray(style_weights, dtype=np.float64)
            if weights.shape != (n_styles,) or (weights < 0).any() or not np.isclose(weights.sum(), 1.0):
                raise ValueError(
                    f"style_weights must be {n_styles} non-negative numbers summing to 1, got {weights}"
                )
        self.cell_probabilities = q
        self.style_weights = weights

        flat_q = q.reshape(n_styles, -1)
        # log p(x | s) = x . (log q - log(1 - q)) + sum log(1 - q), so a batch needs one matrix product.
        self._log_odds = np.log(flat_q) - np.log1p(-flat_q)  # [S, 144]
        self._log_all_zero = np.log1p(-flat_q).sum(axis=1)  # [S], log P(draw is all zero | s)
        with np.errstate(divide="ignore"):
            self._log_weights = np.log(weights)

    @property
    def n_styles(self) -> int:
        return self.cell_probabilities.shape[0]

    @classmethod
    def from_generative_process(cls, noise: float = drum_process.NOISE_PROBABILITY) -> "DrumOracle":
        """Build the oracle from the dataset's generative process with cell flip probability ``noise``."""
        return cls(drum_process.cell_hit_probabilities(noise))

    @classmethod
    def from_data_dir(cls, drum_dir=DEFAULT_DRUM_DIR) -> "DrumOracle":
        """Build the oracle from the cell probabilities stored in ``<drum_dir>/patterns.npz``.

        Data written by the course's own script has no such array, so the oracle
        then falls back to ``drum_process.cell_hit_probabilities()`` with a warning.
        """
        path = Path(drum_dir) / "patterns.npz"
        if not path.exists():
            raise FileNotFoundError(missing_data_message(path))
        with np.load(path) as archive:
            if CELL_PROBABILITIES_KEY in archive.files:
                return cls(archive[CELL_PROBABILITIES_KEY])
        warnings.warn(
            f"{path} has no {CELL_PROBABILITIES_KEY!r} array (course-format data); using the "
            "generative process's cell probabilities instead",
            stacklevel=2,
        )
        return cls.from_generative_process()

    def style_log_joint(self, x) -> np.ndarray:
        """Return log(w_s * p(x | s)) in nats, float64 [N, S], including the all-zero rule."""
        flat = _as_binary_patterns(x).reshape(-1, self._log_odds.shape[1])
        log_joint = flat @ self._log_odds.T + self._log_all_zero + self._log_weights

        # The all-zero rule: a silent draw becomes a kick at step 0, so that pattern
        # gets P(silent draw | s) added and the silent pattern itself has probability 0.
        n_hits = flat.sum(axis=1)
        single_kick = (n_hits == 1) & (flat[:, KICK_COLUMN] == 1)  # cell (step 0, kick) is index KICK_COLUMN
        if single_kick.any():
            rerouted = self._log_all_zero + self._log_weights
            log_joint[single_kick] = np.logaddexp(log_joint[single_kick], rerouted)
        log_joint[n_hits == 0] = -np.inf
        return log_joint

    def log_prob(self, x) -> np.ndarray:
        """Return the exact log p_true(x) in nats, float64 [N], for binary patterns [N, 16, 9].

        ``x`` may be a NumPy array or a torch tensor of 0/1 values. The all-zero
        pattern has probability 0 and gets -inf.
        """
        return logsumexp(self.style_log_joint(x), axis=1)

    def style_posterior(self, x) -> np.ndarray:
        """Return p(style | x), float64 [N, S], with rows that sum to 1.

        The all-zero pattern never occurs under the true distribution, so its row
        is NaN.
        """
        log_joint = self.style_log_joint(x)
        with np.errstate(invalid="ignore"):
            return np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))

    def predict_style(self, x) -> np.ndarray:
        """Return the Bayes-optimal style guess argmax_s p(s | x), int64 [N]."""
        return np.argmax(self.style_log_joint(x), axis=1).astype(np.int64)

    def sample(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` patterns from p_true; return (patterns uint8 [n, 16, 9], styles int64 [n])."""
        rng = np.random.default_rng(seed)
        styles = rng.choice(self.n_styles, size=n, p=self.style_weights).astype(np.int64)
        patterns = (rng.random((n, *PATTERN_SHAPE)) < self.cell_probabilities[styles]).astype(np.uint8)
        silent = ~patterns.reshape(n, -1).any(axis=1)
        patterns[silent, 0, KICK_COLUMN] = 1
        return patterns, styles

    def _monte_carlo(self, n_samples: int, seed: int):
        """Yield (log p_true, max style posterior) for ``n_samples`` draws, one chunk at a time."""
        if n_samples < 2:
            raise ValueError(f"n_samples must be at least 2 for a standard error, got {n_samples}")
        rng = np.random.default_rng(seed)
        remaining = n_samples
        while remaining > 0:
            size = min(SAMPLING_CHUNK, remaining)
            patterns, _ = self.sample(size, seed=int(rng.integers(2**63)))
            log_joint = self.style_log_joint(patterns)
            log_p = logsumexp(log_joint, axis=1)
            yield log_p, np.exp(log_joint.max(axis=1) - log_p)
            remaining -= size

    def entropy(self, n_samples: int = 200_000, seed: int = 0) -> tuple[float, float]:
        """Estimate H(X) = E[-log p_true(X)] by Monte Carlo; return (estimate, standard error) in nats."""
        neg_log_p = np.concatenate([-log_p for log_p, _ in self._monte_carlo(n_samples, seed)])
        return float(neg_log_p.mean()), float(neg_log_p.std(ddof=1) / np.sqrt(n_samples))

    def bayes_accuracy(self, n_samples: int = 200_000, seed: int = 0) -> float:
        """Estimate the best achievable style accuracy, E[max_s p(s | X)], by Monte Carlo.

        The expectation of the maximum posterior equals the accuracy of the
        argmax rule and has a smaller variance than counting correct guesses.
        """
        max_posterior = np.concatenate([top for _, top in self._monte_carlo(n_samples, seed)])
        return float(max_posterior.mean())


def forward_kl(nll_model_nats: float, entropy_nats: float) -> float:
    """Return KL(p_true || q_model) = NLL_model - H(X) in nats per pattern.

    ``nll_model_nats``: mean -log q_model(x) over patterns drawn from p_true
    (the val split). ``entropy_nats``: H(X), e.g. from ``DrumOracle.entropy``.
    The val mean carries its own sampling error: -log p_true has a standard
    deviation of about 7.7 nats, so the mean of 200 patterns is uncertain by
    about 0.55 nats, and small or negative results mean "indistinguishable
    from 0". ``paired_forward_kl`` is the sharper estimate.
    """
    return float(nll_model_nats - entropy_nats)


def paired_forward_kl(oracle: DrumOracle, patterns, nll_model_nats) -> tuple[float, float]:
    """Estimate KL(p_true || q_model) as the mean of log p_true(x) - log q_model(x).

    ``patterns``: binary [N, 16, 9] drawn from p_true (the val split).
    ``nll_model_nats``: -log q_model(x) for each of them, [N] in nats.
    Returns (estimate, standard error) in nats per pattern.
    """
    if isinstance(nll_model_nats, torch.Tensor):
        nll_model_nats = nll_model_nats.detach().cpu().numpy()
    nll = np.asarray(nll_model_nats, dtype=np.float64)
    log_p = oracle.log_prob(patterns)
    if nll.shape != log_p.shape:
        raise ValueError(f"nll_model_nats must have one value per pattern, shape {log_p.shape}, got {nll.shape}")
    differences = log_p + nll
    return float(differences.mean()), float(differences.std(ddof=1) / np.sqrt(len(differences)))


def _load_split_patterns(drum_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    with np.load(Path(drum_dir) / "patterns.npz") as archive:
        return {
            split: (archive[f"{split}_patterns"], archive[f"{split}_styles"])
            for split in ("train", "val")
            if f"{split}_patterns" in archive.files
        }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drum-dir", type=Path, default=DEFAULT_DRUM_DIR,
                        help="folder with patterns.npz (default: %(default)s)")
    parser.add_argument("--generative-process", action="store_true",
                        help="use the generative process's cell probabilities instead of the data file's")
    parser.add_argument("--n-samples", type=int, default=200_000,
                        help="Monte Carlo draws for H(X) and the Bayes accuracy (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the Monte Carlo draws (default: %(default)s)")
    args = parser.parse_args(argv)

    if args.generative_process:
        oracle = DrumOracle.from_generative_process()
        print("oracle: generative process (noise 0.05)")
    else:
        oracle = DrumOracle.from_data_dir(args.drum_dir)
        print(f"oracle: {args.drum_dir / 'patterns.npz'}")

    entropy, standard_error = oracle.entropy(args.n_samples, args.seed)
    print(f"H(X) = {entropy:.3f} +- {standard_error:.3f} nats per pattern ({args.n_samples} draws)")
    print(f"Bayes style accuracy = {oracle.bayes_accuracy(args.n_samples, args.seed):.4%}")

    if (args.drum_dir / "patterns.npz").exists():
        for split, (patterns, styles) in _load_split_patterns(args.drum_dir).items():
            neg_log_p = -oracle.log_prob(patterns)
            agreement = (oracle.predict_style(patterns) == styles).mean()
            print(f"{split}: mean -log p_true = {neg_log_p.mean():.3f} nats over {len(patterns)} patterns, "
                  f"posterior argmax matches the label for {agreement:.2%}")


if __name__ == "__main__":
    main()
