"""View sampling: turn one segment into the crops each enabled objective trains on (DESIGN §3).

Each objective brings its own sampler (``Objective.sampler``, built from its ``data.<name>`` section), handed
in as ``{name: factory}`` (``ssl_music.objectives.view_samplers``: data does not import the objectives);
samplers work on positions first and only then call ``read(start, frames)``, which seek-decodes those
frames from the segment's FLAC bytes -- so a 60 s segment costs a few 3 s decodes, not a full decode.
Crop positions and reads shared by the samplers live in :mod:`ssl_music.data.crops`.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from ssl_music.data.crops import Reader, seconds_to_frames, source_frames


def source_lengths(data_cfg, views: Sequence[str], augmenter=None) -> dict[str, int]:
    """Frames to decode per view: crop_s * sr * the augmenter's source factor for that view. Without an
    augmenter, crops are cut to exactly L = round(crop_s * sr)."""
    sr, crop_s = int(data_cfg.sample_rate), float(data_cfg.crop_s)
    if augmenter is None:
        return {v: seconds_to_frames(crop_s, sr) for v in views}
    return {v: source_frames(crop_s, sr, augmenter.source_factor(v)) for v in views}


class ViewSampler:
    """One segment -> the sample dict: numpy float32 views [V, source_len] per objective + "track_id".

    ``samplers`` maps each view to its objective's sampler factory, called with ``data.<name>`` and the sample
    rate; they run in the mapping's order (view_samplers gives registry order, so the random stream does not
    depend on the order a caller lists the views in)."""

    def __init__(self, data_cfg, samplers: Mapping[str, Callable], source_len: dict[str, int]):
        if not samplers:
            raise ValueError("no views to sample: give at least one objective's sampler")
        self.views = list(samplers)
        self.source_len = dict(source_len)
        self.sample_rate = int(data_cfg.sample_rate)
        self.samplers = {name: make(data_cfg[name], self.sample_rate) for name, make in samplers.items()}

    def __call__(self, track_id: str, n_frames: int, read: Reader, rng: np.random.Generator) -> dict:
        out: dict = {"track_id": track_id}
        for name, sample in self.samplers.items():
            out[name] = sample(track_id, n_frames, read, self.source_len[name], rng)
        return out
