"""View sampling: turn one segment into the crops each enabled objective trains on (DESIGN §3).

Each objective brings its own sampler (``Objective.sampler``, built from its ``data.<name>`` section);
samplers work on positions first and only then call ``read(start, frames)``, which seek-decodes those
frames from the segment's FLAC bytes -- so a 60 s segment costs a few 3 s decodes, not a full decode.
Crop positions and reads shared by the samplers live in :mod:`ssl_music.data.crops`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ssl_music.data.crops import Reader, seconds_to_frames, source_frames
from ssl_music.objectives import OBJECTIVES


def source_lengths(data_cfg, views: Sequence[str], augmenter=None) -> dict[str, int]:
    """Frames to decode per view: crop_s * sr * the augmenter's source factor for that view. Without an
    augmenter, crops are cut to exactly L = round(crop_s * sr)."""
    sr, crop_s = int(data_cfg.sample_rate), float(data_cfg.crop_s)
    if augmenter is None:
        return {v: seconds_to_frames(crop_s, sr) for v in views}
    return {v: source_frames(crop_s, sr, augmenter.source_factor(v)) for v in views}


class ViewSampler:
    """One segment -> the sample dict: numpy float32 views [V, source_len] per objective + "track_id".

    Samplers run in registry order, so the random stream does not depend on the order ``views`` lists them."""

    def __init__(self, data_cfg, views: Sequence[str], source_len: dict[str, int]):
        unknown = [v for v in views if v not in OBJECTIVES]
        if unknown or not views:
            raise ValueError(f"views must be a non-empty subset of {tuple(OBJECTIVES)}, got {list(views)}")
        self.views = [name for name in OBJECTIVES if name in views]
        self.source_len = dict(source_len)
        self.sample_rate = int(data_cfg.sample_rate)
        self.samplers = {name: OBJECTIVES[name].sampler(data_cfg[name], self.sample_rate) for name in self.views}

    def __call__(self, track_id: str, n_frames: int, read: Reader, rng: np.random.Generator) -> dict:
        out: dict = {"track_id": track_id}
        for name, sample in self.samplers.items():
            out[name] = sample(track_id, n_frames, read, self.source_len[name], rng)
        return out
