"""Crop positions and reads shared by every objective's view sampler (DESIGN §3).

Config distances are seconds; everything here is frames (samples at the shard's sample rate). A crop is
``length`` frames starting at ``start``; valid starts are ``0 .. n_frames - length``. A segment shorter
than one crop yields the whole segment zero-padded at the end (the last segment of a track can be short).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

Reader = Callable[[int, int], np.ndarray]   # read(start_frame, frames) -> float32 [<= frames]


def seconds_to_frames(seconds: float, sample_rate: int) -> int:
    """round(seconds * sample_rate): the crop length of every reader (loader, augmenter, embedding API,
    evaluation), so a crop of ``crop_s`` is the same number of samples wherever it is cut."""
    return int(round(seconds * sample_rate))


def source_frames(crop_s: float, sample_rate: int, factor: float) -> int:
    """Frames to decode for one view whose augmentation reads ``factor`` x its output length (a stretch by
    r reads crop_s * r seconds): the one crop-length formula of the loader and the augmenter."""
    return int(math.ceil(crop_s * sample_rate * factor))


def last_start(n_frames: int, length: int) -> int:
    return max(0, n_frames - length)


def read_crops(read: Reader, starts: Sequence[int], length: int) -> np.ndarray:
    """[len(starts), length] float32; short reads (segment end) are zero-padded."""
    out = np.zeros((len(starts), length), dtype=np.float32)
    for i, s in enumerate(starts):
        x = read(int(s), length)
        out[i, : len(x)] = x[:length]
    return out


def uniform_from(intervals: list[tuple[int, int]], rng: np.random.Generator) -> int:
    """Uniform integer from a union of disjoint closed intervals [a, b] (empty ones skipped)."""
    spans = [(a, b) for a, b in intervals if b >= a]
    sizes = np.array([b - a + 1 for a, b in spans], dtype=np.int64)
    k = int(rng.integers(0, int(sizes.sum())))
    for (a, _), size in zip(spans, sizes):
        if k < size:
            return a + k
        k -= int(size)
    raise AssertionError("unreachable: k < sum(sizes)")
