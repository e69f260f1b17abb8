"""index build: tracks -> batches of files -> committed parts, resumable, one part of N per process.

Decoding runs ahead of the encoder on ``workers`` threads (soundfile and scipy's resampler release the
GIL), each with a queue of at most ``PREFETCH`` blocks: memory is bounded by blocks in flight, never by
a file's length. Crops of consecutive tracks are packed into encoder batches of ``ENCODE_BATCH`` rows
(``_Packer``) within one batch of files; batches are planned from the sorted track list and committed in
order, so a resumed build packs and computes exactly what an uninterrupted one does (identical bytes).
A track's embedding depends on its packing only in float rounding (a row's position in a batch changes
the last bits: measured 2e-8), so builds split differently (--part) agree to float tolerance.
"""
from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from ssl_music.catalogue.blocks import FileInfo, file_blocks, unusable
from ssl_music.catalogue.inputs import Item, list_items, split, stamp
from ssl_music.catalogue.store import (FORMAT, PART_FILE, CatalogueError, batch_meta, committed_batches, merge_index,
                                      part_dir, read_json, remove_leftovers, write_batch, write_json_atomic)
from ssl_music.data.audio import MIN_SECONDS
from ssl_music.errors import AudioError

Progress = Optional[Callable[[str], None]]
PREFETCH = 4          # decoded blocks waiting per worker
# A decoded block is read, mixed and resampled at the file's own rate: 64 crops of 3 s of 44.1 kHz stereo
# is ~150 MB of transient float32, which made a 30-minute file peak 173 MB above a 3-minute one (a single
# short block); 16 crops (~40 MB) keep it flat (measured in the README). Encoder batches stay 64 rows.
BLOCK_CROPS = 16      # crops per decoded block
ENCODE_BATCH = 64     # rows per encoder call (_Packer)


def _part_record(model, checkpoint, inp, part: int, parts: int, n_items: int) -> dict:
    # resolved: a file query run from another folder loads the checkpoint the index records
    checkpoint = Path(checkpoint).resolve() if checkpoint is not None else checkpoint
    return {"format": FORMAT, "identity": str(model.identity), "checkpoint": str(checkpoint), "input": str(inp),
            "part": part, "parts": parts, "items": n_items, "embed_dim": int(model.embed_dim),
            "sample_rate": int(model.sample_rate), "crop_s": float(model.crop_s), "complete": False}


def _check_part(folder: Path, new: dict) -> dict:
    """The part's record, written on first use; a re-run must be the same checkpoint, input and split."""
    path = folder / PART_FILE
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, new)
        return new
    old = read_json(path, "part record")
    for key in ("identity", "parts", "part", "embed_dim", "sample_rate", "crop_s"):
        if old.get(key) != new[key]:
            raise CatalogueError(f"{path}: this part was built with {key}={old.get(key)!r}, this run has {new[key]!r}; "
                              f"resume with the same checkpoint and --part, or write to another --out")
    return old


def _stream(item: Item, model, block_crops: int, out: queue.Queue, stop: threading.Event,
            min_s: float = MIN_SECONDS) -> None:
    """Put (kind, payload, seconds decoding) for one track: ("block", (source, offset_s, Block)) ..., then
    ("end", (seconds, sample rate)) or ("error", reason)."""
    try:
        seconds, peak, rate, frames = 0.0, 0.0, 0, 0
        for source, offset in item.sources:
            t0 = time.perf_counter()
            info = FileInfo()
            for block in file_blocks(source, model.sample_rate, model.crop_len, block_crops, info=info):
                out.put(("block", (source, offset, block), time.perf_counter() - t0))
                if stop.is_set():
                    return
                t0 = time.perf_counter()
            peak, rate, frames = max(peak, info.peak), info.sample_rate, frames + info.frames
            seconds += info.frames / max(info.sample_rate, 1)
        # the shard build's rule (data.audio.skip_reason), so both builds skip the same files for the same reason
        reason = unusable(FileInfo(rate, frames, peak), min_s)
        out.put(("error", f"{item.path}: {reason}", 0.0) if reason else ("end", (seconds, rate), 0.0))
    except AudioError as exc:
        out.put(("error", str(exc), 0.0))
    except (OSError, RuntimeError, ValueError, EOFError, MemoryError) as exc:
        out.put(("error", f"{item.path}: {type(exc).__name__}: {exc}", 0.0))


def _prefetch(items: list[Item], model, workers: int, block_crops: int, stop: threading.Event,
              min_s: float = MIN_SECONDS):
    """Worker w streams items w, w + workers, ...; yields (position, item, message) in item order."""
    queues = [queue.Queue(maxsize=PREFETCH) for _ in range(workers)]

    def run(w: int) -> None:
        try:
            for i in range(w, len(items), workers):
                if stop.is_set():
                    return
                _stream(items[i], model, block_crops, queues[w], stop, min_s)
        except BaseException as exc:  # not a bad file but a bug or an interrupt: the build must stop, not wait
            queues[w].put(("fatal", exc, 0.0))

    threads = [threading.Thread(target=run, args=(w,), daemon=True) for w in range(workers)]
    for t in threads:
        t.start()
    try:
        for i, item in enumerate(items):
            while True:
                msg = queues[i % workers].get()
                yield i, item, msg
                if msg[0] != "block":
                    break
    finally:
        stop.set()
        for q in queues:  # unblock workers waiting on a full queue
            while not q.empty():
                q.get_nowait()


class _Packer:
    """Crops of consecutive tracks packed into encoder batches of exactly ``size`` rows (the last one of a batch
    of files may be smaller): short tracks fill a batch instead of costing one small encoder call each
    (measured 7x per crop for 4-crop calls against 64). Packing never crosses a committed batch, so a resumed
    build packs, and computes, exactly what an uninterrupted one does."""

    def __init__(self, model, size: int, stats: dict):
        self.model, self.size, self.stats = model, size, stats
        self.pending: list[tuple[int, np.ndarray]] = []   # (track position, crops)
        self.n = 0
        self.out: dict[int, list[np.ndarray]] = {}

    def add(self, pos: int, crops: np.ndarray) -> None:
        self.pending.append((pos, crops))
        self.n += len(crops)
        while self.n >= self.size:
            self._encode(self.size)

    def flush(self) -> None:
        if self.n:
            self._encode(self.n)

    def _encode(self, rows: int) -> None:
        take, owners, left = [], [], rows
        while left:
            pos, crops = self.pending[0]
            part, rest = crops[:left], crops[left:]
            take.append(part)
            owners.append((pos, len(part)))
            left -= len(part)
            if len(rest):
                self.pending[0] = (pos, rest)
            else:
                self.pending.pop(0)
        self.n -= rows
        t0 = time.perf_counter()
        x = torch.from_numpy(np.concatenate(take) if len(take) > 1 else take[0])
        t1 = time.perf_counter()
        emb = self.model.encode(x, batch_size=rows).cpu().numpy()
        self.stats["frame"] += t1 - t0
        self.stats["encode"] += time.perf_counter() - t1
        at = 0
        for pos, n in owners:
            self.out.setdefault(pos, []).append(emb[at:at + n])
            at += n


def _embed_batch(items: list[Item], model, workers: int, block_crops: int, stats: dict,
                 min_s: float = MIN_SECONDS, settled: Callable[[Item, str | None], None] | None = None):
    """Embed a batch of files; ``settled(item, reason or None)`` is called as each file is decoded to its end."""
    crop_s = float(model.crop_s)
    packer = _Packer(model, ENCODE_BATCH, stats)
    rows: dict[int, list[tuple]] = {}            # track position -> (start_s, source, source_start_s) per crop
    ended: dict[int, tuple] = {}                 # track position -> (seconds, sample rate)
    skipped = []
    stop = threading.Event()
    t_wait = time.perf_counter()
    for pos, item, (kind, payload, decode_s) in _prefetch(items, model, workers, block_crops, stop, min_s):
        stats["wait"] += time.perf_counter() - t_wait
        stats["decode"] += decode_s
        if kind == "fatal":
            raise payload
        if kind == "block":
            src, offset, block = payload
            packer.add(pos, block.crops)
            starts = (block.first + np.arange(len(block.crops))) * crop_s
            rows.setdefault(pos, []).extend((offset + s, src, s) for s in starts)
        elif kind == "error":
            skipped.append({"track_id": item.track_id, "path": item.path, "reason": str(payload)})
            rows.pop(pos, None)
            if settled:
                settled(item, str(payload))
        else:
            ended[pos] = payload
            if settled:
                settled(item, None)
        t_wait = time.perf_counter()
    packer.flush()
    tracks = {"track_id": [], "path": [], "duration_s": [], "n_crops": [], "sample_rate": []}
    crops = {"track_id": [], "start_s": [], "source": [], "source_start_s": []}
    track_vecs, crop_vecs = [], []
    for pos in sorted(ended):
        item, (seconds, rate) = items[pos], ended[pos]
        e = np.concatenate(packer.out[pos])
        track_vecs.append(e.mean(axis=0))
        crop_vecs.append(e)
        for key, value in (("track_id", item.track_id), ("path", item.path), ("duration_s", float(seconds)),
                           ("n_crops", len(e)), ("sample_rate", int(rate))):
            tracks[key].append(value)
        for start, src, sstart in rows[pos]:
            for key, value in (("track_id", item.track_id), ("start_s", float(start)), ("source", src),
                               ("source_start_s", float(sstart))):
                crops[key].append(value)
        stats["seconds"] += float(seconds)
    dim = int(model.embed_dim)
    tv = np.stack(track_vecs) if track_vecs else np.zeros((0, dim), np.float32)
    cv = np.concatenate(crop_vecs) if crop_vecs else np.zeros((0, dim), np.float32)
    return tracks, tv, crops, cv, skipped


def _settled(batches: list[Path]) -> dict[str, list | None]:
    """Track id -> its stamp (``inputs.stamp``) as the latest committed batch settled it (embedded or
    skipped); None for a batch from before stamps (its tracks count as changed)."""
    out: dict[str, list | None] = {}
    for b in batches:
        meta = batch_meta(b)
        stamps = meta.get("stamps", {})
        for tid in meta["items"]:
            out[tid] = stamps.get(tid)
    return out


def build_index(inp: str | Path, checkpoint: str | Path, out: str | Path, part: int = 0, parts: int = 1,
                batch_files: int = 32, workers: int = 2, device: str = "cpu", block_crops: int = BLOCK_CROPS,
                merge: bool | None = None, progress: Progress = None, model=None,
                min_s: float = MIN_SECONDS) -> dict:
    """Bring part ``part`` of ``parts`` of the index at ``out`` up to date with ``inp`` (folder, CSV manifest
    or shards folder): embed the tracks that are new or changed since they were embedded (``inputs.stamp``:
    path, size, mtime), ``batch_files`` tracks per committed batch, and drop the tracks no longer there (the
    part's record lists the live ones; merge takes each track from the latest batch that settled it). A
    single-part build is merged at the end (``merge``) when anything changed or no merged index exists.
    Returns the figures of this run (``stats``: added, changed, removed, unchanged, ...) and of the part.
    Nothing is written when ``inp`` holds no audio."""
    from ssl_music.api import load_encoder

    mine = split(list_items(inp), part, parts)   # refuses an input with no audio before anything is written
    model = model if model is not None else load_encoder(checkpoint, device=device)
    folder = part_dir(out, part, parts)
    record = _check_part(folder, _part_record(model, checkpoint, Path(inp).resolve(), part, parts, len(mine)))
    remove_leftovers(folder)
    batches = committed_batches(folder)
    settled = _settled(batches)
    stamps = {it.track_id: stamp(it) for it in mine}
    live = [it.track_id for it in mine]
    added = [it for it in mine if it.track_id not in settled]
    changed = [it for it in mine if it.track_id in settled and settled[it.track_id] != stamps[it.track_id]]
    removed = sorted(set(settled) - set(live))
    if record.get("tracks") is not None:   # settled by a batch, yet dropped by an earlier run: not live
        removed = sorted(set(removed) & set(record["tracks"]))
    todo = sorted(added + changed, key=lambda it: it.track_id)
    stats = {k: 0.0 for k in ("decode", "wait", "frame", "encode", "write", "seconds")}
    stats.update(tracks=0, skipped=0, batches=0, resumed_from=len(mine) - len(todo), workers=int(workers),
                 added=len(added), changed=len(changed), removed=len(removed), unchanged=len(mine) - len(todo))
    index_json = Path(out) / "index.json"
    up_to_date = not todo and record.get("complete") and sorted(record.get("tracks") or []) == sorted(live)
    if up_to_date and (parts > 1 or index_json.is_file()):
        stats["wall"] = 0.0
        return {"part": part, "parts": parts, "items": len(mine), "stats": stats, "up_to_date": True}
    record.update(complete=False, items=len(mine))
    write_json_atomic(folder / PART_FILE, record)
    wall0 = time.perf_counter()
    number = int(batches[-1].name.split("-")[1]) + 1 if batches else 0
    seen = [0]

    def said(item: Item, reason: str | None) -> None:
        seen[0] += 1
        if progress:
            progress(f"part {part}/{parts}: [{seen[0]}/{len(todo)}] {item.path}"
                     + (f": skipped, {reason.removeprefix(item.path + ': ')}" if reason else ""))

    for start in range(0, len(todo), max(1, batch_files)):
        chunk = todo[start:start + max(1, batch_files)]
        tracks, tv, crops, cv, skipped = _embed_batch(chunk, model, max(1, workers), block_crops, stats, min_s, said)
        t0 = time.perf_counter()
        write_batch(folder, number, tracks, tv, crops, cv,
                    {"items": [it.track_id for it in chunk], "skipped": skipped,
                     "stamps": {it.track_id: stamps[it.track_id] for it in chunk}})
        stats["write"] += time.perf_counter() - t0
        number += 1
        stats["tracks"] += len(tracks["track_id"])
        stats["skipped"] += len(skipped)
        stats["batches"] += 1
    stats["wall"] = time.perf_counter() - wall0
    record.update(complete=True, tracks=live)
    write_json_atomic(folder / PART_FILE, record)
    result = {"part": part, "parts": parts, "items": len(mine), "stats": stats, "up_to_date": False}
    if merge if merge is not None else parts == 1:
        result["index"] = merge_index(out)
    return result
