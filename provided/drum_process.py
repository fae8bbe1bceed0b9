"""The generative process behind the drum dataset, as data.

A pattern is a 16 x 9 binary grid (steps x instruments). Given its style,
every cell is an independent Bernoulli draw: first the style's hits (certain
ones with probability 1, probabilistic ones with their listed p), then each of
the 144 cells is flipped with probability ``NOISE_PROBABILITY``. So the cell
probability after noise is ``q = p * (1 - noise) + (1 - p) * noise`` and the
data distribution is a mixture of 5 products of Bernoullis. The only exception
is an all-zero grid, which gets a kick at step 0 (see ``sample_patterns``).

Steps count from 0. Style hit table (p=... marks a probabilistic hit):

    rock        kick 0, 4, 8, 12 and 2, 6, 10, 14 p=0.7; snare 4, 8, 12;
                closed hi-hat even steps; crash 15 p=0.3
    jazz        kick 0 and 10 p=0.6; snare 4, 12; ride 0, 3, 6, 9, 12, 15
    hiphop      kick 0, 10; snare 4, 12; closed hi-hat even steps p=0.8;
                clap 7 p=0.4
    electronic  kick 0, 4, 8, 12; snare 4, 12; closed hi-hat 2, 6, 10, 14;
                clap 0, 8 p=0.7
    latin       kick 0, 3, 6, 10, 12; snare 4, 12; closed hi-hat even steps;
                tom_low 2, 5, 8, 11, 14 p=0.6
"""
from __future__ import annotations

import numpy as np

INSTRUMENTS = (
    "kick", "snare", "hihat_closed", "hihat_open", "tom_low", "tom_high", "crash", "ride", "clap",
)
STYLES = ("rock", "jazz", "hiphop", "electronic", "latin")
TIMESTEPS = 16
NOISE_PROBABILITY = 0.05  # chance that any one cell is flipped after the style's hits are drawn

_EVEN_STEPS = tuple(range(0, TIMESTEPS, 2))

# Style name -> list of (instrument, steps, hit probability before noise).
_STYLE_HITS = {
    "rock": [
        ("kick", (0, 4, 8, 12), 1.0),
        ("kick", (2, 6, 10, 14), 0.7),
        ("snare", (4, 8, 12), 1.0),
        ("hihat_closed", _EVEN_STEPS, 1.0),
        ("crash", (15,), 0.3),
    ],
    "jazz": [
        ("kick", (0,), 1.0),
        ("kick", (10,), 0.6),
        ("snare", (4, 12), 1.0),
        ("ride", (0, 3, 6, 9, 12, 15), 1.0),
    ],
    "hiphop": [
        ("kick", (0, 10), 1.0),
        ("snare", (4, 12), 1.0),
        ("hihat_closed", _EVEN_STEPS, 0.8),
        ("clap", (7,), 0.4),
    ],
    "electronic": [
        ("kick", (0, 4, 8, 12), 1.0),
        ("snare", (4, 12), 1.0),
        ("hihat_closed", (2, 6, 10, 14), 1.0),
        ("clap", (0, 8), 0.7),
    ],
    "latin": [
        ("kick", (0, 3, 6, 10, 12), 1.0),
        ("snare", (4, 12), 1.0),
        ("hihat_closed", _EVEN_STEPS, 1.0),
        ("tom_low", (2, 5, 8, 11, 14), 0.6),
    ],
}


def style_hit_probabilities() -> np.ndarray:
    """Return the hit probability p of every cell before noise, float64 [5, 16, 9].

    Axis 0 follows ``STYLES``, axis 1 the steps, axis 2 ``INSTRUMENTS``. A cell
    is 1 for a certain hit, the listed p for a probabilistic one, 0 otherwise.
    """
    probabilities = np.zeros((len(STYLES), TIMESTEPS, len(INSTRUMENTS)), dtype=np.float64)
    for style_idx, style in enumerate(STYLES):
        for instrument, steps, p in _STYLE_HITS[style]:
            probabilities[style_idx, list(steps), INSTRUMENTS.index(instrument)] = p
    return probabilities


def cell_hit_probabilities(noise: float = NOISE_PROBABILITY) -> np.ndarray:
    """Return the probability q that a cell is 1 after noise, float64 [5, 16, 9].

    ``q = p * (1 - noise) + (1 - p) * noise`` with p from
    ``style_hit_probabilities``. ``noise`` is the per-cell flip probability.
    """
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"invalid noise probability {noise}: expected a value in [0, 1]")
    p = style_hit_probabilities()
    return p * (1.0 - noise) + (1.0 - p) * noise


def sample_patterns(
    style_idx, rng: np.random.Generator, noise: float = NOISE_PROBABILITY
) -> np.ndarray:
    """Draw one pattern per entry of ``style_idx``, uint8 [N, 16, 9] of 0/1.

    ``style_idx`` contains integers in 0-4 (indices into ``STYLES``). The hits are
    drawn independently from ``style_hit_probabilities``, then every cell is
    flipped with probability ``noise``. A grid that ends up all zero gets a
    kick at step 0, so it is never silent. That rule moves a tiny amount of
    probability (below 1e-9 for every style) away from the pure
    product-of-Bernoullis model of ``cell_hit_probabilities``.
    """
    style_idx = np.asarray(style_idx)
    if style_idx.ndim != 1:
        raise ValueError(f"style_idx must be a 1-D array of style indices, got shape {style_idx.shape}")
    if style_idx.size and (style_idx.min() < 0 or style_idx.max() >= len(STYLES)):
        raise ValueError(f"style_idx values must be in 0-{len(STYLES) - 1}, got {style_idx.min()}-{style_idx.max()}")

    p = style_hit_probabilities()[style_idx]
    hits = rng.random(p.shape) < p
    flips = rng.random(p.shape) < noise
    patterns = np.logical_xor(hits, flips).astype(np.uint8)

    silent = ~patterns.reshape(len(patterns), -1).any(axis=1)
    patterns[silent, 0, INSTRUMENTS.index("kick")] = 1
    return patterns
