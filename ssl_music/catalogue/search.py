"""Search a catalogue by example: a query (file, track id, time range of either) -> the best crops of other tracks.

The query is one vector: the mean of its crop embeddings (a track's stored embedding; a range's crops; an
audio file embedded with the index's checkpoint), optionally moved by the tempo translator ("like this,
r times faster"). Every crop of the catalogue is scored by cosine similarity (exact, float32, one matrix
product over the memory-mapped vectors in blocks), each track keeps its best crop, and the top ``k``
tracks come back with the second where their best crop starts. The query's own track is left out unless
``include_self``.

Subspace weights are not an option of the search yet: checkpoints with named parts exist
(``configs/pretrain/subspaces.yaml``; ``EmbeddingModel.similarity(..., weights=...)`` weighs them pair by pair),
but the search scores the cosine of the whole embedding. A ``weights`` argument would enter ``_scores`` as a
weighted sum of per-part cosines; nothing else changes.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ssl_music.catalogue.store import Catalogue, CatalogueError
from ssl_music.errors import SSLMusicError

# Neither torch nor scipy (the decoder's resampler) is imported here: a track-id or range query only reads
# vectors the index holds, and importing them cost seconds of a query's wall time. An audio query imports
# the decoder (``blocks``) when it needs it; the model comes from the caller.
_TIME = r"\d+(?:\.\d+)?|\d+:[0-5]\d(?:\.\d+)?"          # seconds, or m:ss
_RANGE = re.compile(rf"^(?P<what>.+)@(?P<a>{_TIME})(?:-(?P<b>{_TIME}))?$")
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


def _seconds(text: str) -> float:
    if ":" in text:
        m, sec = text.split(":", 1)
        return int(m) * 60 + float(sec)
    return float(text)


def parse_query(text: str) -> tuple[str, float, float | None]:
    """``ID``, ``file.wav``, or either with ``@START`` (to the end), ``@START-END``; times in seconds or
    ``m:ss`` (``song.ogg@1:30-2:00``) -> (what, start_s, end_s or None)."""
    m = _RANGE.match(text)
    if not m:
        return text, 0.0, None
    a = _seconds(m["a"])
    if m["b"] is None:
        return m["what"], a, None
    b = _seconds(m["b"])
    if b <= a:
        raise SSLMusicError(f"query {text!r}: the range must end after it starts ({a:g} s - {b:g} s)")
    return m["what"], a, b


def split_query(cat: Catalogue, text: str) -> tuple[str, float, float | None]:
    """``parse_query``, unless the whole text is itself a track id or a file (a name with an @ in it)."""
    if cat.track_row(text) is not None or Path(text).is_file():
        return text, 0.0, None
    return parse_query(text)


def check_model(cat: Catalogue, model) -> None:
    """Refuse a model that is not the one the index was built with: its vectors live in another space."""
    if str(model.identity) != cat.identity:
        raise CatalogueError(f"{cat.path} was built with checkpoint {cat.meta.get('checkpoint')} (identity "
                          f"{cat.identity}); this model has identity {model.identity}: its embeddings are not "
                          f"comparable. Query with that checkpoint or build an index with this one")


def _track_vector(cat: Catalogue, row: int, start_s: float, end_s: float | None, text: str) -> np.ndarray:
    if end_s is None and start_s == 0:
        return np.asarray(cat.track_vectors[row], np.float32)
    rows = np.flatnonzero(cat.crop_track == row)
    starts = np.asarray(cat.crops.column("start_s"))[rows]
    crop_s = float(cat.meta["crop_s"])
    end = float("inf") if end_s is None else end_s
    keep = rows[(starts + crop_s > start_s) & (starts < end)]   # crops overlapping the range
    if not len(keep):
        shown = f"{start_s}-{end_s} s" if end_s is not None else f"{start_s:g} s onwards"
        raise SSLMusicError(f"query {text!r}: no crop of this track overlaps {shown} "
                            f"(the track has crops from 0 to {starts.max() + crop_s if len(starts) else 0:.1f} s)")
    return np.asarray(cat.crop_vectors[keep], np.float32).mean(axis=0)


def resolve_query(cat: Catalogue, text: str, model=None) -> Query:
    """A track id of the index (no model needed) or an audio file (embedded with ``model``, which must be
    the index's checkpoint). A ``@A-B`` suffix restricts either to seconds A to B."""
    what, a, b = split_query(cat, text)
    row = cat.track_row(what)
    if row is not None:
        return Query(text, _track_vector(cat, row, a, b, text), track_id=what, start_s=a, end_s=b)
    if not Path(what).is_file():
        raise SSLMusicError(f"query {what!r}: neither a track id of {cat.path} nor an audio file")
    if model is None:
        raise SSLMusicError(f"query {what!r} is audio: it needs the index's checkpoint to embed it")
    check_model(cat, model)
    from ssl_music.catalogue.blocks import file_blocks

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


def _scores(matrix: np.ndarray, inv_norm: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Cosine of every row of ``matrix`` with the unit vector ``q``, block by block (subspace weights would
    enter here: a weighted sum of per-part cosines). One matrix-vector product per block, memory-bound: the
    CLI keeps BLAS on one thread (``threads.single_threaded_blas``), which on busy cores beats a pool's hand-offs
    (measured on 2 shared cores, 100k crops: 4.4 ms with one thread, 166 ms with two)."""
    out = np.empty(len(matrix), np.float32)
    for start in range(0, len(matrix), BLOCK_ROWS):
        out[start:start + BLOCK_ROWS] = np.asarray(matrix[start:start + BLOCK_ROWS], np.float32) @ q
    return out * inv_norm


def search(cat: Catalogue, query: Query, k: int = 10, include_self: bool = False, level: str = "crop") -> Result:
    """The ``k`` best tracks for ``query``: by their best crop (``level="crop"``) or by track embedding."""
    if k < 1:
        raise SSLMusicError(f"-k must be >= 1, got {k}")
    q = np.asarray(query.vector, np.float32)
    q = q / max(float(np.linalg.norm(q)), 1e-12)
    n_tracks = cat.tracks.num_rows
    exclude = cat.track_row(query.track_id) if query.track_id is not None and not include_self else None
    if level == "track":
        best = _scores(cat.track_vectors, cat.track_inv_norm, q)
        where = np.full(n_tracks, -1, np.int64)
    elif level == "crop":
        sims = _scores(cat.crop_vectors, cat.crop_inv_norm, q)
        first = cat.track_first_crop        # crops are sorted by track: each track is one run of rows
        best = np.full(n_tracks, -np.inf, np.float32)
        has = np.diff(np.append(first, len(sims))) > 0
        best[has] = np.maximum.reduceat(sims, first[has])
        # the crop that reached each track's best: the first row of its run whose score equals it
        hit = np.where(sims == best[cat.crop_track], np.arange(len(sims)), len(sims))
        where = np.full(n_tracks, len(sims), np.int64)
        where[has] = np.minimum.reduceat(hit, first[has])
    else:
        raise SSLMusicError(f"unknown search level {level!r}: choose crop or track")
    if exclude is not None:
        best[exclude] = -np.inf
    k = min(k, n_tracks)
    top = np.argpartition(-best, k - 1)[:k]
    top = top[np.lexsort((top, -best[top]))]    # by similarity, ties by row
    ids = cat.tracks.column("track_id")
    paths = cat.tracks.column("path")
    hits = []
    for rank, row in enumerate(top.tolist(), 1):
        sim = float(best[row])
        if sim == -np.inf:
            break
        c = int(where[row])
        if c >= 0:
            start, src, sstart = (cat.crops.column(n)[c].as_py() for n in ("start_s", "source", "source_start_s"))
        else:
            start, src, sstart = 0.0, paths[row].as_py(), 0.0
        hits.append(Hit(rank, ids[row].as_py(), float(start), sim, cat.locate(src), float(sstart),
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
