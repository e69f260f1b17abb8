"""Search a catalogue by example: a query (file, track id, time range of either) -> the best crops of other tracks.

The query is one vector: the mean of its crop embeddings (a track's stored embedding; a range's crops; an
audio file embedded with the index's checkpoint), optionally moved by the tempo translator ("like this,
r times faster"). Every crop of the catalogue is scored by cosine similarity (exact, float32, one matrix
product over the memory-mapped vectors in blocks), each track keeps its best crop, and the top ``k``
tracks come back with the second where their best crop starts. The query's own track is left out unless
``include_self``.

Subspace weights (the subspace issue) slot into ``_scores``: with a checkpoint whose embedding is named
parts, the cosine becomes a weighted sum of per-part cosines; nothing else changes. No checkpoint has
subspaces yet, so there is no ``weights`` argument today.
"""
from __future__ import annotations

import os
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ssl_music.catalogue.blocks import file_blocks
from ssl_music.catalogue.store import Catalogue, CatalogueError
from ssl_music.errors import SSLMusicError

_RANGE = re.compile(r"^(?P<what>.+)@(?P<a>\d+(?:\.\d+)?)-(?P<b>\d+(?:\.\d+)?)$")
BLOCK_ROWS = 1 << 18   # crops scored per matrix product: bounded memory on a million-row index


@dataclass
class Query:
    """What the user asked for, resolved: ``track_id`` when it names an indexed track, ``path`` for audio."""

    text: str
    vector: np.ndarray
    track_id: str | None = None
    path: str | None = None
    start_s: float = 0.0
    end_s: float | None = None
    tempo_ratio: float | None = None


@dataclass
class Hit:
    rank: int
    track_id: str
    start_s: float
    similarity: float
    source: str            # where the crop's audio is (file path or shard member)
    source_start_s: float
    path: str


@dataclass
class Result:
    query: Query
    hits: list[Hit] = field(default_factory=list)


def parse_query(text: str) -> tuple[str, float, float | None]:
    """``ID``, ``file.wav``, ``ID@30-45`` or ``file.wav@30-45`` -> (what, start_s, end_s or None)."""
    m = _RANGE.match(text)
    if not m:
        return text, 0.0, None
    a, b = float(m["a"]), float(m["b"])
    if b <= a:
        raise SSLMusicError(f"query {text!r}: the range must end after it starts ({a} s - {b} s)")
    return m["what"], a, b


def check_model(cat: Catalogue, model) -> None:
    """Refuse a model that is not the one the index was built with: its vectors live in another space."""
    if str(model.identity) != cat.identity:
        raise CatalogueError(f"{cat.path} was built with checkpoint {cat.meta.get('checkpoint')} (identity "
                          f"{cat.identity}); this model has identity {model.identity}: its embeddings are not "
                          f"comparable. Query with that checkpoint or build an index with this one")


def _track_vector(cat: Catalogue, row: int, start_s: float, end_s: float | None, text: str) -> np.ndarray:
    if end_s is None:
        return np.asarray(cat.track_vectors[row], np.float32)
    rows = np.flatnonzero(cat.crop_track == row)
    starts = np.asarray(cat.crops.column("start_s"))[rows]
    crop_s = float(cat.meta["crop_s"])
    keep = rows[(starts + crop_s > start_s) & (starts < end_s)]   # crops overlapping the range
    if not len(keep):
        raise SSLMusicError(f"query {text!r}: no crop of this track overlaps {start_s}-{end_s} s "
                            f"(the track has crops from 0 to {starts.max() + crop_s if len(starts) else 0:.1f} s)")
    return np.asarray(cat.crop_vectors[keep], np.float32).mean(axis=0)


def resolve_query(cat: Catalogue, text: str, model=None) -> Query:
    """A track id of the index (no model needed) or an audio file (embedded with ``model``, which must be
    the index's checkpoint). A ``@A-B`` suffix restricts either to seconds A to B."""
    what, a, b = parse_query(text)
    row = cat.track_row(what)
    if row is not None:
        return Query(text, _track_vector(cat, row, a, b, text), track_id=what, start_s=a, end_s=b)
    if not Path(what).is_file():
        raise SSLMusicError(f"query {what!r}: neither a track id of {cat.path} nor an audio file")
    if model is None:
        raise SSLMusicError(f"query {what!r} is audio: it needs the index's checkpoint to embed it")
    check_model(cat, model)
    blocks = [blk.crops for blk in file_blocks(what, model.sample_rate, model.crop_len, 64, start_s=a, end_s=b)]
    if not blocks:
        raise SSLMusicError(f"query {text!r}: no audio in that range")
    vec = np.concatenate([model.embed_crops(c) for c in blocks]).mean(axis=0)
    own = cat.path_rows.get(os.path.realpath(what))   # resolved as the index's paths are: any cwd, any symlink
    tid = cat.tracks.column("track_id")[own].as_py() if own is not None else None
    return Query(text, vec, track_id=tid, path=what, start_s=a, end_s=b)


def translate_query(query: Query, model, ratio: float) -> Query:
    """The query moved to ``ratio`` times its tempo (r > 1 faster) by the checkpoint's tempo translator;
    SSLMusicError with the reason when the checkpoint has none."""
    if model is None:
        raise SSLMusicError("--tempo-ratio needs the index's checkpoint (its tempo translator)")
    query.vector = np.asarray(model.translate_tempo(query.vector, float(ratio)), np.float32)
    query.tempo_ratio = float(ratio)
    return query


def _scores(matrix: np.ndarray, inv_norm: np.ndarray, q: torch.Tensor) -> torch.Tensor:
    """Cosine of every row of ``matrix`` with the unit vector ``q``, block by block (subspace weights would
    enter here: a weighted sum of per-part cosines)."""
    out = []
    for start in range(0, len(matrix), BLOCK_ROWS):
        with warnings.catch_warnings():  # a read-only memory map is only read here
            warnings.simplefilter("ignore", UserWarning)
            m = torch.from_numpy(np.ascontiguousarray(matrix[start:start + BLOCK_ROWS], np.float32))
        out.append(m @ q)
    sims = torch.cat(out) if out else torch.zeros(0)
    return sims * torch.from_numpy(inv_norm)


@contextmanager
def _one_torch_thread():
    """One query is a matrix-vector product and a few O(N) passes, memory-bound: torch's thread pool only adds
    hand-offs, and on busy cores they dominate (measured on 2 shared cores, 100k crops: 4.4 ms with one
    thread, 166 ms with two)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def search(cat: Catalogue, query: Query, k: int = 10, include_self: bool = False, level: str = "crop") -> Result:
    """The ``k`` best tracks for ``query``: by their best crop (``level="crop"``) or by track embedding."""
    with _one_torch_thread():
        return _search(cat, query, k, include_self, level)


def _search(cat: Catalogue, query: Query, k: int, include_self: bool, level: str) -> Result:
    if k < 1:
        raise SSLMusicError(f"-k must be >= 1, got {k}")
    q = torch.nn.functional.normalize(torch.tensor(np.asarray(query.vector, np.float32)), dim=0)
    n_tracks = cat.tracks.num_rows
    exclude = cat.track_row(query.track_id) if query.track_id is not None and not include_self else None
    if level == "track":
        best = _scores(cat.track_vectors, cat.track_inv_norm, q)
        where = torch.full((n_tracks,), -1, dtype=torch.long)
    elif level == "crop":
        sims = _scores(cat.crop_vectors, cat.crop_inv_norm, q)
        track = torch.as_tensor(cat.crop_track)
        best = torch.full((n_tracks,), -float("inf")).scatter_reduce(0, track, sims, reduce="amax")
        # the crop that reached each track's best: the first row whose score equals it
        hit = sims == best[track]
        where = torch.full((n_tracks,), len(sims), dtype=torch.long).scatter_reduce(
            0, track[hit], torch.nonzero(hit).squeeze(1), reduce="amin")
    else:
        raise SSLMusicError(f"unknown search level {level!r}: choose crop or track")
    if exclude is not None:
        best[exclude] = -float("inf")
    top = torch.topk(best, min(k, n_tracks))
    ids = cat.tracks.column("track_id")
    paths = cat.tracks.column("path")
    hits = []
    for rank, (sim, row) in enumerate(zip(top.values.tolist(), top.indices.tolist()), 1):
        if sim == -float("inf"):
            break
        c = int(where[row])
        if c >= 0:
            start, src, sstart = (cat.crops.column(n)[c].as_py() for n in ("start_s", "source", "source_start_s"))
        else:
            start, src, sstart = 0.0, paths[row].as_py(), 0.0
        hits.append(Hit(rank, ids[row].as_py(), float(start), float(sim), cat.locate(src), float(sstart),
                        cat.locate(paths[row].as_py())))
    return Result(query, hits)


def format_table(result: Result, crop_s: float) -> str:
    q = result.query
    head = f"query {q.text}" + (f"  (tempo x{q.tempo_ratio:g})" if q.tempo_ratio else "")
    lines = [head, f"{'rank':>4}  {'track':<32} {'start s':>8}  {'similarity':>10}"]
    lines += [f"{h.rank:>4}  {h.track_id:<32} {h.start_s:>8.1f}  {h.similarity:>10.4f}" for h in result.hits]
    if not result.hits:
        lines.append("  (no other track in the index)")
    return "\n".join(lines)
