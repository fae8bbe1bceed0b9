"""Drum patterns as hit events and Standard MIDI Files.

A pattern is a binary grid [steps, 9] with 16 steps per bar and columns in
the order of ``provided.drum_process.INSTRUMENTS``. Each step is a sixteenth
note. The same hit events, with optional seeded humanization, feed both the
MIDI writer here and the WAV renderer in ``problem2.audio``.

    from problem2.midi_export import write_midi
    write_midi(pattern, "groove.mid", bpm=110, loops=4)
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import mido
import numpy as np

from provided.drum_process import INSTRUMENTS

STEPS_PER_BEAT = 4  # a step is a sixteenth note
DRUM_CHANNEL = 9  # General MIDI percussion is channel 10, numbered 9 by mido

# General MIDI percussion key map (GM 1 Level 1 Sound Set), in INSTRUMENTS order.
GM_DRUM_NOTES = {
    "kick": 36,  # Bass Drum 1
    "snare": 38,  # Acoustic Snare
    "hihat_closed": 42,  # Closed Hi-Hat
    "hihat_open": 46,  # Open Hi-Hat
    "tom_low": 45,  # Low Tom
    "tom_high": 50,  # High Tom
    "crash": 49,  # Crash Cymbal 1
    "ride": 51,  # Ride Cymbal 1
    "clap": 39,  # Hand Clap
}

MAX_TIMING_OFFSET_STEPS = 0.25  # humanized onsets move at most a 32nd note, so hits never swap order


class DrumHit(NamedTuple):
    """One drum hit: onset in steps from the start (float), instrument column, MIDI velocity 1-127."""

    onset_steps: float
    instrument: int
    velocity: int


def step_seconds(bpm: float) -> float:
    """Return the length of one sixteenth-note step in seconds at ``bpm`` quarter notes per minute."""
    if not np.isfinite(bpm) or bpm <= 0:
        raise ValueError(f"invalid tempo {bpm} BPM: expected a positive number of beats per minute")
    return 60.0 / bpm / STEPS_PER_BEAT


def as_pattern_grid(pattern) -> np.ndarray:
    """Validate a drum pattern and return it as a uint8 array [steps, 9] of 0/1.

    Accepts a numpy array, a torch tensor or nested lists of shape [steps, 9]
    (``steps`` >= 1, for example 16 for one bar or 16 * n for n bars) whose
    values are all 0 or 1. Probabilities or logits raise ValueError: threshold
    or sample them first.
    """
    if hasattr(pattern, "detach"):
        pattern = pattern.detach().cpu().numpy()
    grid = np.asarray(pattern)
    if grid.ndim != 2 or grid.shape[1] != len(INSTRUMENTS) or grid.shape[0] < 1:
        raise ValueError(
            f"invalid drum pattern shape {grid.shape}: expected [steps, {len(INSTRUMENTS)}] "
            f"with columns {', '.join(INSTRUMENTS)}"
        )
    if not np.isin(grid, (0, 1)).all():
        raise ValueError(
            "drum pattern values must be 0 or 1: threshold probabilities (p > 0.5) "
            "or sample them before export"
        )
    return grid.astype(np.uint8)


def pattern_to_hits(
    pattern,
    *,
    loops: int = 1,
    velocity: int = 100,
    timing_jitter_ms: float = 0.0,
    velocity_jitter: float = 0.0,
    bpm: float = 120.0,
    seed: int | None = None,
) -> list[DrumHit]:
    """List the hits of ``pattern`` played ``loops`` times, sorted by onset.

    Without jitter a hit at step s of loop k starts at ``k * steps + s``
    steps. Humanization adds, independently per hit and per loop, a Gaussian
    timing offset with standard deviation ``timing_jitter_ms`` milliseconds
    (converted to steps at ``bpm``, clipped to +-MAX_TIMING_OFFSET_STEPS and
    to onsets >= 0) and a Gaussian velocity offset with standard deviation
    ``velocity_jitter`` (MIDI velocity units, result clipped to 1-127).
    ``seed`` makes the jitter reproducible.
    """
    grid = as_pattern_grid(pattern)
    step_seconds(bpm)  # validates the tempo
    if isinstance(loops, bool) or not isinstance(loops, (int, np.integer)) or loops < 1:
        raise ValueError(f"invalid loop count {loops!r}: expected an integer >= 1")
    if not 1 <= int(velocity) <= 127:
        raise ValueError(f"invalid MIDI velocity {velocity}: expected 1-127")
    if timing_jitter_ms < 0 or velocity_jitter < 0:
        raise ValueError(
            f"jitter must be >= 0, got timing_jitter_ms={timing_jitter_ms}, velocity_jitter={velocity_jitter}"
        )

    steps, instruments = np.nonzero(grid)
    n_steps = grid.shape[0]
    onsets = (np.arange(loops)[:, None] * n_steps + steps[None, :]).astype(np.float64).ravel()
    columns = np.tile(instruments, loops)
    velocities = np.full(onsets.shape, float(velocity))

    rng = np.random.default_rng(seed)
    if timing_jitter_ms > 0:
        jitter_steps = timing_jitter_ms / 1000.0 / step_seconds(bpm)
        offsets = rng.normal(0.0, jitter_steps, size=onsets.shape)
        onsets = np.maximum(onsets + np.clip(offsets, -MAX_TIMING_OFFSET_STEPS, MAX_TIMING_OFFSET_STEPS), 0.0)
    if velocity_jitter > 0:
        velocities = velocities + rng.normal(0.0, velocity_jitter, size=velocities.shape)
    velocities = np.clip(np.rint(velocities), 1, 127).astype(int)

    order = np.lexsort((columns, onsets))
    return [DrumHit(float(onsets[i]), int(columns[i]), int(velocities[i])) for i in order]


def hits_to_midi(
    hits: list[DrumHit],
    total_steps: int,
    *,
    bpm: float = 120.0,
    ticks_per_beat: int = 480,
    note_length_steps: float = 0.5,
    track_name: str = "drums",
) -> mido.MidiFile:
    """Build a one-track MIDI file (type 0) from drum hits on the General MIDI percussion channel.

    Onsets are rounded to the nearest tick (``ticks_per_beat / 4`` ticks a
    step). Each note lasts ``note_length_steps`` steps. The track carries a
    4/4 time signature and a set_tempo for ``bpm``, and it ends exactly at
    ``total_steps`` steps, so a sequencer can loop it without a gap.
    """
    if ticks_per_beat <= 0 or ticks_per_beat % STEPS_PER_BEAT:
        raise ValueError(f"invalid ticks_per_beat {ticks_per_beat}: expected a positive multiple of 4")
    if not 0 < note_length_steps <= 1:
        raise ValueError(f"invalid note_length_steps {note_length_steps}: expected a value in (0, 1]")
    ticks_per_step = ticks_per_beat // STEPS_PER_BEAT
    end_tick = int(total_steps) * ticks_per_step
    note_ticks = max(1, round(note_length_steps * ticks_per_step))

    # Events are (absolute tick, 0 for note_off or 1 for note_on, message). At
    # equal ticks a note_off sorts first, so a retriggered note is not cut by its predecessor.
    events = []
    for hit in hits:
        note = GM_DRUM_NOTES[INSTRUMENTS[hit.instrument]]
        start = round(hit.onset_steps * ticks_per_step)
        stop = min(start + note_ticks, end_tick)
        events.append((start, 1, mido.Message("note_on", channel=DRUM_CHANNEL, note=note, velocity=hit.velocity)))
        events.append((stop, 0, mido.Message("note_off", channel=DRUM_CHANNEL, note=note, velocity=0)))
    events.sort(key=lambda event: (event[0], event[1]))

    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=track_name, time=0))
    track.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    previous_tick = 0
    for tick, _, message in events:
        track.append(message.copy(time=tick - previous_tick))
        previous_tick = tick
    track.append(mido.MetaMessage("end_of_track", time=max(end_tick - previous_tick, 0)))

    midi = mido.MidiFile(type=0, ticks_per_beat=ticks_per_beat)
    midi.tracks.append(track)
    return midi


def pattern_to_midi(
    pattern,
    *,
    bpm: float = 120.0,
    loops: int = 1,
    velocity: int = 100,
    ticks_per_beat: int = 480,
    timing_jitter_ms: float = 0.0,
    velocity_jitter: float = 0.0,
    seed: int | None = None,
) -> mido.MidiFile:
    """Convert a binary pattern [steps, 9] to a MIDI file of ``loops`` repetitions at ``bpm``.

    Without jitter, the hit at step s of loop k is a note_on at tick
    ``(k * steps + s) * ticks_per_beat / 4`` with ``velocity``. See
    ``pattern_to_hits`` for the humanization arguments.
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
    return hits_to_midi(hits, loops * grid.shape[0], bpm=bpm, ticks_per_beat=ticks_per_beat)


def write_midi(pattern, path, **kwargs) -> Path:
    """Write ``pattern`` as a Standard MIDI File to ``path`` and return the path.

    Keyword arguments are those of ``pattern_to_midi``. Missing parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pattern_to_midi(pattern, **kwargs).save(path)
    return path
