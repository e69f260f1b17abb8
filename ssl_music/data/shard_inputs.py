"""What a shard build reads: folders and CSV manifests -> an ordered list of inputs, and how a folder's
inputs changed since it was built.

A build's manifest lists its inputs (``files``: path, track id, size, labels) in the order they were
sharded. Re-running the build with more files grows it: the old inputs keep their order, track ids and
shards, the new ones are appended after them. Files removed or changed since the build are refused, named,
because the shards that hold them can no longer be rebuilt as they are.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Iterable

from ssl_music.data.files import AUDIO_EXTENSIONS, audio_files, read_csv, resolve
from ssl_music.errors import ShardError

NAMES_SHOWN = 5   # file names per kind of change in an error message


def _label_value(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def _track_id(rel: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(Path(rel).with_suffix(""))) or "track"


def list_inputs(inputs: str | Path | Iterable[str | Path]) -> list[dict]:
    """Folders (recursive) and CSV manifests -> [{path, rel, track_id, labels}] in a stable order."""
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    items: list[dict] = []
    for inp in map(Path, inputs):
        if inp.is_dir():
            for p in audio_files(inp):
                rel = p.relative_to(inp).as_posix()
                items.append({"path": str(p), "rel": rel, "track_id": _track_id(rel), "labels": {}})
        elif inp.is_file() and inp.suffix.lower() == ".csv":
            items += _read_csv_manifest(inp)
        else:
            raise ShardError(f"input {inp}: not a folder or a .csv manifest")
    _unique_ids(items, set())
    return items


def _unique_ids(items: list[dict], used: set[str]) -> None:
    """Track ids are sample keys and must be unique within the dataset: a repeat gets -2, -3, ..."""
    for it in items:
        base, n = it["track_id"], 1
        while it["track_id"] in used:
            n += 1
            it["track_id"] = f"{base}-{n}"
        used.add(it["track_id"])


def _read_csv_manifest(path: Path) -> list[dict]:
    _, rows = read_csv(path, what="CSV manifest", error=ShardError)
    out = []
    for row in rows:
        rel = row.get("path") or ""
        tid = row.get("track_id") or ""
        labels = {k: _label_value(v) for k, v in row.items() if k not in ("path", "track_id")}
        out.append({"path": str(resolve(rel, path.parent)), "rel": rel,
                    "track_id": re.sub(r"[^A-Za-z0-9_-]", "_", tid) if tid else _track_id(rel), "labels": labels})
    return out


def _size(path: str) -> int:
    p = Path(path)
    return p.stat().st_size if p.is_file() else -1


def file_rows(items: list[dict]) -> list[list]:
    """The manifest's ``files``: [absolute path, track id, size, labels] per input, in build order."""
    return [[str(Path(it["path"]).resolve()), it["track_id"], _size(it["path"]), it["labels"]] for it in items]


def inputs_sha256(items: list[dict]) -> str:
    h = hashlib.sha256()
    for it in items:
        h.update(json.dumps([it["path"], it["track_id"], _size(it["path"]), it["labels"]], sort_keys=True).encode())
    return h.hexdigest()


def _names(paths: list[str]) -> str:
    shown = ", ".join(Path(p).name for p in paths[:NAMES_SHOWN])
    return shown + (f", and {len(paths) - NAMES_SHOWN} more" if len(paths) > NAMES_SHOWN else "")


def grow(files: list[list], items: list[dict], where: Path) -> tuple[list[dict], int]:
    """The inputs of a build that already sharded ``files`` (its manifest's), given what the inputs hold
    now: the old ones in their order with their track ids, then the added ones. Returns (items, n_added).
    ShardError naming the files when any was removed or changed."""
    now = {str(Path(it["path"]).resolve()): it for it in items}
    removed = [f[0] for f in files if f[0] not in now]
    changed = [f[0] for f in files if f[0] in now and (f[2] != _size(f[0]) or f[3] != now[f[0]]["labels"])]
    old = {f[0] for f in files}
    added = [it for key, it in now.items() if key not in old]
    if removed or changed:
        parts = [f"{len(v)} {k} ({_names(v)})" for k, v in (("removed", removed), ("changed", changed)) if v]
        if added:
            parts.append(f"{len(added)} added ({_names([it['path'] for it in added])})")
        raise ShardError(f"{where} was built from other inputs: since the build, {'; '.join(parts)}. Shards "
                         "hold what they were built from, so only added files can be sharded into this folder; "
                         "use a new --out (or delete the folder) to build from the inputs as they are now")
    ordered = [dict(now[f[0]], track_id=f[1]) for f in files]
    _unique_ids(added, {it["track_id"] for it in ordered})
    return ordered + added, len(added)


def no_audio_message(inputs) -> str:
    shown = ", ".join(map(str, [inputs] if isinstance(inputs, (str, Path)) else inputs))
    return (f"no audio files in {shown} (looked for {', '.join(sorted(AUDIO_EXTENSIONS))}, recursively; "
            "or a CSV manifest with a 'path' column)")
