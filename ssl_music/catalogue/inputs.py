"""What an index build reads: a folder, a CSV manifest or a shards folder -> tracks, each a list of sources.

A source is a file path, or a shard member ``SHARD.tar#KEY.flac`` (``blocks.file_blocks`` opens both) with
the second of the track where it starts. A file is one source at 0 s; a shard track is its segments
(at most a minute each, built by ``ssl-music shards build``) in order, its crops restarting at each segment.
"""
from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from ssl_music.data.shards import MANIFEST, list_inputs, read_manifest
from ssl_music.errors import SSLMusicError


@dataclass
class Item:
    track_id: str
    path: str                                     # what the table shows: the file, or the source a shard names
    sources: list[tuple[str, float]] = field(default_factory=list)   # (source, offset_s in the track)


def list_items(inp: str | Path) -> list[Item]:
    """Every track of ``inp`` sorted by track id (the order every part and batch plan follows)."""
    p = Path(inp)
    if p.is_dir() and (p / MANIFEST).is_file():
        items = _shard_items(p)
    elif p.is_dir() or (p.is_file() and p.suffix.lower() == ".csv"):
        items = [Item(it["track_id"], it["path"], [(it["path"], 0.0)]) for it in list_inputs(p)]
    else:
        raise SSLMusicError(f"input {p}: not a folder of audio, a .csv manifest or a shards folder")
    return sorted(items, key=lambda it: it.track_id)


def _shard_items(folder: Path) -> list[Item]:
    """Tracks of a shards folder from the segments' JSON (the FLAC bytes are skipped, not read)."""
    manifest = read_manifest(folder)
    tracks: dict[str, list[tuple[int, str, float, str]]] = {}
    for shard in manifest["shards"]:
        tar = folder / shard["name"]
        try:
            with tarfile.open(tar) as tf:
                for member in tf:
                    if not member.name.endswith(".json"):
                        continue
                    meta = json.loads(tf.extractfile(member).read())
                    key = member.name[: -len(".json")]
                    seg = (int(meta["segment"]), f"{tar}#{key}.flac", float(meta["offset_s"]),
                           str(meta.get("source", "")))
                    tracks.setdefault(meta["track_id"], []).append(seg)
        except (OSError, tarfile.TarError, KeyError, ValueError) as exc:
            raise SSLMusicError(f"{tar}: unreadable shard ({exc}); "
                                f"check it with `ssl-music shards verify {folder}`") from None
    items = []
    for tid, segs in tracks.items():
        segs.sort()
        items.append(Item(tid, segs[0][3] or segs[0][1], [(s[1], s[2]) for s in segs]))
    return items


def split(items: list[Item], part: int, parts: int) -> list[Item]:
    """Part ``part`` of ``parts``: every parts-th track, so parts get similar mixes of lengths."""
    if parts < 1 or not 0 <= part < parts:
        raise SSLMusicError(f"--part {part}/{parts}: needs 0 <= i < N")
    return items[part::parts]
