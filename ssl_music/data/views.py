"""View samplers: turn one segment into the crops an objective trains on (DESIGN §3).

Samplers work on positions first (``*_starts``: pure functions of the segment length in frames and a
``np.random.Generator``) and only then call ``read(start, frames)``, which seek-decodes those frames from
the segment's FLAC bytes -- so a 60 s segment costs a few 3 s decodes, not a full decode. Config
distances are seconds; everything here is frames (samples at the shard's sample rate).

A crop is ``length`` frames starting at ``start``; valid starts are ``0 .. n_frames - length``. A
segment shorter than one crop yields the whole segment zero-padded at the end (the last segment of a
track can be short).
"""
from __future__ import annotations

import math
from collections import deque
from typing import Callable, Sequence

import numpy as np

Reader = Callable[[int, int], np.ndarray]   # read(start_frame, frames) -> float32 [<= frames]

VIEWS = ("contrastive", "triplet", "tempo")
OTHER_TRACK_BUFFER = 16   # recent crops kept per worker for other-track negatives


def seconds_to_frames(seconds: float, sample_rate: int) -> int:
    return int(round(seconds * sample_rate))


def _last_start(n_frames: int, length: int) -> int:
    return max(0, n_frames - length)


def read_crops(read: Reader, starts: Sequence[int], length: int) -> np.ndarray:
    """[len(starts), length] float32; short reads (segment end) are zero-padded."""
    out = np.zeros((len(starts), length), dtype=np.float32)
    for i, s in enumerate(starts):
        x = read(int(s), length)
        out[i, : len(x)] = x[:length]
    return out


# ------------------------------------------------------------------------------------ positions (pure)
def contrastive_starts(n_frames: int, length: int, n_views: int, max_gap: int,
                       rng: np.random.Generator) -> np.ndarray:
    """K starts pairwise at most ``max_gap`` frames apart: a window of width ``max_gap`` (clipped to the
    segment) is placed uniformly, then every start is drawn uniformly inside it."""
    hi = _last_start(n_frames, length)
    width = min(max_gap, hi)
    w0 = int(rng.integers(0, hi - width + 1))
    return w0 + rng.integers(0, width + 1, size=n_views)


def _uniform_from(intervals: list[tuple[int, int]], rng: np.random.Generator) -> int:
    """Uniform integer from a union of disjoint closed intervals [a, b] (empty ones skipped)."""
    spans = [(a, b) for a, b in intervals if b >= a]
    sizes = np.array([b - a + 1 for a, b in spans], dtype=np.int64)
    k = int(rng.integers(0, int(sizes.sum())))
    for (a, _), size in zip(spans, sizes):
        if k < size:
            return a + k
        k -= int(size)
    raise AssertionError("unreachable: k < sum(sizes)")


def triplet_starts(n_frames: int, length: int, pos_max: int, neg_min: int, neg_max: int,
                   rng: np.random.Generator, need_negative: bool = True) -> tuple[np.ndarray, bool]:
    """(starts [anchor, positive, negative], fallback).

    The anchor is drawn uniformly among positions that admit a negative at distance in
    [neg_min, neg_max]; the positive within ``pos_max`` of it; the negative uniformly over the valid
    positions on either side. When the segment is too short for any such pair (last start < neg_min)
    the negative goes to the *farthest* position: anchor at one end, negative at the other, and
    ``fallback`` is True -- the best same-track negative this segment can give. With
    ``need_negative=False`` (other-track negatives) the anchor is uniform over the segment and the
    returned negative start is the anchor's (unused)."""
    hi = _last_start(n_frames, length)
    if not need_negative:
        a = int(rng.integers(0, hi + 1))
        fallback = False
    elif hi < neg_min:
        a = 0 if rng.random() < 0.5 else hi
        fallback = True
    else:
        a = _uniform_from([(0, hi - neg_min), (neg_min, hi)], rng) if hi < 2 * neg_min \
            else int(rng.integers(0, hi + 1))
        fallback = False
    p = int(rng.integers(max(0, a - pos_max), min(hi, a + pos_max) + 1))
    if not need_negative:
        n = a
    elif fallback:
        n = hi - a
    else:
        n = _uniform_from([(max(0, a - neg_max), a - neg_min), (a + neg_min, min(hi, a + neg_max))], rng)
    return np.array([a, p, n], dtype=np.int64), fallback


def tempo_starts(n_frames: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """Two independent starts anywhere in the segment (constant-tempo assumption)."""
    return rng.integers(0, _last_start(n_frames, length) + 1, size=2)


# ------------------------------------------------------------------------------------ crops
def sample_contrastive(n_frames: int, read: Reader, length: int, n_views: int, max_gap: int,
                       rng: np.random.Generator) -> np.ndarray:
    """[n_views, length]"""
    return read_crops(read, contrastive_starts(n_frames, length, n_views, max_gap, rng), length)


def sample_triplet(n_frames: int, read: Reader, length: int, pos_max: int, neg_min: int, neg_max: int,
                   rng: np.random.Generator, other: np.ndarray | None = None) -> np.ndarray:
    """[3, length]: anchor, positive, negative. ``other`` (a [length] crop of another track) replaces the
    same-track negative when given (triplet.negative = other_track)."""
    starts, _ = triplet_starts(n_frames, length, pos_max, neg_min, neg_max, rng,
                               need_negative=other is None)
    if other is None:
        return read_crops(read, starts, length)
    out = np.empty((3, length), dtype=np.float32)
    out[:2] = read_crops(read, starts[:2], length)
    out[2] = other
    return out


def sample_tempo(n_frames: int, read: Reader, length: int, rng: np.random.Generator) -> np.ndarray:
    """[2, length]"""
    return read_crops(read, tempo_starts(n_frames, length, rng), length)


# ------------------------------------------------------------------------------------ per-sample driver
def source_lengths(data_cfg, views: Sequence[str], augmenter=None) -> dict[str, int]:
    """Frames to decode per view: crop_s * sr * source_factor (contract: triplet uses the contrastive
    factor). Without an augmenter, crops are cut to exactly L = round(crop_s * sr)."""
    sr, crop_s = int(data_cfg.sample_rate), float(data_cfg.crop_s)
    out = {}
    for v in views:
        if augmenter is None:
            out[v] = seconds_to_frames(crop_s, sr)
        else:
            factor = augmenter.source_factor("tempo" if v == "tempo" else "contrastive")
            out[v] = int(math.ceil(crop_s * sr * factor))
    return out


class ViewSampler:
    """One segment -> the contract's sample dict (numpy float32 views + "track_id").

    Holds the only state of view sampling: a small buffer of recent crops for other-track negatives.
    Until the buffer holds a crop of another track (the first samples a worker sees), the triplet
    falls back to a same-track negative."""

    def __init__(self, data_cfg, views: Sequence[str], source_len: dict[str, int]):
        unknown = [v for v in views if v not in VIEWS]
        if unknown or not views:
            raise ValueError(f"views must be a non-empty subset of {VIEWS}, got {list(views)}")
        self.views = list(views)
        self.source_len = dict(source_len)
        sr = int(data_cfg.sample_rate)
        self.sample_rate = sr
        self.n_views = int(data_cfg.contrastive.n_views)
        self.max_gap = seconds_to_frames(data_cfg.contrastive.max_gap_s, sr)
        t = data_cfg.triplet
        self.pos_max = seconds_to_frames(t.pos_max_s, sr)
        self.neg_min = seconds_to_frames(t.neg_min_s, sr)
        self.neg_max = seconds_to_frames(t.neg_max_s, sr)
        self.other_track = t.negative == "other_track"
        self._recent: deque[tuple[str, np.ndarray]] = deque(maxlen=OTHER_TRACK_BUFFER)

    def _other_crop(self, track_id: str, rng: np.random.Generator) -> np.ndarray | None:
        pool = [x for tid, x in self._recent if tid != track_id]
        return pool[int(rng.integers(0, len(pool)))] if pool else None

    def __call__(self, track_id: str, n_frames: int, read: Reader, rng: np.random.Generator) -> dict:
        out: dict = {"track_id": track_id}
        if "contrastive" in self.views:
            out["contrastive"] = sample_contrastive(n_frames, read, self.source_len["contrastive"],
                                                    self.n_views, self.max_gap, rng)
        if "triplet" in self.views:
            length = self.source_len["triplet"]
            other = self._other_crop(track_id, rng) if self.other_track else None
            out["triplet"] = sample_triplet(n_frames, read, length, self.pos_max, self.neg_min,
                                            self.neg_max, rng, other=other)
            if self.other_track:
                self._recent.append((track_id, out["triplet"][0].copy()))
        if "tempo" in self.views:
            out["tempo"] = sample_tempo(n_frames, read, self.source_len["tempo"], rng)
        return out
