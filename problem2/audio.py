"""Render drum patterns to audio with synthesised drum voices (numpy, scipy and the ``wave`` module).

Every instrument is synthesised, so no samples are downloaded. The kick and
the toms are pitch-swept sines, and the snare is a tone plus band-passed
noise. The hi-hats and the crash are high-passed noise with short or long
decays, the ride adds inharmonic partials to noise, and the clap is a few
noise bursts. Noise is drawn from a seeded generator, so a render is repeatable.

    from problem2.audio import write_wav
    write_wav(pattern, "groove.wav", bpm=110, loops=4)
"""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
from scipy import signal

from problem2.midi_export import DrumHit, as_pattern_grid, pattern_to_hits, step_seconds
from provided.drum_process import INSTRUMENTS

DEFAULT_SAMPLE_RATE = 44100  # Hz
MIN_SAMPLE_RATE = 8000  # Hz, because the snare and clap bands need content up to about 3.5 kHz
DEFAULT_TAIL_SECONDS = 1.0  # silence added after the last step so the final cymbals ring out
MASTER_GAIN = 0.6  # mix level in front of the tanh soft limiter


def _envelope(sample_rate: int, seconds: float, decay_seconds: float) -> np.ndarray:
    """Exponential decay exp(-t / decay) sampled over ``seconds``."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return np.exp(-t / decay_seconds)


def _swept_sine(sample_rate: int, seconds: float, start_hz: float, end_hz: float, sweep_seconds: float) -> np.ndarray:
    """Sine whose frequency falls exponentially from ``start_hz`` towards ``end_hz``."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    frequency = end_hz + (start_hz - end_hz) * np.exp(-t / sweep_seconds)
    phase = 2.0 * np.pi * np.cumsum(frequency) / sample_rate
    return np.sin(phase)


def _filtered_noise(rng, sample_rate: int, seconds: float, band_hz, kind: str) -> np.ndarray:
    """White noise through a 4th-order Butterworth filter (``kind`` "highpass" or "bandpass").

    Cut-off frequencies above 0.45 * sample_rate are lowered to it, so low
    sample rates keep a valid filter (with a duller sound).
    """
    noise = rng.uniform(-1.0, 1.0, int(seconds * sample_rate))
    band_hz = np.minimum(band_hz, 0.45 * sample_rate)
    sos = signal.butter(4, band_hz, btype=kind, fs=sample_rate, output="sos")
    return signal.sosfilt(sos, noise)


def _normalise(voice: np.ndarray) -> np.ndarray:
    return voice / np.max(np.abs(voice))


def synthesize_voice(instrument: str, sample_rate: int = DEFAULT_SAMPLE_RATE, seed: int = 0) -> np.ndarray:
    """Return one hit of ``instrument`` at full velocity, float64 mono with peak amplitude 1.

    ``instrument`` is one of ``provided.drum_process.INSTRUMENTS``. ``seed``
    fixes the noise, so equal arguments return equal arrays.
    """
    if instrument not in INSTRUMENTS:
        raise ValueError(f"unknown instrument {instrument!r}: expected one of {', '.join(INSTRUMENTS)}")
    if sample_rate < MIN_SAMPLE_RATE:
        raise ValueError(f"invalid sample rate {sample_rate} Hz: expected at least {MIN_SAMPLE_RATE} Hz")
    rng = np.random.default_rng(seed)
    sr = sample_rate

    if instrument == "kick":
        body = _swept_sine(sr, 0.45, 150.0, 48.0, 0.04) * _envelope(sr, 0.45, 0.18)
        click = _filtered_noise(rng, sr, 0.45, (1500.0, 5000.0), "bandpass") * _envelope(sr, 0.45, 0.004)
        voice = body + 0.3 * _normalise(click)
    elif instrument == "snare":
        tone = (np.sin(2 * np.pi * 185.0 * np.arange(int(0.3 * sr)) / sr)
                + 0.5 * np.sin(2 * np.pi * 330.0 * np.arange(int(0.3 * sr)) / sr)) * _envelope(sr, 0.3, 0.05)
        rattle = _normalise(_filtered_noise(rng, sr, 0.3, (1200.0, 9000.0), "bandpass")) * _envelope(sr, 0.3, 0.08)
        voice = 0.5 * tone + rattle
    elif instrument == "hihat_closed":
        voice = _filtered_noise(rng, sr, 0.1, 7000.0, "highpass") * _envelope(sr, 0.1, 0.018)
    elif instrument == "hihat_open":
        voice = _filtered_noise(rng, sr, 0.6, 6500.0, "highpass") * _envelope(sr, 0.6, 0.16)
    elif instrument in ("tom_low", "tom_high"):
        start_hz, end_hz = (130.0, 95.0) if instrument == "tom_low" else (240.0, 180.0)
        body = _swept_sine(sr, 0.5, start_hz, end_hz, 0.08) * _envelope(sr, 0.5, 0.16)
        skin = _normalise(_filtered_noise(rng, sr, 0.5, (300.0, 3000.0), "bandpass")) * _envelope(sr, 0.5, 0.02)
        voice = body + 0.2 * skin
    elif instrument == "crash":
        voice = _filtered_noise(rng, sr, 1.6, 4000.0, "highpass") * _envelope(sr, 1.6, 0.45)
    elif instrument == "ride":
        t = np.arange(int(1.0 * sr)) / sr
        # Inharmonic partials give the bell-like ping of a ride cymbal.
        partials = sum(np.sign(np.sin(2 * np.pi * f * t)) for f in (540.0, 800.0, 1170.0, 1690.0))
        ping = _normalise(_filtered_noise(rng, sr, 1.0, 6000.0, "highpass") + 0.05 * partials)
        voice = ping * _envelope(sr, 1.0, 0.3)
    else:  # clap: three quick bursts, then a longer decay
        length = int(0.35 * sr)
        noise = _normalise(_filtered_noise(rng, sr, 0.35, (900.0, 3500.0), "bandpass"))
        envelope = np.zeros(length)
        for burst_start in (0.0, 0.011, 0.022):
            offset = int(burst_start * sr)
            envelope[offset:] += _envelope(sr, 0.35, 0.006)[: length - offset]
        tail_start = int(0.033 * sr)
        envelope[tail_start:] += _envelope(sr, 0.35, 0.07)[: length - tail_start]
        voice = noise * envelope

    return _normalise(voice)


# Mix level of each instrument relative to the kick.
INSTRUMENT_GAINS = {
    "kick": 1.0,
    "snare": 0.8,
    "hihat_closed": 0.35,
    "hihat_open": 0.35,
    "tom_low": 0.75,
    "tom_high": 0.7,
    "crash": 0.45,
    "ride": 0.3,
    "clap": 0.6,
}


def render_hits(
    hits: list[DrumHit],
    total_steps: int,
    *,
    bpm: float = 120.0,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    tail_seconds: float = DEFAULT_TAIL_SECONDS,
    seed: int = 0,
) -> np.ndarray:
    """Mix drum hits into a mono float signal in (-1, 1), float64 [n_frames].

    ``n_frames = round(total_steps * 60 / bpm / 4 * sample_rate) + round(tail_seconds * sample_rate)``.
    A hit's voice is scaled by velocity / 127 and its instrument gain. Sound
    that would run past the end is cut. The mix goes through tanh, a soft
    limiter, so dense patterns do not clip.
    """
    if sample_rate < MIN_SAMPLE_RATE:
        raise ValueError(f"invalid sample rate {sample_rate} Hz: expected at least {MIN_SAMPLE_RATE} Hz")
    if tail_seconds < 0:
        raise ValueError(f"invalid tail {tail_seconds} s: expected a value >= 0")
    seconds_per_step = step_seconds(bpm)
    n_frames = round(total_steps * seconds_per_step * sample_rate) + round(tail_seconds * sample_rate)
    mix = np.zeros(n_frames)

    voices = {}
    for hit in hits:
        name = INSTRUMENTS[hit.instrument]
        if name not in voices:
            voices[name] = synthesize_voice(name, sample_rate, seed=seed + hit.instrument)
        voice = voices[name] * INSTRUMENT_GAINS[name] * hit.velocity / 127.0
        start = round(hit.onset_steps * seconds_per_step * sample_rate)
        if start >= n_frames:
            continue
        stop = min(start + len(voice), n_frames)
        mix[start:stop] += voice[: stop - start]

    return np.tanh(MASTER_GAIN * mix)


def render_pattern(
    pattern,
    *,
    bpm: float = 120.0,
    loops: int = 1,
    velocity: int = 100,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    tail_seconds: float = DEFAULT_TAIL_SECONDS,
    timing_jitter_ms: float = 0.0,
    velocity_jitter: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """Render a binary pattern [steps, 9] played ``loops`` times at ``bpm`` as mono float64 in (-1, 1).

    The signal lasts ``loops * steps * 60 / bpm / 4`` seconds plus
    ``tail_seconds``. Humanization (timing jitter in milliseconds, velocity
    jitter in MIDI units) follows ``problem2.midi_export.pattern_to_hits``.
    ``seed`` fixes both the jitter and the synthesised noise.
    """
    grid = as_pattern_grid(pattern)
    hits = pattern_to_hits(
        grid,
        loops=loops,
        velocity=velocity,
        timing_jitter_ms=timing_jitter_ms,
        velocity_jitter=velocity_jitter,
        bpm=bpm,
        seed=seed,
    )
    return render_hits(
        hits, loops * grid.shape[0], bpm=bpm, sample_rate=sample_rate, tail_seconds=tail_seconds, seed=seed
    )


def write_wav_samples(samples: np.ndarray, path, sample_rate: int = DEFAULT_SAMPLE_RATE) -> Path:
    """Write mono float samples in [-1, 1] as a 16-bit PCM WAV file and return the path."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 1:
        raise ValueError(f"invalid samples shape {samples.shape}: expected mono [n_frames]")
    pcm = np.clip(np.rint(samples * 32767.0), -32768, 32767).astype("<i2")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.writeframes(pcm.tobytes())
    return path


def write_wav(pattern, path, *, sample_rate: int = DEFAULT_SAMPLE_RATE, **kwargs) -> Path:
    """Render ``pattern`` (see ``render_pattern`` for the keyword arguments) to a 16-bit mono WAV file."""
    samples = render_pattern(pattern, sample_rate=sample_rate, **kwargs)
    return write_wav_samples(samples, path, sample_rate)
