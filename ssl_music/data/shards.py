"""Build, inspect and verify WebDataset shards of FLAC segments (format: DESIGN.md section 2).

Files are decoded, resampled and encoded in parallel worker processes; the main process writes
samples in input order, so a given input list and settings always give the same shards. Each shard
records the range of inputs it holds, and ``manifest.json`` is rewritten (atomically) after every
shard with ``"complete": false`` until the end. That makes an interrupted build resumable: finished
shards whose checksum still matches are kept untouched and the build continues after their inputs.
"""
from __future__ import annotations

import json
import os
import sys
import tarfile
import tempfile
import time
from collections import deque
from contextlib import contextmanager
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Iterator

import numpy as np

from ssl_music.data.audio import check_audio, decode_bytes, decode_file, encode_flac, resample, to_mono
from ssl_music.data.files import file_sha256
from ssl_music.data.shard_inputs import file_rows, grow, inputs_sha256, list_inputs, no_audio_message
from ssl_music.errors import AudioError, ShardError

__all__ = ["build_shards", "inspect_shards", "verify_shards", "read_manifest", "list_inputs", "MANIFEST", "FORMAT"]

FORMAT = "ssl_music.shards/1"
MANIFEST = "manifest.json"
JSON_FIELDS = ("track_id", "segment", "offset_s", "duration_s", "sample_rate", "channels", "source", "labels")
_SETTINGS_THAT_SHAPE_OUTPUT = ("sample_rate", "segment_seconds", "shard_size_mb", "mono", "min_seconds", "inputs_sha256")


# --------------------------------------------------------------------------------------- one track
def process_track(job: tuple) -> dict:
    """Decode, resample, check and segment one input; runs in a worker. Never raises for bad audio.
    Returns {"item", "error"} for a file to skip, else {"item", "samples", "seconds", "notes"}."""
    item, sr, seg_s, mono, min_s = job
    notes: list[dict] = []
    try:
        with _stderr_captured() as decoder_said:  # mpg123 writes its notes to fd 2: the build reports instead
            x, sr_in = decode_file(item["path"], notes=notes)
        if mono:
            x = to_mono(x)
        elif x.shape[0] == 1:
            x = np.repeat(x, 2, axis=0)
        elif x.shape[0] != 2:
            raise AudioError(f"{item['path']}: has {x.shape[0]} channels; --no-mono supports mono and stereo")
        x = resample(x, sr_in, sr)
        check_audio(x, sr, min_s, item["path"])
    except AudioError as exc:
        return {"item": item, "error": str(exc), "decoder": "".join(decoder_said)}
    seg = int(round(seg_s * sr))
    n = x.shape[-1]
    samples = []
    for j, start in enumerate(range(0, n, seg)):
        part = x[..., start: start + seg]
        if part.shape[-1] < min_s * sr and j > 0:
            break  # a sub-minimum tail is too short to crop views from
        meta = {"track_id": item["track_id"], "segment": j, "offset_s": start / sr,
                "duration_s": part.shape[-1] / sr, "sample_rate": sr, "channels": 1 if mono else 2,
                "source": item["rel"], "labels": item["labels"]}
        samples.append({"__key__": f"{item['track_id']}__{j:04d}", "flac": encode_flac(part, sr),
                        "json": json.dumps(meta).encode()})
    return {"item": item, "samples": samples, "seconds": n / sr, "notes": notes, "decoder": "".join(decoder_said)}


@contextmanager
def _stderr_captured() -> Iterator[list[str]]:
    """What C libraries write to file descriptor 2 meanwhile, instead of the terminal. Only for the shard
    build's decode, which runs alone in its process (a worker, or the main process between tracks)."""
    said: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield said
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            said.append(tmp.read().decode("utf-8", "replace"))


def _ordered_map(fn, jobs: list, workers: int) -> Iterator[dict]:
    """Results in job order with at most 4 x workers in flight, so memory stays bounded."""
    if workers <= 1:
        yield from map(fn, jobs)
        return
    with ProcessPoolExecutor(workers) as pool:
        pending: deque = deque()
        it = iter(jobs)
        for job in it:
            pending.append(pool.submit(fn, job))
            if len(pending) >= 4 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


# -------------------------------------------------------------------------------------------- build
def _write_json_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def _say(msg: str) -> None:
    from tqdm import tqdm

    tqdm.write(msg, file=sys.stderr)


def _warn(msg: str) -> None:
    _say(f"warning: {msg}")


def _old_manifest(out: Path) -> dict | None:
    path = out / MANIFEST
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ShardError(f"{path}: existing manifest is unreadable ({exc}); use a new --out or delete it") from None


def _resume_point(out: Path, old: dict | None, settings: dict) -> tuple[list[dict], list[dict], list[dict], int]:
    """Shards of a previous run that are still intact, their skipped inputs and notes, and the next input index."""
    if old is None:
        return [], [], [], 0
    diff = [f"{k}: {old.get('settings', {}).get(k)!r} -> {settings[k]!r}" for k in _SETTINGS_THAT_SHAPE_OUTPUT
            if old.get("settings", {}).get(k) != settings[k]]
    if diff:
        raise ShardError(f"{out} holds shards built with different settings ({'; '.join(diff)}); "
                         "use a new --out or delete the folder")
    kept = []
    for s in old.get("shards", []):
        f = out / s["name"]
        if not f.is_file() or file_sha256(f) != s["sha256"]:
            _warn(f"{f}: missing or checksum mismatch; rebuilding from here")
            break
        kept.append(s)
    next_input = kept[-1]["inputs"][1] if kept else 0
    skipped = [s for s in old.get("skipped", []) if s.get("index", 0) < next_input]
    notes = [n for n in old.get("notes", []) if n.get("index", 0) < next_input]
    return kept, skipped, notes, next_input


def _no_samples(m: dict, out: Path) -> str:
    skipped = m.get("skipped", [])
    shown = "; ".join(f"{Path(s['path']).name}: {s['reason']}" for s in skipped[:3])
    more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    return (f"{out}: the build wrote 0 samples: {len(skipped)} input(s) skipped ({shown}{more}); "
            f"every reason is listed by `ssl-music shards inspect {out}`")


def build_shards(inputs, out_dir: str | Path, sample_rate: int = 16000, segment_seconds: float = 60,
                 shard_size_mb: float = 256, workers: int = 1, mono: bool = True, min_seconds: float = 1.0,
                 progress: bool = True) -> dict:
    """Shard every usable input under ``out_dir``; returns the manifest (also written to manifest.json).

    ``manifest["skipped"]`` lists the inputs left out, with the reason; ``manifest["notes"]`` lists inputs
    kept despite something worth knowing, e.g. kind "length_mismatch": a lossy file that decodes a little
    shorter than its header declares (header_frames, decoded_frames, seconds_short). An interrupted build
    resumes; a finished one is left as it is, or grows by the files added to its inputs since
    (``shard_inputs.grow``). ShardError when no sample could be written, naming why."""
    from tqdm import tqdm
    import webdataset as wds  # lazy: keeps worker start-up and `--help` light

    if sample_rate <= 0 or segment_seconds <= 0 or shard_size_mb <= 0:
        raise ShardError("sample_rate, segment_seconds and shard_size_mb must all be > 0")
    items = list_inputs(inputs)
    if not items:
        raise ShardError(no_audio_message(inputs))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"inputs": [str(Path(i).resolve()) for i in ([inputs] if isinstance(inputs, (str, Path)) else inputs)],
                "sample_rate": int(sample_rate), "segment_seconds": float(segment_seconds),
                "shard_size_mb": float(shard_size_mb), "mono": bool(mono), "min_seconds": float(min_seconds)}
    old = _old_manifest(out)
    added = len(items)
    if old is not None and "files" in old:
        items, added = grow(old["files"], items, out)
        settings["inputs_sha256"] = inputs_sha256(items)
        old.setdefault("settings", {})["inputs_sha256"] = settings["inputs_sha256"]  # compared file by file above
    else:
        settings["inputs_sha256"] = inputs_sha256(items)
    shards, skipped, notes, start = _resume_point(out, old, settings)
    if old is not None and old.get("complete") and not added and len(shards) == len(old.get("shards", [])):
        if not old.get("total_samples"):
            raise ShardError(_no_samples(old, out))
        _say(f"{out}: already complete ({len(shards)} shards, {old['total_samples']} samples), nothing to do; "
             "files added to its inputs since are sharded by re-running this command")
        return old
    for tmp in out.glob("*.tmp"):
        tmp.unlink()  # left by an interrupted run
    manifest = {"format": FORMAT, "sample_rate": int(sample_rate), "channels": 1 if mono else 2,
                "settings": settings, "shards": shards, "skipped": skipped, "notes": notes, "complete": False,
                "files": file_rows(items)}

    def save(complete: bool) -> None:
        manifest["complete"] = complete
        manifest["total_samples"] = sum(s["samples"] for s in shards)
        manifest["total_hours"] = sum(s["hours"] for s in shards)
        _write_json_atomic(out / MANIFEST, manifest)

    limit = shard_size_mb * 2 ** 20
    state = {"writer": None, "tmp": None, "samples": 0, "seconds": 0.0, "bytes": 0, "first": start}

    def close(end_input: int) -> None:
        if state["writer"] is None:
            return
        state["writer"].close()
        name = f"shard-{len(shards):06d}.tar"
        os.replace(state["tmp"], out / name)
        shards.append({"name": name, "samples": state["samples"], "hours": state["seconds"] / 3600,
                       "sha256": file_sha256(out / name), "inputs": [state["first"], end_input]})
        state.update(writer=None, samples=0, seconds=0.0, bytes=0, first=end_input)
        save(False)

    jobs = [(it, int(sample_rate), float(segment_seconds), bool(mono), float(min_seconds)) for it in items[start:]]
    t0, decoded_s = time.perf_counter(), 0.0
    bar = tqdm(total=len(items), initial=start, unit="file", desc="shards", disable=not progress)
    for index, res in enumerate(_ordered_map(process_track, jobs, workers), start=start):
        bar.update(1)
        if res["decoder"].strip() and progress:
            _say(f"decoder notes on {res['item']['path']}: {' | '.join(res['decoder'].strip().splitlines()[:3])}")
        if "error" in res:
            reason = res["error"].removeprefix(res["item"]["path"] + ": ")
            skipped.append({"path": res["item"]["path"], "reason": reason, "index": index})
            _warn(f"skipped {res['item']['path']}: {reason}")
            continue
        notes += [{"path": res["item"]["path"], "index": index, **n} for n in res["notes"]]
        decoded_s += res["seconds"]
        size = sum(len(s["flac"]) + len(s["json"]) + 1536 for s in res["samples"])  # + tar headers
        if state["writer"] is not None and state["bytes"] + size > limit:
            close(index)
        if state["writer"] is None:
            state["tmp"] = out / f"shard-{len(shards):06d}.tar.tmp"
            state["writer"] = wds.TarWriter(str(state["tmp"]), mtime=0)  # byte-reproducible shards
        for s in res["samples"]:
            state["writer"].write(s)
        state["samples"] += len(res["samples"])
        state["seconds"] += sum(json.loads(s["json"])["duration_s"] for s in res["samples"])
        state["bytes"] += size
    bar.close()
    close(len(items))
    if shards:
        shards[-1]["inputs"][1] = len(items)  # skipped inputs after the last track belong to it
    manifest["last_build"] = throughput(decoded_s / 3600, time.perf_counter() - t0, workers)
    save(True)
    if progress:
        _say(describe_throughput(manifest["last_build"]))
    if not manifest["total_samples"]:
        raise ShardError(_no_samples(manifest, out))
    return manifest


def throughput(hours: float, seconds: float, workers: int) -> dict:
    """What one build (or resumed part of one) did: audio hours sharded per wall minute, in all and per worker."""
    rate = hours / (seconds / 60) if seconds > 0 else 0.0
    return {"hours": round(hours, 6), "seconds": round(seconds, 2), "workers": int(max(1, workers)),
            "hours_per_min": round(rate, 3), "hours_per_min_per_worker": round(rate / max(1, workers), 3)}


def describe_throughput(t: dict) -> str:
    return (f"sharded {t['hours']:.3f} h of audio in {t['seconds']:.1f} s: {t['hours_per_min']:.2f} h of audio per "
            f"minute, {t['hours_per_min_per_worker']:.2f} per worker ({t['workers']} worker(s))")


# ---------------------------------------------------------------------------------- read / inspect
def read_manifest(shard_dir: str | Path) -> dict:
    """The manifest of a finished build; ShardError naming the path when missing, malformed or partial."""
    path = Path(shard_dir) / MANIFEST
    if not path.is_file():
        raise ShardError(f"{path}: no manifest (build shards with `ssl-music shards build INPUT --out {shard_dir}`)")
    try:
        m = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ShardError(f"{path}: malformed manifest ({exc})") from None
    missing = [k for k in ("format", "sample_rate", "shards") if not isinstance(m, dict) or k not in m]
    if missing:
        raise ShardError(f"{path}: malformed manifest, missing {', '.join(missing)}")
    if m["format"] != FORMAT:
        raise ShardError(f"{path}: unsupported format '{m['format']}' (expected '{FORMAT}')")
    if not m.get("complete", True):
        raise ShardError(f"{path}: the build did not finish; re-run `ssl-music shards build` to resume it")
    return m


def inspect_shards(shard_dir: str | Path) -> str:
    m = read_manifest(shard_dir)
    label_cols: set[str] = set()
    first = [s for s in m["shards"] if s["samples"] > 0][:1]
    for sample in _iter_samples(Path(shard_dir) / first[0]["name"]) if first else ():
        label_cols |= set(json.loads(sample.get("json", b"{}")).get("labels", {}))
    lines = [f"shards:       {len(m['shards'])} in {shard_dir}",
             f"samples:      {m.get('total_samples', sum(s['samples'] for s in m['shards']))}",
             f"hours:        {m.get('total_hours', sum(s['hours'] for s in m['shards'])):.3f}",
             f"sample rate:  {m['sample_rate']} Hz, channels: {m.get('channels', 1)}",
             f"labels:       {', '.join(sorted(label_cols)) or '(none)'}",
             f"skipped:      {len(m.get('skipped', []))} file(s)"]
    lines += [f"  {s['path']}: {s['reason']}" for s in m.get("skipped", [])[:10]]
    notes = m.get("notes", [])
    lines.append(f"notes:        {len(notes)} file(s) kept with a note")
    lines += [f"  {n['path']}: {_describe_note(n)}" for n in notes[:10]]
    if len(notes) > 10:
        lines.append(f"  ... {len(notes) - 10} more in {Path(shard_dir) / MANIFEST}")
    return "\n".join(lines)


def _describe_note(n: dict) -> str:
    if n.get("kind") == "length_mismatch":
        return (f"length_mismatch: {n.get('format', '?')} header declares {n['header_frames']} frames, decoded "
                f"{n['decoded_frames']} ({1000 * n['seconds_short']:.1f} ms short)")
    return ", ".join(f"{k}={v}" for k, v in n.items() if k not in ("path", "index"))


def _iter_samples(path: Path) -> Iterator[dict]:
    """Samples of a tar, grouped by key as WebDataset does; values are raw bytes."""
    cur: dict = {}
    with tarfile.open(path) as tf:
        for member in tf:
            if not member.isfile():
                continue
            key, _, ext = member.name.partition(".")
            if cur and cur["__key__"] != key:
                yield cur
                cur = {}
            cur["__key__"] = key
            cur[ext] = tf.extractfile(member).read()
    if cur:
        yield cur


def verify_shards(shard_dir: str | Path) -> list[str]:
    """Every problem found: checksums, sample counts, decodable FLAC, JSON fields, sample rates."""
    try:
        m = read_manifest(shard_dir)
    except ShardError as exc:
        return [str(exc)]
    problems, root = [], Path(shard_dir)
    if not sum(s["samples"] for s in m["shards"]):
        problems.append(f"{Path(shard_dir) / MANIFEST}: no samples: every input was skipped "
                        f"(`ssl-music shards inspect {shard_dir}` lists why)")
    for s in m["shards"]:
        path = root / s["name"]
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        if file_sha256(path) != s.get("sha256"):
            problems.append(f"{path}: sha256 mismatch with manifest")
        try:
            count = sum(1 for _ in _check_samples(path, m, problems))
        except (tarfile.TarError, OSError, EOFError) as exc:
            problems.append(f"{path}: unreadable tar ({exc})")
            continue
        if count != s["samples"]:
            problems.append(f"{path}: {count} samples, manifest says {s['samples']}")
    return problems


def _check_samples(path: Path, m: dict, problems: list[str]) -> Iterator[str]:
    for sample in _iter_samples(path):
        where = f"{path}:{sample['__key__']}"
        yield where
        try:
            meta = json.loads(sample["json"])
        except (KeyError, json.JSONDecodeError):
            problems.append(f"{where}: missing or malformed json")
            continue
        lacking = [f for f in JSON_FIELDS if f not in meta]
        if lacking:
            problems.append(f"{where}: json lacks {', '.join(lacking)}")
        if "flac" not in sample:
            problems.append(f"{where}: no flac")
            continue
        try:
            x, sr = decode_bytes(sample["flac"], mono=False, name=where)
        except AudioError as exc:
            problems.append(str(exc))
            continue
        if sr != m["sample_rate"] or meta.get("sample_rate") != m["sample_rate"]:
            problems.append(f"{where}: sample rate {sr} (json {meta.get('sample_rate')}), manifest {m['sample_rate']}")
        if abs(x.shape[-1] / sr - float(meta.get("duration_s", -1))) > 1.0 / sr:
            problems.append(f"{where}: decodes to {x.shape[-1] / sr:.3f} s, json says {meta.get('duration_s')}")
