"""MIDI export and WAV rendering of drum patterns: files parse back with mido and wave."""
import wave

import mido
import numpy as np
import pytest

from problem2.audio import render_pattern, synthesize_voice, write_wav
from problem2.midi_export import GM_DRUM_NOTES, pattern_to_hits, pattern_to_midi, write_midi
from provided.drum_process import INSTRUMENTS

KICK, SNARE, HAT = 0, 1, 2


def simple_pattern():
    """Kick on 0 and 8, snare on 4 and 12, closed hi-hat on every even step: 12 hits."""
    pattern = np.zeros((16, 9), dtype=np.uint8)
    pattern[[0, 8], KICK] = 1
    pattern[[4, 12], SNARE] = 1
    pattern[0:16:2, HAT] = 1
    return pattern


def note_ons(midi_file):
    """Return (absolute tick, channel, note, velocity) of every note_on with velocity > 0."""
    events = []
    tick = 0
    for message in midi_file.tracks[0]:
        tick += message.time
        if message.type == "note_on" and message.velocity > 0:
            events.append((tick, message.channel, message.note, message.velocity))
    return events


def test_gm_map_matches_general_midi():
    expected = {"kick": 36, "snare": 38, "hihat_closed": 42, "hihat_open": 46, "tom_low": 45,
                "tom_high": 50, "crash": 49, "ride": 51, "clap": 39}
    assert GM_DRUM_NOTES == expected


def test_midi_notes_at_sixteenth_ticks(tmp_path):
    path = write_midi(simple_pattern(), tmp_path / "beat.mid", bpm=110, loops=1, velocity=90)
    events = note_ons(mido.MidiFile(path))
    expected = sorted(
        [(0, 9, 36, 90), (960, 9, 36, 90), (480, 9, 38, 90), (1440, 9, 38, 90)]
        + [(step * 120, 9, 42, 90) for step in range(0, 16, 2)]
    )
    assert sorted(events) == expected


def test_midi_tempo_and_resolution(tmp_path):
    midi_file = mido.MidiFile(write_midi(simple_pattern(), tmp_path / "beat.mid", bpm=110))
    tempos = [m.tempo for m in midi_file.tracks[0] if m.type == "set_tempo"]
    assert midi_file.ticks_per_beat == 480
    assert tempos == [mido.bpm2tempo(110)]


def test_midi_loops_repeat_and_length(tmp_path):
    midi_file = mido.MidiFile(write_midi(simple_pattern(), tmp_path / "beat.mid", bpm=120, loops=3))
    kick_ticks = [tick for tick, _, note, _ in note_ons(midi_file) if note == 36]
    assert kick_ticks == [0, 960, 1920, 2880, 3840, 4800]
    # 3 bars of 4 beats at 120 BPM: 6 s, and the track ends exactly on the bar line.
    assert midi_file.length == pytest.approx(6.0)


def test_midi_every_instrument_note(tmp_path):
    pattern = np.zeros((16, 9), dtype=np.uint8)
    for column in range(9):
        pattern[column, column] = 1
    events = note_ons(mido.MidiFile(write_midi(pattern, tmp_path / "all.mid")))
    notes = [note for _, _, note, _ in sorted(events)]
    assert notes == [GM_DRUM_NOTES[name] for name in INSTRUMENTS]


def test_midi_accepts_multi_bar_sequence():
    sequence = np.concatenate([simple_pattern(), simple_pattern()], axis=0)
    events = note_ons(pattern_to_midi(sequence))
    assert len(events) == 24


def test_humanized_midi_stays_near_grid():
    plain = sorted(note_ons(pattern_to_midi(simple_pattern(), loops=4)))
    human = sorted(note_ons(pattern_to_midi(simple_pattern(), loops=4, timing_jitter_ms=10,
                                            velocity_jitter=8, seed=3)))
    offsets = np.array([h[0] - p[0] for h, p in zip(human, plain)])
    velocities = np.array([h[3] for h in human])
    assert len(human) == len(plain)
    assert np.abs(offsets).max() <= 30  # clipped to a quarter step of 120 ticks
    assert np.count_nonzero(offsets) > len(offsets) // 2
    assert velocities.std() > 2


def test_humanization_is_seeded():
    first = pattern_to_hits(simple_pattern(), timing_jitter_ms=12, velocity_jitter=10, seed=5)
    second = pattern_to_hits(simple_pattern(), timing_jitter_ms=12, velocity_jitter=10, seed=5)
    assert first == second


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((16, 8)), "shape"),
        (np.full((16, 9), 0.4), "0 or 1"),
    ],
)
def test_export_rejects_bad_pattern(bad, message):
    with pytest.raises(ValueError, match=message):
        pattern_to_midi(bad)


def test_export_rejects_bad_tempo():
    with pytest.raises(ValueError, match="BPM"):
        pattern_to_midi(simple_pattern(), bpm=0)


def test_wav_duration_and_format(tmp_path):
    path = write_wav(simple_pattern(), tmp_path / "beat.wav", bpm=100, loops=2, sample_rate=22050,
                     tail_seconds=0.5)
    with wave.open(str(path), "rb") as handle:
        frames = handle.getnframes()
        rate = handle.getframerate()
        channels = handle.getnchannels()
        width = handle.getsampwidth()
        pcm = np.frombuffer(handle.readframes(frames), dtype="<i2")
    # 2 loops x 16 steps x (60 / 100 / 4) s = 4.8 s, plus the 0.5 s tail.
    assert frames == round(4.8 * 22050) + round(0.5 * 22050)
    assert rate == 22050
    assert channels == 1
    assert width == 2
    assert np.sqrt(np.mean(pcm.astype(float) ** 2)) > 1000  # clearly audible, not silence


def test_wav_hits_start_on_steps():
    pattern = np.zeros((16, 9), dtype=np.uint8)
    pattern[8, KICK] = 1
    audio = render_pattern(pattern, bpm=120, sample_rate=8000, tail_seconds=0.0)
    onset = np.argmax(np.abs(audio) > 0.01)
    assert len(audio) == 16000  # 16 steps x 0.125 s x 8000 Hz
    assert onset == 8000  # step 8 starts at 1.0 s


def test_wav_empty_pattern_is_silent():
    audio = render_pattern(np.zeros((16, 9), dtype=np.uint8), sample_rate=8000)
    assert np.abs(audio).max() == 0.0


@pytest.mark.parametrize("instrument", INSTRUMENTS)
def test_voice_normalised_and_deterministic(instrument):
    voice = synthesize_voice(instrument, sample_rate=22050, seed=1)
    assert np.abs(voice).max() == pytest.approx(1.0)
    assert np.array_equal(voice, synthesize_voice(instrument, sample_rate=22050, seed=1))


def test_kick_lower_than_hihat():
    def spectral_centroid(voice, rate=22050):
        magnitude = np.abs(np.fft.rfft(voice))
        return (magnitude * np.fft.rfftfreq(len(voice), 1 / rate)).sum() / magnitude.sum()

    assert spectral_centroid(synthesize_voice("kick", 22050)) < 1000
    assert spectral_centroid(synthesize_voice("hihat_closed", 22050)) > 5000
