"""BYOL (Grill et al., NeurIPS 2020), as BYOL-A uses it for audio (Niizumi et al., IJCNN 2021 / TASLP 2023):
two crops of one track through the chain; the online network (encoder, projector, predictor) predicts the
target network's projection of the other view; the target (encoder and projector) is an exponential moving
average of the online one and takes no gradient. No negatives, so nothing depends on the batch size but the
BatchNorm statistics.

    loss = mean_b [ (2 - 2 cos(q(b, 1), z'(b, 2))) + (2 - 2 cos(q(b, 2), z'(b, 1))) ]

The target moves once per optimizer step, after it: xi <- tau * xi + (1 - tau) * theta (``after_step``,
called by the LightningModule's ``optimizer_step``; not per micro-batch under ``accumulate_grad_batches``,
and on every rank from the same DDP-synchronised weights, so every rank holds the same target). tau is
constant (BYOL-A's 0.99; BYOL's cosine schedule to 1 is for runs of hundreds of epochs). The target's
BatchNorm running statistics are its own (it runs in train mode on the views, as the reference
implementations do); only parameters are averaged. The target lives under ``states.byol.`` of the
LightningModule: saved and restored with the checkpoint, never exported (readers take ``encoder.`` and the
kept heads only). The online projector and predictor (head ``byol``) are dropped after pretraining too.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ssl_music.errors import require as check
from ssl_music.models.heads import ProjectionHead
from ssl_music.objectives.base import Objective, refuse_with_subspaces
from ssl_music.objectives.contrastive import crops_sampler


@dataclass
class BYOLObjectiveConfig:
    weight: float = 0.0
    tau: float = 0.99          # target = tau * target + (1 - tau) * online, once per optimizer step
    hidden: int = 4096         # projector and predictor: Linear(hidden)-BN-ReLU-Linear(out_dim), BYOL-A's 4096 / 256
    out_dim: int = 256


@dataclass
class BYOLViewConfig:
    max_gap_s: float = 5.0     # the two crops start at most this far apart (BYOL-A: 0, one crop twice)


def byol_loss(online: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``online`` [B, 2, D] (predictions q), ``target`` [B, 2, D] (target projections z', no gradient):
    each view's prediction against the other view's target, 2 - 2 cos summed over the two, mean over B."""
    if online.dim() != 3 or online.shape[1] != 2 or online.shape != target.shape:
        raise ValueError(f"byol_loss expects two [B, 2, D] tensors of one shape, got {tuple(online.shape)}, "
                         f"{tuple(target.shape)}")
    with torch.autocast(device_type=online.device.type, enabled=False):
        q = F.normalize(online.float(), dim=-1)
        z = F.normalize(target.detach().float(), dim=-1).flip(1)   # view 1's target for view 0 and back
        return (2 - 2 * (q * z).sum(-1)).sum(1).mean()


class BYOLHead(nn.Module):
    """The online projector and predictor."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int):
        super().__init__()
        self.projector = ProjectionHead(in_dim, hidden, out_dim)
        self.predictor = ProjectionHead(out_dim, hidden, out_dim)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return self.predictor(self.projector(e))


class EMATarget(nn.Module):
    """The target network: copies of the online encoder and projector, moved by :meth:`update`."""

    def __init__(self, encoder: nn.Module, projector: nn.Module):
        super().__init__()
        self.encoder = copy.deepcopy(encoder).requires_grad_(False)
        self.projector = copy.deepcopy(projector).requires_grad_(False)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))   # optimizer steps seen

    @torch.no_grad()
    def forward(self, x: torch.Tensor, content_dim: int) -> torch.Tensor:
        """Views [N, ...] (waveforms or the spectral backend's spectrograms) -> target projections [N, D]."""
        return self.projector(self.encoder(x.float())[..., :content_dim])

    @torch.no_grad()
    def update(self, encoder: nn.Module, projector: nn.Module, tau: float) -> None:
        for mine, online in ((self.encoder, encoder), (self.projector, projector)):
            for t, o in zip(mine.parameters(), online.parameters()):
                t.mul_(tau).add_(o.detach().to(t.dtype), alpha=1.0 - tau)
        self.updates += 1


# ------------------------------------------------------------------------------------------- the spec
def _sampler(views, sample_rate: int):
    return crops_sampler(views, sample_rate, n_views=2)


def _head(cfg, encoder) -> BYOLHead:
    o = cfg.objectives.byol
    return BYOLHead(encoder.content_dim, int(o.hidden), int(o.out_dim))


def _state(cfg, encoder, heads) -> EMATarget:
    return EMATarget(encoder, heads["byol"].projector)


def _after_step(state: EMATarget, encoder, heads, cfg) -> None:
    state.update(encoder, heads["byol"].projector, float(cfg.tau))


def _step(head, encoder, e: torch.Tensor, batch: dict, cfg, state: EMATarget) -> dict:
    b, v = e.shape[:2]
    q = head(e[..., :encoder.content_dim].reshape(b * v, -1)).view(b, v, -1)
    x = batch["byol"]
    z = state(x.reshape(b * v, *x.shape[2:]), encoder.content_dim).view(b, v, -1)
    return {"byol": byol_loss(q, z)}


def _validate(obj, views) -> None:
    check(0 <= obj.tau < 1, "objectives.byol.tau", f"must be in [0, 1), got {obj.tau}")
    check(obj.hidden > 0, "objectives.byol.hidden", f"must be > 0, got {obj.hidden}")
    check(obj.out_dim > 0, "objectives.byol.out_dim", f"must be > 0, got {obj.out_dim}")
    check(views.max_gap_s >= 0, "data.byol.max_gap_s", "must be >= 0")


def _check_config(cfg) -> None:
    refuse_with_subspaces("byol", cfg)


SPEC = Objective("byol", BYOLObjectiveConfig, BYOLViewConfig, _sampler, _step, head="byol", build_head=_head,
                 validate=_validate, check_config=_check_config, state=_state, after_step=_after_step)
