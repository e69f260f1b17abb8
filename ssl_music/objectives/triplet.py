"""Temporal-proximity triplet objective (McCallum 2019; Lee et al. 2020): anchor and positive close in time,
negative far in the same track (or from another track); margin loss on L2-normalised embeddings."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ssl_music.data.crops import last_start, read_crops, seconds_to_frames, uniform_from
from ssl_music.models.heads import projector
from ssl_music.errors import require as check
from ssl_music.objectives.base import Objective

OTHER_TRACK_BUFFER = 16   # recent crops kept per worker for other-track negatives


@dataclass
class TripletObjectiveConfig:
    weight: float = 0.0
    margin: float = 0.2
    hardest: bool = False     # hardest negative in batch instead of the sampled one


@dataclass
class TripletViewConfig:
    pos_max_s: float = 4.0     # positive starts within this many seconds of the anchor
    neg_min_s: float = 10.0    # same-track negative at least this far ...
    neg_max_s: float = 40.0    # ... and at most this far from the anchor
    negative: str = "same_track"  # same_track | other_track


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
    hi = last_start(n_frames, length)
    if not need_negative:
        a = int(rng.integers(0, hi + 1))
        fallback = False
    elif hi < neg_min:
        a = 0 if rng.random() < 0.5 else hi
        fallback = True
    else:
        a = uniform_from([(0, hi - neg_min), (neg_min, hi)], rng) if hi < 2 * neg_min \
            else int(rng.integers(0, hi + 1))
        fallback = False
    p = int(rng.integers(max(0, a - pos_max), min(hi, a + pos_max) + 1))
    if not need_negative:
        n = a
    elif fallback:
        n = hi - a
    else:
        n = uniform_from([(max(0, a - neg_max), a - neg_min), (a + neg_min, min(hi, a + neg_max))], rng)
    return np.array([a, p, n], dtype=np.int64), fallback


def sample_triplet(n_frames: int, read, length: int, pos_max: int, neg_min: int, neg_max: int,
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


class TripletSampler:
    """Holds the only state of view sampling: a small buffer of recent anchors for other-track negatives.
    Until the buffer holds a crop of another track (the first samples a worker sees), the triplet
    falls back to a same-track negative."""

    def __init__(self, views, sample_rate: int):
        self.pos_max = seconds_to_frames(views.pos_max_s, sample_rate)
        self.neg_min = seconds_to_frames(views.neg_min_s, sample_rate)
        self.neg_max = seconds_to_frames(views.neg_max_s, sample_rate)
        self.other_track = views.negative == "other_track"
        self._recent: deque[tuple[str, np.ndarray]] = deque(maxlen=OTHER_TRACK_BUFFER)

    def _other_crop(self, track_id: str, rng: np.random.Generator) -> np.ndarray | None:
        pool = [x for tid, x in self._recent if tid != track_id]
        return pool[int(rng.integers(0, len(pool)))] if pool else None

    def __call__(self, track_id: str, n_frames: int, read, length: int, rng: np.random.Generator) -> np.ndarray:
        other = self._other_crop(track_id, rng) if self.other_track else None
        out = sample_triplet(n_frames, read, length, self.pos_max, self.neg_min, self.neg_max, rng, other=other)
        if self.other_track:
            self._recent.append((track_id, out[0].copy()))
        return out


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float,
                 hardest: bool = False) -> torch.Tensor:
    """mean_i max(0, d(a_i, p_i) - d(a_i, n_i) + margin), inputs [B, D], d = plain Euclidean distance.

    Plain (not squared) distance between unit vectors lies in [0, 2], so ``margin`` is in the same units as
    the distances it separates (0.1-0.2 as in the papers). With ``hardest`` the negative for anchor i is
    the closest of its own sampled negative n_i and every embedding (anchor, positive, negative) of the
    other rows j != i; rows are assumed to come from distinct tracks.
    """
    a = F.normalize(anchor.float(), dim=1)
    p = F.normalize(positive.float(), dim=1)
    n = F.normalize(negative.float(), dim=1)
    d_pos = _unit_distance(a, p)
    if not hardest:
        d_neg = _unit_distance(a, n)
    else:
        bsz = a.shape[0]
        candidates = torch.cat([a, p, n])                                           # [3B, D]
        dist = _unit_distance(a[:, None, :], candidates[None, :, :])                # [B, 3B]
        row = torch.arange(bsz, device=a.device)[:, None]
        owner = torch.arange(bsz, device=a.device).repeat(3)[None, :]
        is_negative = (torch.arange(3 * bsz, device=a.device) >= 2 * bsz)[None, :]
        allowed = (owner != row) | ((owner == row) & is_negative)
        d_neg = dist.masked_fill(~allowed, float("inf")).amin(dim=1)
    return torch.relu(d_pos - d_neg + margin).mean()


def _unit_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Euclidean distance between unit vectors via 2 - 2cos; the clamp keeps the gradient finite at 0."""
    return (2 - 2 * (x * y).sum(dim=-1)).clamp_min(1e-12).sqrt()


# ------------------------------------------------------------------------------------------- the spec
def _step(head, encoder, e: torch.Tensor, batch: dict, cfg) -> dict:
    b, v = e.shape[:2]
    z = head(e[..., :encoder.content_dim].reshape(b * v, -1)).view(b, v, -1)
    return {"triplet": triplet_loss(z[:, 0], z[:, 1], z[:, 2], cfg.margin, hardest=cfg.hardest)}


def _validate(obj, t) -> None:
    check(t.pos_max_s >= 0, "data.triplet.pos_max_s", "must be >= 0")
    check(t.neg_min_s >= t.pos_max_s, "data.triplet.neg_min_s", f"must be >= pos_max_s ({t.pos_max_s}), got {t.neg_min_s}")
    check(t.neg_max_s >= t.neg_min_s, "data.triplet.neg_max_s", f"must be >= neg_min_s ({t.neg_min_s}), got {t.neg_max_s}")
    check(t.negative in ("same_track", "other_track"), "data.triplet.negative",
          f"must be same_track or other_track, got '{t.negative}'")
    check(obj.margin >= 0, "objectives.triplet.margin", "must be >= 0")


SPEC = Objective("triplet", TripletObjectiveConfig, TripletViewConfig, TripletSampler, _step,
                 head="projector", build_head=lambda cfg, encoder: projector(cfg.model, encoder), validate=_validate)
