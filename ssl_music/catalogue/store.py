"""The index on disk.

    INDEX/parts/part-I-of-N/part.json           what part I of N is: checkpoint identity, input, settings
    INDEX/parts/part-I-of-N/batch-00007/        one committed batch of files (a directory renamed into place):
        tracks.parquet  track_id, path, duration_s, n_crops, sample_rate   tracks.npy  [n, D] float32
        crops.parquet   track_id, start_s                                   crops.npy   [m, D] float32
        batch.json      the items it settled (embedded or skipped, with the reason) and each one's stamp
                        (resolved path, size, mtime: what tells a re-run that the file changed)
    INDEX/index.json, tracks.*, crops.*          the merged catalogue (``merge_index``), what search opens

A batch is written into ``batch-00007.tmp-<pid>`` and renamed: a killed build leaves whole batches or
nothing, and a re-run skips every item a committed batch names with its current stamp. A re-run after the
folder changed adds batches for new and changed files and lists the live tracks in ``part.json``; merge
takes each live track from the latest batch that settled it. Vectors are plain ``.npy`` (opened
memory-mapped; benchmarks/index.py measures it against a Parquet list column), metadata Parquet.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ssl_music.errors import SSLMusicError

FORMAT = "ssl_music.catalogue/1"
INDEX_FILE = "index.json"
PART_FILE = "part.json"
_BATCH = re.compile(r"^batch-(\d{5})$")


class CatalogueError(SSLMusicError):
    """A missing, partial, foreign or malformed index."""


def part_dir(index: str | Path, part: int, parts: int) -> Path:
    return Path(index) / "parts" / f"part-{part:03d}-of-{parts:03d}"


def write_json_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    tmp.replace(path)


def read_json(path: Path, what: str) -> dict:
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError:
        raise CatalogueError(f"{path}: no {what}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogueError(f"{path}: malformed {what} ({exc})") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CatalogueError(f"{path}: {what} format {obj.get('format') if isinstance(obj, dict) else None!r} "
                          f"is not one this version reads ({FORMAT})")
    return obj


# ------------------------------------------------------------------------------------------- batches
def _table(columns: dict):
    import pyarrow as pa

    return pa.table(columns)


def write_batch(folder: Path, number: int, tracks: dict, track_vecs: np.ndarray, crops: dict,
                crop_vecs: np.ndarray, meta: dict) -> Path:
    """Commit one batch: every file into a temporary directory, then one rename."""
    import pyarrow.parquet as pq

    final = folder / f"batch-{number:05d}"
    tmp = folder / f"batch-{number:05d}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    pq.write_table(_table(tracks), tmp / "tracks.parquet")
    pq.write_table(_table(crops), tmp / "crops.parquet")
    np.save(tmp / "tracks.npy", np.asarray(track_vecs, np.float32))
    np.save(tmp / "crops.npy", np.asarray(crop_vecs, np.float32))
    (tmp / "batch.json").write_text(json.dumps({"format": FORMAT, **meta}, indent=2) + "\n")
    for f in tmp.iterdir():  # the rename must not be reordered before the data reaches the disk
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    tmp.rename(final)
    return final


def committed_batches(folder: Path) -> list[Path]:
    """Committed batch directories of a part, in order (read-only: a live writer's temporary one is left alone)."""
    if not folder.is_dir():
        return []
    return [d for d in sorted(folder.iterdir()) if _BATCH.match(d.name) and (d / "batch.json").is_file()]


def remove_leftovers(folder: Path) -> None:
    """Temporary batch directories of a killed writer; only the part's (new) writer calls this."""
    for d in folder.glob("*.tmp-*"):
        shutil.rmtree(d, ignore_errors=True) if d.is_dir() else d.unlink(missing_ok=True)


def batch_meta(batch: Path) -> dict:
    return read_json(batch / "batch.json", "batch record")


# --------------------------------------------------------------------------------------------- merge
def _read_batch(batch: Path, dim: int) -> tuple[dict, object, object, int, int]:
    """(record, tracks table, crops table, track vector rows, crop vector rows) of a committed batch, checked
    before merge writes anything: CatalogueError naming the batch and how to rebuild it."""
    import pyarrow.parquet as pq

    meta = batch_meta(batch)
    try:
        tracks, crops = pq.read_table(batch / "tracks.parquet"), pq.read_table(batch / "crops.parquet")
        tv, cv = np.load(batch / "tracks.npy", mmap_mode="r"), np.load(batch / "crops.npy", mmap_mode="r")
    except (OSError, ValueError, EOFError) as exc:
        raise CatalogueError(f"{batch}: unreadable batch ({type(exc).__name__}: {exc}); delete this folder and "
                             f"re-run the same `ssl-music index build` to embed its {len(meta['items'])} tracks "
                             f"again (the rest of the index is kept)") from None
    if tv.shape != (tracks.num_rows, dim) or cv.shape != (crops.num_rows, dim):
        raise CatalogueError(f"{batch}: vectors {tv.shape}/{cv.shape} do not match its tables ({tracks.num_rows}/"
                             f"{crops.num_rows} rows of {dim}); delete this folder and re-run the same "
                             f"`ssl-music index build`")
    return meta, tracks, crops, len(tv), len(cv)


def merge_index(index: str | Path) -> dict:
    """Gather every part's batches into the catalogue search opens (tracks sorted by track id, crops by
    track then start). Each track comes from the latest batch that settled it, and only the tracks the part's
    record lists as live (a re-run drops deleted files) are kept. Refuses missing or unfinished parts,
    parts built with different checkpoints, unreadable batches and an index with no track, before writing
    anything: a merged index already there stays as it was. Parts stay in place: merging again gives the
    same files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    index = Path(index)
    folders = sorted((index / "parts").glob("part-*-of-*")) if (index / "parts").is_dir() else []
    if not folders:
        raise CatalogueError(f"{index}: no parts to merge (build with `ssl-music index build INPUT --out {index}`)")
    metas = [read_json(f / PART_FILE, "part record") for f in folders]
    counts = {m["parts"] for m in metas}
    ids = {(m["identity"], m["embed_dim"], m["crop_s"], m["sample_rate"]) for m in metas}
    if len(counts) != 1:
        raise CatalogueError(f"{index}: parts of different splits ({sorted(counts)} parts) in one index")
    if len(ids) != 1:
        raise CatalogueError(f"{index}: parts built with different checkpoints or settings: {sorted(ids)}")
    n = counts.pop()
    have = {m["part"] for m in metas}
    missing = [i for i in range(n) if i not in have]
    unfinished = [str(f) for f, m in zip(folders, metas) if not m.get("complete")]
    if missing or unfinished:
        raise CatalogueError(f"{index}: cannot merge: " + "; ".join(
            ([f"parts {missing} of {n} not started"] if missing else []) +
            ([f"unfinished: {', '.join(unfinished)} (re-run its `index build --part`)"] if unfinished else [])))
    dim = int(metas[0]["embed_dim"])
    # every batch read and checked first; then, per track, the latest batch that settled it
    batches, t_tables, c_tables, skipped_by = [], [], [], {}
    latest: dict[str, int] = {}
    for f, m in zip(folders, metas):
        live = set(m["tracks"]) if m.get("tracks") is not None else None
        for b in committed_batches(f):
            meta, tracks, crops, _, _ = _read_batch(b, dim)
            k = len(batches)
            batches.append(b)
            t_tables.append(tracks)
            c_tables.append(crops)
            for tid in meta["items"]:
                if live is None or tid in live:
                    latest[tid] = k
                else:
                    latest.pop(tid, None)
            for sk in meta["skipped"]:
                skipped_by[sk["track_id"]] = (k, sk)
    skipped = [sk for tid, (k, sk) in sorted(skipped_by.items()) if latest.get(tid) == k]

    def kept(tables) -> list[np.ndarray]:   # per batch: its rows whose track it settled last
        return [np.asarray([latest.get(t) == k for t in tab.column("track_id").to_pylist()], bool)
                for k, tab in enumerate(tables)]

    keep_t, keep_c = kept(t_tables), kept(c_tables)
    if not any(k.any() for k in keep_t):
        shown = "; ".join(s["reason"] for s in skipped[:3])
        raise CatalogueError(f"{index}: no track to index: {len(skipped)} file(s) skipped"
                             + (f" ({shown}{'; ...' if len(skipped) > 3 else ''})" if skipped else ""))
    t_rows = np.flatnonzero(np.concatenate(keep_t))          # rows of the concatenated batches kept
    c_rows = np.flatnonzero(np.concatenate(keep_c))
    tracks = pa.concat_tables(t_tables).take(t_rows)
    crops = pa.concat_tables(c_tables).take(c_rows)
    track_ids = tracks.column("track_id").to_pylist()
    if len(set(track_ids)) < len(track_ids):
        dup = sorted({t for t in track_ids if track_ids.count(t) > 1})
        raise CatalogueError(f"{index}: track ids in more than one part: {dup[:5]}")
    order = np.argsort(np.asarray(track_ids, dtype=object), kind="stable")
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    crop_track = np.asarray([rank[i] for i in _track_positions(track_ids, crops.column("track_id").to_pylist())],
                            np.int64)
    crop_order = np.lexsort((np.asarray(crops.column("start_s")), crop_track))
    _write_matrix(index / "tracks.npy", batches, "tracks", t_rows[order], dim)
    _write_matrix(index / "crops.npy", batches, "crops", c_rows[crop_order], dim)
    tracks = tracks.take(order)
    crops = crops.take(crop_order).append_column("track", _int_array(crop_track[crop_order]))
    for name, table in (("tracks", tracks), ("crops", crops)):
        tmp = index / f"{name}.parquet.tmp-{os.getpid()}"
        pq.write_table(table, tmp)
        tmp.replace(index / f"{name}.parquet")
    meta = {k: metas[0][k] for k in ("identity", "checkpoint", "embed_dim", "sample_rate", "crop_s", "input")}
    # where the music was relative to the index: an index moved together with its music still finds it
    meta["input_from_index"] = os.path.relpath(str(meta["input"]), str(index.resolve()))
    meta.update(format=FORMAT, parts=n, tracks=tracks.num_rows, crops=crops.num_rows, skipped=skipped,
                hours=float(np.sum(tracks.column("duration_s"))) / 3600)
    write_json_atomic(index / INDEX_FILE, meta)
    return meta


def _int_array(x: np.ndarray):
    import pyarrow as pa

    return pa.array(x, type=pa.int64())


def _track_positions(track_ids: list, crop_track_ids: list) -> list[int]:
    pos = {t: i for i, t in enumerate(track_ids)}
    return [pos[t] for t in crop_track_ids]


def _write_matrix(path: Path, batches: list[Path], name: str, order: np.ndarray, dim: int) -> None:
    """Rows of every batch's ``name``.npy in ``order`` into one .npy, through a memory map: the vectors
    never sit in memory twice."""
    parts = [np.load(b / f"{name}.npy", mmap_mode="r") for b in batches]
    sizes = np.cumsum([0] + [len(p) for p in parts])
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(order), dim))
    which = np.searchsorted(sizes, order, side="right") - 1
    for start in range(0, len(order), 65536):
        sl = slice(start, start + 65536)
        out[sl] = np.stack([parts[w][r] for w, r in zip(which[sl], order[sl] - sizes[which[sl]])]) \
            if len(order[sl]) else out[sl]
    out.flush()
    del out
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------- open
@dataclass
class Catalogue:
    """A merged index: metadata tables (pyarrow) and memory-mapped float32 vectors."""

    path: Path
    meta: dict
    tracks: object           # pyarrow.Table: track_id, path, duration_s, n_crops, sample_rate
    crops: object            # pyarrow.Table: track_id, start_s, track (row of tracks)
    track_vectors: np.ndarray
    crop_vectors: np.ndarray

    @property
    def identity(self) -> str:
        return str(self.meta["identity"])

    # Derived once per process and kept: a search must not pay for them on every query.
    @cached_property
    def rows(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tracks.column("track_id").to_pylist())}

    @cached_property
    def crop_track(self) -> np.ndarray:
        """[crops] int64: the track row of every crop."""
        return np.asarray(self.crops.column("track").to_numpy(), np.int64)

    @cached_property
    def track_first_crop(self) -> np.ndarray:
        """[tracks] int64: the first crop row of each track (crops are sorted by track; len(crops) for none)."""
        track = self.crop_track
        if len(track) and np.any(np.diff(track) < 0):
            raise CatalogueError(f"{self.path}: crops are not sorted by track; re-run `ssl-music index merge "
                                 f"{self.path}`")
        return np.searchsorted(track, np.arange(self.tracks.num_rows)).astype(np.int64)

    @cached_property
    def crop_inv_norm(self) -> np.ndarray:
        return _inverse_norms(self.crop_vectors)

    @cached_property
    def track_inv_norm(self) -> np.ndarray:
        return _inverse_norms(self.track_vectors)

    @cached_property
    def path_rows(self) -> dict[str, int]:
        """Resolved path of each indexed file -> its row: an audio query of an indexed file leaves its track
        out, from whatever folder it is run (paths are stored resolved at build time)."""
        # abspath, not realpath: stored paths are resolved already, and a syscall per track costs seconds at 100k
        return {os.path.abspath(self.locate(p)): i for i, p in enumerate(self.tracks.column("path").to_pylist())}

    @cached_property
    def _music_moved_to(self) -> tuple[str, str] | None:
        """(the input folder recorded at build time, where it is now) when it is gone from where it was but
        sits at the same place relative to the index (the two moved together), else None."""
        inp, rel = self.meta.get("input"), self.meta.get("input_from_index")
        if not inp or rel is None or not os.path.isabs(inp) or os.path.exists(inp):
            return None
        here = os.path.realpath(os.path.join(str(self.path.resolve()), rel))
        return (inp, here) if os.path.exists(here) else None

    def locate(self, path: str) -> str:
        """Where an indexed file (or shard member) is now: as recorded, or under the music's new place when
        the index and its music moved together (``_music_moved_to``)."""
        moved = self._music_moved_to
        if moved and (path == moved[0] or path.startswith(moved[0].rstrip(os.sep) + os.sep)):
            return moved[1] + path[len(moved[0].rstrip(os.sep)):]
        return path

    def music_problem(self) -> str | None:
        """What to do when the music the index was built from is not where the index looks for it, or None."""
        inp = self.meta.get("input")
        if not inp or not os.path.isabs(inp) or os.path.exists(inp) or self._music_moved_to:
            return None
        rel = self.meta.get("input_from_index")
        beside = f" or at {rel} from the index folder" if rel else ""
        return (f"the music of {self.path} is not where it was built from ({inp}): put it back there{beside}, or "
                f"bring the index up to date with `ssl-music index build NEW_FOLDER --out {self.path} --checkpoint "
                f"{self.meta.get('checkpoint')}`")

    def track_row(self, track_id: str) -> int | None:
        return self.rows.get(track_id)


def _inverse_norms(matrix: np.ndarray, block: int = 1 << 18) -> np.ndarray:
    out = np.empty(len(matrix), np.float32)
    for start in range(0, len(matrix), block):
        m = np.asarray(matrix[start:start + block], np.float32)
        out[start:start + block] = 1 / np.maximum(np.sqrt(np.einsum("ij,ij->i", m, m)), 1e-12)
    return out


def open_index(index: str | Path) -> Catalogue:
    import pyarrow.parquet as pq

    index = Path(index)
    if not index.is_dir():
        raise CatalogueError(f"{index}: no such index folder")
    if not (index / INDEX_FILE).is_file():
        if (index / "parts").is_dir():
            raise CatalogueError(f"{index}: built in parts but not merged; run `ssl-music index merge {index}`")
        raise CatalogueError(f"{index}: not an index (no {INDEX_FILE})")
    meta = read_json(index / INDEX_FILE, "index record")
    try:
        tracks, crops = pq.read_table(index / "tracks.parquet"), pq.read_table(index / "crops.parquet")
        tv, cv = np.load(index / "tracks.npy", mmap_mode="r"), np.load(index / "crops.npy", mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise CatalogueError(f"{index}: unreadable index files ({exc}); "
                             f"re-run `ssl-music index merge {index}`") from None
    if tv.shape != (tracks.num_rows, meta["embed_dim"]) or cv.shape != (crops.num_rows, meta["embed_dim"]):
        raise CatalogueError(f"{index}: vectors {tv.shape}/{cv.shape} do not match the tables "
                          f"({tracks.num_rows}/{crops.num_rows} rows); re-run `ssl-music index merge {index}`")
    return Catalogue(index, meta, tracks, crops, tv, cv)


def index_digest(index: str | Path) -> str:
    """SHA-256 over the sorted rows (track id + vector bytes, crop track id + start + vector bytes): equal
    for two builds of the same collection with the same checkpoint, however they were interrupted."""
    cat = open_index(index)
    h = hashlib.sha256(cat.identity.encode())
    for tid, v in zip(cat.tracks.column("track_id").to_pylist(), cat.track_vectors):
        h.update(tid.encode() + b"\0" + np.ascontiguousarray(v).tobytes())
    for tid, s, v in zip(cat.crops.column("track_id").to_pylist(), cat.crops.column("start_s").to_pylist(),
                         cat.crop_vectors):
        h.update(f"{tid}\0{s!r}".encode() + np.ascontiguousarray(v).tobytes())
    return h.hexdigest()
