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

from ssl_music.data.shard_inputs import no_audio_message
from ssl_music.data.shards import MANIFEST, list_inputs, read_manifest
from ssl_music.errors import SSLMusicError


@dataclass
class Item:
    track_id: str
    path: str                                     # what the table shows: the file, or the source a shard names
    sources: list[tuple[str, float]] = field(default_factory=list)   # (source, offset_s in the track)


def list_items(inp: str | Path) -> list[Item]:
    """Every track of ``inp`` sorted by track id (the order every part and batch plan follows). Paths are
    absolute and resolved (symlinks followed): what the index stores is found from any folder. SSLMusicError
    naming ``inp`` when it holds no audio."""
    p = Path(inp).resolve()
    if p.is_dir() and (p / MANIFEST).is_file():
        items = _shard_items(p)
    elif p.is_dir() or (p.is_file() and p.suffix.lower() == ".csv"):
        items = [Item(it["track_id"], str(Path(it["path"]).resolve()), [(str(Path(it["path"]).resolve()), 0.0)])
                 for it in list_inputs(p)]
    else:
        raise SSLMusicError(f"input {inp}: not a folder of audio, a .csv manifest or a shards folder")
    if not items:
        raise SSLMusicError(no_audio_message(inp) if not (p / MANIFEST).is_file() else f"{inp}: a shards folder "
                            f"with no tracks")
    return sorted(items, key=lambda it: it.track_id)


def stamp(item: Item) -> list[list]:
    """What tells a re-run that a track changed: [path, size, mtime in ns] of each file it is read from (a
    shard track: its shard files). Size and mtime, not a content hash: a hash reads every byte of the
    collection on every re-run (hours for a large one); any write, copy or re-encode changes the mtime."""
    out = []
    for file in dict.fromkeys(src.split(".tar#", 1)[0] + (".tar" if ".tar#" in src else "")
                              for src, _ in item.sources):
        try:
            st = Path(file).stat()
            out.append([file, int(st.st_size), int(st.st_mtime_ns)])
        except OSError:
            out.append([file, -1, -1])   # gone since listing: the build names it when it fails to read it
    return out


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
