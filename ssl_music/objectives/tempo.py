"""Tempo-pair objective (Henkel et al. 2024): is the second crop at the same tempo as the first?

Two crops of one track (constant-tempo assumption) are time-stretched by rates r1 and r2 drawn by the
augmenter (:class:`PairStretch`); label *same* when |log(r1/r2)| <= log(tolerance), classes balanced."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

import numpy as np
import torch
import torch.nn.functional as F

from ssl_music.data.crops import last_start, read_crops
from ssl_music.models.heads import tempo_head
from ssl_music.errors import require as check
from ssl_music.objectives.base import Objective, PairStretch


@dataclass
class TempoObjectiveConfig:
    weight: float = 0.0
    # the embedding parts (objectives.subspaces.names) the head reads, e.g. [tempo]; []: the whole embedding,
    # as every config written before this key (a head reading every part trains every part's layers)
    reads: List[str] = field(default_factory=list)


@dataclass
class TempoViewConfig:
    min_rate: float = 0.8      # stretch rates drawn in [min_rate, max_rate]; r > 1 makes music faster
    max_rate: float = 1.25
    tolerance: float = 1.04    # "same" iff |log(r1/r2)| <= log(tolerance)  (Acc1)
    same_p: float = 0.5        # share of "same" pairs (balanced classes)


def tempo_starts(n_frames: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """Two independent starts anywhere in the segment (constant-tempo assumption)."""
    return rng.integers(0, last_start(n_frames, length) + 1, size=2)


def sample_tempo(n_frames: int, read, length: int, rng: np.random.Generator) -> np.ndarray:
    """[2, length]"""
    return read_crops(read, tempo_starts(n_frames, length, rng), length)


def tempo_bce(logits: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of ``logits`` [B] against ``same`` [B] (1 = same tempo), mean over the batch."""
    return F.binary_cross_entropy_with_logits(logits.float(), same.to(torch.float32))


# ------------------------------------------------------------------------------------------- the spec
def _sampler(views, sample_rate: int):
    return lambda track_id, n_frames, read, length, rng: sample_tempo(n_frames, read, length, rng)


def _step(head, encoder, e: torch.Tensor, batch: dict, cfg) -> dict:
    logits = head(e[:, 0], e[:, 1])
    same = batch["tempo_same"].to(logits.dtype)
    with torch.no_grad():
        acc = ((logits > 0).to(logits.dtype) == same).float().mean()
    return {"tempo": tempo_bce(logits, same), "tempo_acc": acc}


def _pair(t) -> PairStretch:
    return PairStretch(float(t.min_rate), float(t.max_rate), float(t.tolerance), float(t.same_p))


def _validate(obj, tp) -> None:
    check(0 < tp.min_rate <= tp.max_rate, "data.tempo.min_rate",
          f"need 0 < min_rate <= max_rate, got {tp.min_rate}, {tp.max_rate}")
    check(tp.tolerance > 1, "data.tempo.tolerance", f"must be > 1, got {tp.tolerance}")
    check(0 <= tp.same_p <= 1, "data.tempo.same_p", f"must be in [0, 1], got {tp.same_p}")


def _check_config(cfg) -> None:
    # The pair's label is its rates; a chain entry that rescales time on top (the random-resize crop) would
    # change the tempo of one view and not the label. time_stretch is taken out of the pair's chain for this.
    from ssl_music.augment.chain import resolve_chain

    rrc = resolve_chain(cfg.augment.chain).get("random_resize_crop")
    if rrc is not None and rrc["p"] > 0:
        prm = rrc["params"]
        check(prm["min_time_scale"] == prm["max_time_scale"] == 1.0 and prm["virtual_time"] == 1.0,
              "augment.chain.random_resize_crop",
              "rescales time, which would change the tempo of the tempo objective's views without their label: "
              "set its min/max_time_scale and virtual_time to 1 or objectives.tempo.weight=0")


def _build_head(cfg, encoder):
    from ssl_music.objectives import parts_read   # the registry imports this module

    return tempo_head(cfg.model, encoder, parts_read(cfg, "tempo", encoder))


SPEC = Objective("tempo", TempoObjectiveConfig, TempoViewConfig, _sampler, _step,
                 head="tempo_head", build_head=_build_head, pair=_pair, keep_head=True, validate=_validate,
                 check_config=_check_config, reads=lambda obj: list(obj.reads))
