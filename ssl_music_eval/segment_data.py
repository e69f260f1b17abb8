"""Datasets with known section boundaries, for the segmentation task: every loader returns an
:class:`~ssl_music_eval.datasets.EvalDataset` whose items carry ``labels["boundaries"]`` (sorted times in seconds,
from the start of the first to the end of the last section) and one task, ``boundaries`` (kind segmentation).

- SALAMI (Smith et al. 2011): ``annotations/<id>/parsed/textfile{1,2}_{uppercase,lowercase,functions}.txt``
  of the public annotation repository (salami-data-public), audio files the user holds, found by id
  (``<id>.mp3`` anywhere under the audio folder, or ``<id>/<any audio file>``).
- Harmonix Set (Nieto et al. 2019): ``segments/<id>.txt`` (``dataset/segments`` of its repository), audio
  ``<id>.<ext>`` anywhere under the audio folder.
- concatenated clips: a labelled folder's clips (any CSV manifest with a ``path`` column, e.g. the dev set)
  cut to random lengths and joined into long tracks, so the joins are boundaries known exactly -- the usual
  check when no annotated set is at hand. The tracks are written once (FLAC) and reused.

Both annotation formats are one ``<time> <label>`` line per boundary (tab or spaces), the last line the end.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ssl_music_eval.datasets import EvalDataset, Item
from ssl_music.data.files import audio_files, read_csv, resolve
from ssl_music.errors import AudioError, SSLMusicError

SALAMI_LEVELS = ("uppercase", "lowercase", "functions")
TASK = {"boundaries": "segmentation"}


def read_boundary_file(path: str | Path) -> list[float]:
    """Times of a ``<time> <label>`` annotation (one line each; blank and ``#`` lines ignored), sorted, unique."""
    times = set()
    for n, line in enumerate(Path(path).read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            times.add(round(float(line.split()[0]), 6))
        except ValueError:
            raise SSLMusicError(f"{path}:{n}: expected '<time in seconds> <label>', got '{line}'") from None
    if len(times) < 2:
        raise SSLMusicError(f"{path}: fewer than two boundary times")
    return sorted(times)


def _audio_index(folder: Path) -> dict[str, Path]:
    """id -> audio file: by file stem, and by parent folder name for ``<id>/audio.mp3`` layouts."""
    index: dict[str, Path] = {}
    for p in audio_files(folder):
        index.setdefault(p.stem, p)
        index.setdefault(p.parent.name, p)
    return index


def _dataset(name: str, annotations: dict[str, Path], audio_dir: Path) -> EvalDataset:
    audio = _audio_index(audio_dir)
    items, missing = [], []
    for track, ann in sorted(annotations.items()):
        if track not in audio:
            missing.append({"path": str(audio_dir / track), "reason": f"no audio file for {track} (annotation {ann})"})
            continue
        try:
            items.append(Item(audio[track], track, {"boundaries": read_boundary_file(ann)}))
        except (SSLMusicError, OSError) as exc:
            missing.append({"path": str(ann), "reason": f"unreadable boundaries: {exc}"})
    return EvalDataset(name, items, dict(TASK), missing)


def _folder(path: str | Path, what: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise SSLMusicError(f"{what} folder not found: {p}")
    return p


def load_salami(audio_dir: str | Path, annotations_dir: str | Path, level: str = "uppercase",
                name: str = "salami") -> EvalDataset:
    """SALAMI: one track per ``<id>/parsed/`` folder under ``annotations_dir`` with annotator 1's file of
    ``level`` (uppercase = large-scale sections, lowercase = small-scale, functions), else annotator 2's."""
    if level not in SALAMI_LEVELS:
        raise SSLMusicError(f"SALAMI level must be one of {SALAMI_LEVELS}, got '{level}'")
    audio_dir, ann_dir = _folder(audio_dir, "SALAMI audio"), _folder(annotations_dir, "SALAMI annotations")
    annotations = {}
    for parsed in sorted(ann_dir.rglob("parsed")):
        files = [parsed / f"textfile{a}_{level}.txt" for a in (1, 2)]
        found = next((f for f in files if f.is_file()), None)
        if found is not None:
            annotations[parsed.parent.name] = found
    if not annotations:
        raise SSLMusicError(f"{ann_dir}: no <id>/parsed/textfile1_{level}.txt (or textfile2_) annotation files")
    return _dataset(name, annotations, audio_dir)


def load_harmonix(audio_dir: str | Path, annotations_dir: str | Path, name: str = "harmonix") -> EvalDataset:
    """Harmonix Set: ``<id>.txt`` section files in ``annotations_dir`` or its ``segments/`` sub-folder."""
    audio_dir, ann_dir = _folder(audio_dir, "Harmonix audio"), _folder(annotations_dir, "Harmonix annotations")
    seg_dir = ann_dir / "segments" if (ann_dir / "segments").is_dir() else ann_dir
    annotations = {p.stem: p for p in sorted(seg_dir.glob("*.txt"))}
    if not annotations:
        raise SSLMusicError(f"{seg_dir}: no <id>.txt segment files")
    return _dataset(name, annotations, audio_dir)


# ------------------------------------------------------------------------------------------ concatenated
FADE_S = 0.01  # a 10 ms fade at each join: no click, nothing a boundary detector could key on but the music


def load_concatenated(labels_csv: str | Path, out_dir: str | Path, clips_per_track: int = 4, tracks: int = 0,
                      min_clip_s: float = 6.0, sample_rate: int = 22050, seed: int = 0,
                      audio_root: str | Path | None = None, name: str = "concat") -> EvalDataset:
    """Join the clips of a CSV manifest (``path`` column) into tracks of ``clips_per_track`` clips.

    Clips are shuffled (``seed``); each contributes a random excerpt of ``min_clip_s`` up to its whole length,
    scaled to one RMS level (so loudness alone does not give a join away) with a 10 ms fade at both ends.
    ``tracks`` = 0 makes as many tracks as the clips allow. Tracks and ``tracks.json`` (per track: path,
    boundaries, source clips) are written to ``out_dir`` and read back while the clips and settings are unchanged.
    """
    import soundfile as sf

    from ssl_music_eval.embed import load_audio

    labels_csv = Path(labels_csv)
    _, rows = read_csv(labels_csv, what="clip manifest")
    root = Path(audio_root) if audio_root else labels_csv.parent
    paths = [resolve(r["path"], root) for r in rows]
    missing = [{"path": str(p), "reason": "audio file not found"} for p in paths if not p.is_file()]
    paths = [p for p in paths if p.is_file()]
    if clips_per_track < 2 or len(paths) < clips_per_track:
        raise SSLMusicError(f"{labels_csv}: need clips_per_track >= 2 and at least that many clips "
                            f"(clips_per_track={clips_per_track}, {len(paths)} clips found)")
    settings = {"version": 1, "clips": [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in paths],
                "clips_per_track": clips_per_track, "tracks": tracks, "min_clip_s": min_clip_s,
                "sample_rate": sample_rate, "seed": seed}
    stamp = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    out = Path(out_dir)
    index = out / "tracks.json"
    if index.is_file() and json.loads(index.read_text()).get("stamp") == stamp:
        made = json.loads(index.read_text())
        items = [Item(out / t["path"], Path(t["path"]).stem, {"boundaries": t["boundaries"]}) for t in made["tracks"]]
        return EvalDataset(name, items, dict(TASK), missing + made["missing"])
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    order = [paths[i] for i in rng.permutation(len(paths))]
    n_tracks = len(order) // clips_per_track if tracks <= 0 else min(tracks, len(order) // clips_per_track)
    made_tracks, items, pos = [], [], 0
    fade = int(FADE_S * sample_rate)
    for t in range(n_tracks):
        parts, bounds, sources = [], [0.0], []
        while len(parts) < clips_per_track and pos < len(order):
            clip, pos = order[pos], pos + 1
            try:
                x = load_audio(clip, sample_rate)
            except (AudioError, OSError, RuntimeError, ValueError) as exc:
                missing.append({"path": str(clip), "reason": f"not joined: {exc}"})
                continue
            length = min(len(x), int(rng.uniform(min_clip_s, max(min_clip_s, len(x) / sample_rate)) * sample_rate))
            start = int(rng.integers(0, len(x) - length + 1))
            x = x[start:start + length].astype(np.float64)
            x *= 0.1 / max(float(np.sqrt(np.mean(x ** 2))), 1e-6)
            ramp = np.linspace(0.0, 1.0, min(fade, len(x) // 2))
            x[: len(ramp)] *= ramp
            x[len(x) - len(ramp):] *= ramp[::-1]
            parts.append(x)
            bounds.append(round(bounds[-1] + len(x) / sample_rate, 4))
            sources.append(str(clip))
        if len(parts) < 2:
            break
        audio = np.concatenate(parts)
        audio *= min(1.0, 0.95 / max(float(np.abs(audio).max()), 1e-9))  # no clipping in the PCM16 file
        rel = f"{name}_{t:04d}.flac"
        sf.write(str(out / rel), audio.astype(np.float32), sample_rate, subtype="PCM_16")
        made_tracks.append({"path": rel, "boundaries": bounds, "sources": sources})
        items.append(Item(out / rel, Path(rel).stem, {"boundaries": bounds}))
    joined_missing = [m for m in missing if m["reason"].startswith("not joined")]
    index.write_text(json.dumps({"stamp": stamp, "settings": {k: v for k, v in settings.items() if k != "clips"},
                                 "tracks": made_tracks, "missing": joined_missing}, indent=1))
    return EvalDataset(name, items, dict(TASK), missing)
