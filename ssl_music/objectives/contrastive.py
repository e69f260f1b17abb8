"""Contrastive objective (SimCLR / COLA / MULE): K crops of one track, at most ``max_gap_s`` apart, each
augmented by the chain; NT-Xent generalised to K >= 2 views per track, with negatives from every rank and,
with ``objectives.contrastive.queue`` > 0, from past batches (:mod:`ssl_music.objectives.queue`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ssl_music.data.crops import last_start, read_crops, seconds_to_frames
from ssl_music.models.heads import projector
from ssl_music.errors import require as check
from ssl_music.objectives.base import Objective
from ssl_music.objectives.distributed import gather_rows


@dataclass
class ContrastiveObjectiveConfig:
    weight: float = 1.0
    temperature: float = 0.1
    queue: int = 0            # keys of past batches kept as extra negatives (ssl_music.objectives.queue); 0: in-batch only


@dataclass
class ContrastiveViewConfig:
    n_views: int = 2          # K crops of one track
    max_gap_s: float = 5.0    # crop starts at most this far apart (McCallum et al. 2024: ±5 s)


def contrastive_starts(n_frames: int, length: int, n_views: int, max_gap: int,
                       rng: np.random.Generator) -> np.ndarray:
    """K starts pairwise at most ``max_gap`` frames apart: a window of width ``max_gap`` (clipped to the
    segment) is placed uniformly, then every start is drawn uniformly inside it."""
    hi = last_start(n_frames, length)
    width = min(max_gap, hi)
    w0 = int(rng.integers(0, hi - width + 1))
    return w0 + rng.integers(0, width + 1, size=n_views)


def sample_contrastive(n_frames: int, read, length: int, n_views: int, max_gap: int,
                       rng: np.random.Generator) -> np.ndarray:
    """[n_views, length]"""
    return read_crops(read, contrastive_starts(n_frames, length, n_views, max_gap, rng), length)


def nt_xent(z: torch.Tensor, temperature: float, queue: torch.Tensor | None = None) -> torch.Tensor:
    """Normalised-temperature cross-entropy over ``z`` [B, K, D] (K views of each of B tracks).

    Row i = (track b, view k) is scored against every other row of the global batch (all ranks, gathered
    with gradient); its positives are the other K-1 views of track b:

        loss_i = -1/(K-1) * sum_{p in P(i)} log( exp(s_ip / t) / sum_{a != i} exp(s_ia / t) )

    with s the cosine similarity. For K = 2 this is SimCLR's NT-Xent exactly; for K > 2 it is the
    multi-positive form (SupCon's L_out with track identity as the label). ``queue`` [Q, D] (unit rows, no
    gradient): keys of past batches, every one a negative of every row (the sum over a then also runs over
    them, MoCo's denominator). Returns the mean over this rank's
    rows; under DDP with equal batch sizes, the mean of that value over ranks and the DDP-averaged gradients
    equal the single-process loss and gradients over the concatenated batch.
    """
    if z.dim() != 3 or z.shape[1] < 2:
        raise ValueError(f"nt_xent expects z of shape [B, K >= 2, D], got {tuple(z.shape)}")
    # float32 with autocast off: under bf16-mixed the matmul would cast back to bf16 (cosine resolution
    # ~0.004, ~0.04 in logits at t = 0.1), blurring near-identical positives against hard negatives.
    with torch.autocast(device_type=z.device.type, enabled=False):
        return _nt_xent_fp32(z.float(), temperature, None if queue is None else queue.float())


def _nt_xent_fp32(z: torch.Tensor, temperature: float, queue: torch.Tensor | None = None) -> torch.Tensor:
    b, k, d = z.shape
    local = F.normalize(z.reshape(b * k, d), dim=1)
    everyone, offset = gather_rows(local)
    logits = local @ everyone.T / temperature                                       # [b*k, N]
    rows = torch.arange(b * k, device=z.device)
    global_rows = rows + offset
    logits[rows, global_rows] = float("-inf")  # a view is not its own negative
    track = torch.arange(everyone.shape[0], device=z.device) // k
    positive = track[None, :] == (global_rows // k)[:, None]
    positive[rows, global_rows] = False
    if queue is not None and queue.shape[0]:
        # queue keys are negatives only: they extend the denominator, never the positives
        logits = torch.cat([logits, local @ queue.detach().T / temperature], dim=1)
        positive = torch.cat([positive, positive.new_zeros(b * k, queue.shape[0])], dim=1)
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    return -(log_prob.masked_fill(~positive, 0.0).sum(dim=1) / (k - 1)).mean()


# ------------------------------------------------------------------------------------------- the spec
def crops_sampler(views, sample_rate: int, n_views: int | None = None):
    """The view sampler of ``data.<name>`` sections with ``max_gap_s`` (and ``n_views``, unless given): crops of
    one track at most ``max_gap_s`` apart. Shared by every objective whose views are plain crops (BYOL, VICReg)."""
    n = int(views.n_views if n_views is None else n_views)
    max_gap = seconds_to_frames(views.max_gap_s, sample_rate)
    return lambda track_id, n_frames, read, length, rng: sample_contrastive(n_frames, read, length, n, max_gap, rng)



def _step(head, encoder, e: torch.Tensor, batch: dict, cfg, state=None) -> dict:
    # The projector reads only the learned part of the embedding (Encoder.content_dim), not the
    # periodicity block; see ssl_music.models.encoders.
    b, v = e.shape[:2]
    z = head(e[..., :encoder.content_dim].reshape(b * v, -1)).view(b, v, -1)
    if state is None:
        return {"contrastive": nt_xent(z, cfg.temperature)}
    loss = nt_xent(z, cfg.temperature, queue=state.current())
    if state.training:   # a validation or embedding pass leaves the queue alone
        state.push(F.normalize(z.detach().float().reshape(b * v, -1), dim=1))
    return {"contrastive": loss, "contrastive_queue_fill": state.count.float() / state.size}


def _state(cfg, encoder, heads):
    from ssl_music.objectives.queue import KeyQueue

    n = int(cfg.objectives.contrastive.queue)
    return KeyQueue(n, int(cfg.model.proj_dim)) if n > 0 else None


def _validate(obj, views) -> None:
    check(views.n_views >= 2, "data.contrastive.n_views", f"must be >= 2, got {views.n_views}")
    check(views.max_gap_s >= 0, "data.contrastive.max_gap_s", "must be >= 0")
    check(obj.temperature > 0, "objectives.contrastive.temperature", "must be > 0")
    check(isinstance(obj.queue, int) and obj.queue >= 0, "objectives.contrastive.queue",
          f"must be an integer >= 0 (0: in-batch negatives only), got {obj.queue}")


SPEC = Objective("contrastive", ContrastiveObjectiveConfig, ContrastiveViewConfig, crops_sampler, _step,
                 head="projector", build_head=lambda cfg, encoder: projector(cfg.model, encoder), validate=_validate,
                 state=_state)
