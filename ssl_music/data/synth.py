"""A synthetic music corpus whose labels are true by construction, for tests, the demo and probes.

Every track is drums + bass + chords + melody at one tempo, in one key, played by one instrument
(timbre), with one rhythm family (style). Tracks are cut into sections of 8-16 s that change chord
progression, inversion, register and texture, so two crops close in time share more than two far
apart -- what the temporal-proximity objectives need to be measurable.

Rendering is array-based: a track is a table of note events (onset, duration, pitch, velocity); notes
of equal length are rendered together by wavetable lookup from band-limited harmonic tables, and drum
hits are one-shots convolved onto an impulse train. Per-track randomness comes from
``SeedSequence([seed, index])``, so a track does not depend on how many others are generated or on
the number of workers.
"""
from __future__ import annotations

import csv
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import oaconvolve

NOTE_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
KEYS = [f"{n}:{m}" for m in ("maj", "min") for n in NOTE_NAMES]
TEMPO_RANGE = (60.0, 200.0)
TEMPO_EDGES = np.geomspace(*TEMPO_RANGE, 7)  # 6 log-spaced classes: equal ratios, as tempo is perceived
TEMPO_CLASSES = [f"{lo:03.0f}-{hi:03.0f}" for lo, hi in zip(TEMPO_EDGES[:-1], TEMPO_EDGES[1:])]
LABEL_COLUMNS = ["path", "track_id", "tempo", "tempo_class", "key", "timbre", "style", "drums", "boundaries"]
BOUNDARY_SEP = "|"  # labels.csv `boundaries`: section starts and the track's end in seconds, "0|9.6|...|30"
P_NO_DRUMS = 0.2

_TABLE = 2048  # wavetable length; table lookup is ~10x cheaper than summing sines per harmonic
_H = 12        # harmonics per instrument profile


@dataclass(frozen=True)
class Timbre:
    harmonics: tuple      # relative amplitude of harmonic 1..len
    attack: float         # seconds
    decay: float          # seconds (time constant towards `sustain`)
    sustain: float        # level after the decay, 0 = percussive
    release: float        # seconds, fade at the note's end


def _series(f, n=_H):
    return tuple(float(f(h)) for h in range(1, n + 1))


TIMBRES = {  # spectral envelope and amplitude envelope both differ, so timbre is audible in any crop
    "organ": Timbre((1, .8, .6, .5, 0, .4, 0, .3, 0, 0, 0, .2), .005, 1.0, 1.0, .03),
    "clarinet": Timbre(_series(lambda h: 1 / h if h % 2 else .02), .04, .5, .9, .06),
    "brass": Timbre(_series(lambda h: h ** -0.5), .07, .3, .8, .08),
    "strings": Timbre(_series(lambda h: 1 / h), .15, 1.0, 1.0, .2),
    "pluck": Timbre(_series(lambda h: h ** -1.3), .002, .25, 0.0, .02),
    "marimba": Timbre((1, 0, 0, .5, 0, 0, 0, 0, 0, .15), .001, .12, 0.0, .02),
    "flute": Timbre((1, .25, .1, .04), .08, .6, .9, .08),
}
BASS = Timbre((1, .5, .2), .005, .4, .6, .03)

# Rhythm families on a 4-beat bar: positions in beats. The bass follows the kick and chord stabs follow
# "comp", so a style stays audible when a track has no drums.
STYLES = {
    "rock": {"kick": [0, 2, 2.5], "snare": [1, 3], "hat": [i / 2 for i in range(8)], "comp": [0, 1, 2, 3]},
    "disco": {"kick": [0, 1, 2, 3], "snare": [1, 3], "hat": [.5, 1.5, 2.5, 3.5], "comp": [.5, 1.5, 2.5, 3.5]},
    "halftime": {"kick": [0, 2.75], "snare": [2], "hat": [i / 4 for i in range(16)], "comp": [0, 2]},
    "shuffle": {"kick": [0, 2], "snare": [1, 3], "hat": [b + s for b in range(4) for s in (0, 2 / 3)],
                "comp": [b + s for b in range(4) for s in (0, 2 / 3)]},
    "breakbeat": {"kick": [0, .5, 2.25, 2.5], "snare": [1, 1.75, 3, 3.75], "hat": [i / 2 for i in range(8)],
                  "comp": [0, 1, 1.75, 3]},
}
_OPEN_HAT = {"disco"}  # offbeat open hats are the genre's signature

_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
_MINOR = np.array([0, 2, 3, 5, 7, 8, 10])
_PROGRESSIONS = {  # scale degrees (0 = tonic); all start on the tonic, which sounds for two chord slots
    "maj": [[0, 0, 3, 4], [0, 0, 5, 4], [0, 0, 1, 4], [0, 3, 0, 4], [0, 5, 3, 4], [0, 4, 0, 3]],
    "min": [[0, 0, 3, 4], [0, 0, 5, 4], [0, 6, 5, 4], [0, 3, 0, 4], [0, 5, 3, 4], [0, 4, 0, 3]],
}


def tempo_class(bpm: float) -> str:
    i = int(np.clip(np.searchsorted(TEMPO_EDGES, bpm, side="right") - 1, 0, len(TEMPO_CLASSES) - 1))
    return TEMPO_CLASSES[i]


def _chord_pcs(degree: int, mode: str) -> np.ndarray:
    """Triad on a scale degree, as semitones above the tonic; minor keys use the harmonic-minor V."""
    scale = _MAJOR if mode == "maj" else _MINOR
    idx = degree + np.array([0, 2, 4])
    pcs = scale[idx % 7] + 12 * (idx // 7)
    if mode == "min" and degree == 4:
        pcs[1] += 1  # raised leading tone: the V-i cadence that makes a minor key recognisable
    return pcs


# ------------------------------------------------------------------------------------------ rendering
def _tables(t: Timbre, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Band-limited wavetables: row k keeps the first k harmonics; returns (tables [H+1, T], amps)."""
    amps = np.zeros(_H)
    amps[: len(t.harmonics)] = t.harmonics
    ph = np.arange(_TABLE) / _TABLE
    partial = np.sin(2 * np.pi * np.arange(1, _H + 1)[:, None] * ph[None, :]) * amps[:, None]
    tables = np.vstack([np.zeros(_TABLE), np.cumsum(partial, axis=0)])
    return (tables / np.abs(tables).max()).astype(np.float32), amps


def _envelope(t: Timbre, n: int, sr: int) -> np.ndarray:
    s = np.arange(n, dtype=np.float32) / sr
    env = np.minimum(s / t.attack, 1.0) * (t.sustain + (1 - t.sustain) * np.exp(-s / t.decay))
    return (env * np.clip((n - np.arange(n)) / (t.release * sr), 0, 1)).astype(np.float32)


def _render_notes(out: np.ndarray, onset: np.ndarray, dur: np.ndarray, midi: np.ndarray, vel: np.ndarray,
                  timbre: Timbre, sr: int, rng: np.random.Generator) -> None:
    """Add notes into ``out``; notes of equal length share one envelope and one [n, L] lookup."""
    if len(onset) == 0:
        return
    tables, _ = _tables(timbre, sr)
    freq = 440.0 * 2.0 ** ((midi - 69) / 12)
    nharm = np.clip((0.45 * sr / freq).astype(int), 1, _H)  # no partial above 0.9 * Nyquist: no aliasing
    start = np.round(onset * sr).astype(np.int64)
    length = np.maximum(np.round(dur * sr).astype(np.int64), 1)
    phase0 = rng.random(len(onset))
    for L in np.unique(length):
        sel = np.flatnonzero(length == L)
        t = np.arange(L) / sr
        phase = (freq[sel, None] * t[None, :] + phase0[sel, None]) % 1.0
        wave = tables[nharm[sel, None], (phase * _TABLE).astype(np.int32)]
        wave *= _envelope(timbre, int(L), sr)[None, :] * vel[sel, None].astype(np.float32)
        for row, s in zip(wave, start[sel]):
            seg = out[s: s + L]
            seg += row[: len(seg)]


def _drum_kit(sr: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    t = np.arange(int(0.3 * sr)) / sr
    f0 = rng.uniform(45, 60)
    kick = np.sin(2 * np.pi * (f0 * t + (150 - f0) * 0.03 * (1 - np.exp(-t / 0.03)))) * np.exp(-t / 0.09)
    ts = t[: int(0.2 * sr)]
    noise = rng.standard_normal(len(ts))
    snare = 0.6 * np.diff(noise, prepend=0) * np.exp(-ts / 0.06) + 0.5 * np.sin(2 * np.pi * 185 * ts) * np.exp(-ts / 0.03)
    th = t[: int(0.12 * sr)]
    hiss = np.diff(rng.standard_normal(len(th)), n=2, prepend=[0, 0]) / 3  # 2nd difference: high-passed
    return {"kick": kick, "snare": snare, "hat": hiss * np.exp(-th / 0.015), "open_hat": hiss * np.exp(-th / 0.06)}


def _place(n: int, times: np.ndarray, vel: np.ndarray, sample: np.ndarray, sr: int) -> np.ndarray:
    imp = np.zeros(n)
    idx = np.round(times * sr).astype(np.int64)
    ok = idx < n
    np.add.at(imp, idx[ok], vel[ok])
    return oaconvolve(imp, sample)[:n]


def click_track(bpm: float, seconds: float, sample_rate: int = 16000, kind: str = "click") -> np.ndarray:
    """A tempo reference clip: clicks (accented downbeat) or a plain rock beat, float32 [N], peak 0.9."""
    n = int(round(seconds * sample_rate))
    beats = np.arange(0, seconds, 60.0 / bpm)
    if kind == "click":
        t = np.arange(int(0.03 * sample_rate)) / sample_rate
        out = np.zeros(n)
        for accent, freq in ((True, 1500.0), (False, 1000.0)):
            sel = (np.arange(len(beats)) % 4 == 0) == accent
            out += _place(n, beats[sel], np.ones(sel.sum()), np.sin(2 * np.pi * freq * t) * np.exp(-t / 0.008), sample_rate)
    elif kind == "drums":
        kit = _drum_kit(sample_rate, np.random.default_rng(0))
        out = np.zeros(n)
        for drum, pos in (("kick", [0, 2]), ("snare", [1, 3]), ("hat", [i / 2 for i in range(8)])):
            times = _bar_times(np.asarray(pos, float), beats[::4], 60.0 / bpm)
            out += _place(n, times, np.full(len(times), 0.7 if drum == "hat" else 1.0), kit[drum], sample_rate)
    else:
        raise ValueError(f"click_track kind must be 'click' or 'drums', got '{kind}'")
    return (0.9 * out / max(np.abs(out).max(), 1e-9)).astype(np.float32)


def _bar_times(pos: np.ndarray, bar_starts: np.ndarray, beat: float) -> np.ndarray:
    return (bar_starts[:, None] + pos[None, :] * beat).ravel()


# ---------------------------------------------------------------------------------------- one track
def _sections(rng, seconds: float, bar: float, mode: str) -> list[dict]:
    """Consecutive sections of whole bars, each differing from the last in harmony and texture."""
    sections, t, prev = [], 0.0, None
    while t < seconds - 1e-9:
        bars = max(1, int(round(rng.uniform(8, 16) / bar)))
        while True:
            sec = {"start": t, "bars": bars, "prog": int(rng.integers(len(_PROGRESSIONS[mode]))),
                   "inversion": int(rng.integers(3)), "register": int(rng.integers(-1, 2)),
                   "chords": str(rng.choice(["pad", "stabs"])), "melody": int(rng.choice([0, 1, 2, 4])),
                   "drums": str(rng.choice(["full", "light"])), "harmonic_rhythm": int(rng.choice([1, 2]))}
            if prev is None or (sec["prog"], sec["chords"], sec["melody"]) != (prev["prog"], prev["chords"], prev["melody"]):
                break
        sections.append(sec)
        prev, t = sec, t + bars * bar
    return sections


def render_track(index: int, seconds: float, seed: int, sample_rate: int = 16000) -> tuple[np.ndarray, dict]:
    """One track: (float32 [N] peak-normalised, labels dict incl. its sections)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    sr, n = sample_rate, int(round(seconds * sample_rate))
    bpm = float(np.exp(rng.uniform(*np.log(TEMPO_RANGE))))
    tonic, mode = int(rng.integers(12)), str(rng.choice(["maj", "min"]))
    timbre_name = str(rng.choice(list(TIMBRES)))
    style_name = str(rng.choice(list(STYLES)))
    has_drums = int(rng.random() >= P_NO_DRUMS)
    beat, style = 60.0 / bpm, STYLES[style_name]
    bar = 4 * beat
    secs = _sections(rng, seconds, bar, mode)
    ev = {k: {"on": [], "dur": [], "midi": [], "vel": []} for k in ("chord", "melody", "bass")}
    drum_hits = {k: ([], []) for k in ("kick", "snare", "hat", "open_hat")}
    scale = _MAJOR if mode == "maj" else _MINOR

    def add(layer, on, dur, midi, vel):
        e = ev[layer]
        e["on"].append(np.asarray(on, float)), e["dur"].append(np.asarray(dur, float))
        e["midi"].append(np.asarray(midi, float)), e["vel"].append(np.asarray(vel, float))

    for sec in secs:
        bar_starts = sec["start"] + bar * np.arange(sec["bars"])
        prog = _PROGRESSIONS[mode][sec["prog"]]
        chord_of_bar = [prog[(b // sec["harmonic_rhythm"]) % len(prog)] for b in range(sec["bars"])]
        base = 48 + tonic + 12 * sec["register"] + (12 if tonic < 6 else 0)
        stabs = sec["chords"] == "stabs" or not has_drums  # without drums the comping carries the beat
        comp = np.asarray(style["comp"] if stabs else [0.0])
        for b, (b0, deg) in enumerate(zip(bar_starts, chord_of_bar)):
            pcs = _chord_pcs(deg, mode)
            voicing = np.sort(pcs + 12 * (np.arange(3) < sec["inversion"])) + base
            gaps = np.diff(np.append(comp, 4.0)) * beat
            on = np.repeat(b0 + comp * beat, 3)
            add("chord", on, np.repeat(gaps * (0.6 if stabs else 1.0), 3), np.tile(voicing, len(comp)),
                np.full(len(on), 0.5 if stabs else 0.35))
            kick = np.asarray(style["kick"] if has_drums else sorted(set(style["kick"]) | {0, 1, 2, 3}))
            kgaps = np.diff(np.append(kick, 4.0)) * beat
            add("bass", b0 + kick * beat, kgaps * 0.9, np.full(len(kick), 36 + (tonic + pcs[0]) % 12), np.full(len(kick), 0.8))
        if sec["melody"] or not has_drums:
            per_beat = max(sec["melody"], 1)
            steps = np.arange(sec["bars"] * 4 * per_beat) / per_beat
            walk = np.cumsum(rng.choice([-2, -1, 1, 2], size=len(steps)))
            walk = np.abs((walk + 7) % 28 - 14) - 7  # reflect into +-7 scale steps around the tonic
            deg = walk.copy()
            strong = (steps % 1 == 0)
            bar_idx = (steps // 4).astype(int)
            chord_root = np.asarray(chord_of_bar)[bar_idx]
            deg[strong] = chord_root[strong] + 2 * rng.integers(0, 3, size=strong.sum())  # chord tones on beats
            midi = 72 + tonic - 12 * (tonic >= 6) + scale[deg % 7] + 12 * (deg // 7)
            if mode == "min":
                midi = midi + ((deg % 7 == 6) & (chord_root == 4))  # leading tone over V
            keep = rng.random(len(steps)) > (0.25 if per_beat > 1 else 0.1)
            add("melody", (sec["start"] + steps * beat)[keep], np.full(keep.sum(), 0.9 * beat / per_beat),
                midi[keep], rng.uniform(0.45, 0.6, keep.sum()))
        if has_drums:
            for drum in ("kick", "snare", "hat"):
                if drum == "snare" and sec["drums"] == "light":
                    continue
                times = _bar_times(np.asarray(style[drum], float), bar_starts, beat)
                vel = np.where(np.isclose(times % beat, 0) | np.isclose(times % beat, beat), 1.0, 0.7)
                name = "open_hat" if drum == "hat" and style_name in _OPEN_HAT else drum
                drum_hits[name][0].append(times), drum_hits[name][1].append(vel * (0.6 if "hat" in name else 1.0))

    tonal = np.zeros(n, np.float32)
    for layer, timbre in (("chord", TIMBRES[timbre_name]), ("melody", TIMBRES[timbre_name]), ("bass", BASS)):
        e = {k: np.concatenate(v) if v else np.zeros(0) for k, v in ev[layer].items()}
        inside = e["on"] < seconds
        _render_notes(tonal, *(e[k][inside] for k in ("on", "dur", "midi", "vel")), timbre, sr, rng)
    out = tonal / max(np.abs(tonal).max(), 1e-9)
    if has_drums:
        kit, drums = _drum_kit(sr, rng), np.zeros(n)
        for name, (times, vels) in drum_hits.items():
            if times:
                drums += _place(n, np.concatenate(times), np.concatenate(vels), kit[name], sr)
        out = out + 0.8 * drums / max(np.abs(drums).max(), 1e-9)
    out = (rng.uniform(0.5, 0.9) * out / max(np.abs(out).max(), 1e-9)).astype(np.float32)
    labels = {"track_id": f"synth_{index:05d}", "tempo": round(bpm, 3), "tempo_class": tempo_class(bpm),
              "key": f"{NOTE_NAMES[tonic]}:{mode}", "timbre": timbre_name, "style": style_name,
              "drums": has_drums, "sections": [(round(s["start"], 3), s["bars"]) for s in secs]}
    return out, labels


# ------------------------------------------------------------------------------------------- corpus
def _write_track(job: tuple) -> dict:
    index, out_dir, seconds, seed, sr, fmt = job
    x, labels = render_track(index, seconds, seed, sr)
    rel = f"audio/{labels['track_id']}.{fmt}"
    sf.write(str(Path(out_dir) / rel), x, sr, format=fmt.upper(), subtype="PCM_16")
    return {"path": rel, **labels}


def generate_corpus(out_dir: str | Path, n_tracks: int, seconds: float, seed: int, sample_rate: int = 16000,
                    workers: int = 1, fmt: str = "flac") -> Path:
    """Write ``n_tracks`` tracks to OUT/audio/ and OUT/labels.csv (+ OUT/sections.csv); returns labels.csv.

    labels.csv carries each track's section boundaries too (``boundaries``: every section start and the
    track's end, in seconds, joined by ``|``): the reference of the segmentation task."""
    if fmt not in ("flac", "wav"):
        raise ValueError(f"fmt must be 'flac' or 'wav', got '{fmt}'")
    out = Path(out_dir)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    jobs = [(i, str(out), float(seconds), int(seed), int(sample_rate), fmt) for i in range(n_tracks)]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            rows = list(pool.map(_write_track, jobs, chunksize=4))
    else:
        rows = [_write_track(j) for j in jobs]
    sec_rows = []
    for r in rows:
        bar = 4 * 60.0 / r["tempo"]
        for j, (start, bars) in enumerate(r["sections"]):
            sec_rows.append({"track_id": r["track_id"], "section": j, "start_s": start,
                             "end_s": round(min(start + bars * bar, seconds), 3)})
        r["boundaries"] = BOUNDARY_SEP.join(f"{t:g}" for t in [s for s, _ in r["sections"]] + [round(seconds, 3)])
    labels_path = out / "labels.csv"
    _write_csv(labels_path, LABEL_COLUMNS, [{k: r[k] for k in LABEL_COLUMNS} for r in rows])
    _write_csv(out / "sections.csv", ["track_id", "section", "start_s", "end_s"], sec_rows)
    return labels_path


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)
