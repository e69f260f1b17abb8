"""VICReg (Bardes, Ponce, LeCun, ICLR 2022): two crops of one track, each through the chain, an expander on
the encoder's learned block, and a loss with no negatives and no target network:

    L = lambda * invariance + mu * variance + nu * covariance

Why VICReg rather than Barlow Twins (the other redundancy-reduction method of lightly and solo-learn), argued,
not measured: at the batch sizes this project trains at (16 tracks on 2 CPU cores) a D x D statistic of N < D
rows has rank at most N - 1, so neither method can decorrelate D > N - 1 dimensions. Barlow Twins' whole loss
is that statistic (the cross-correlation of the two branches, standardised per dimension over the batch,
against the identity); in VICReg it is only the covariance term, weighted 1 against 25 for the variance
hinge, which keeps every dimension alive and which a batch of 16 can satisfy, and each term is taken per
branch, with no standardisation by a 16-row estimate of each dimension's spread.

DDP: variance and covariance are statistics of the *global* batch, so both branches are gathered from every
rank with gradient (:func:`~ssl_music.objectives.distributed.gather_with_grad`) and every rank computes the
loss of the whole batch. The gather's backward sums over ranks, DDP averages, so the update is the
single-process one over the concatenated batch (tests/objectives/test_methods_distributed.py). The expander's
BatchNorm sees only its rank's rows unless ``trainer.sync_batchnorm`` is on.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ssl_music.errors import require as check
from ssl_music.objectives.base import Objective, refuse_with_subspaces
from ssl_music.objectives.contrastive import crops_sampler
from ssl_music.objectives.distributed import gather_with_grad


@dataclass
class VICRegObjectiveConfig:
    weight: float = 0.0
    invariance: float = 25.0   # lambda, mu, nu: the paper's 25 / 25 / 1
    variance: float = 25.0
    covariance: float = 1.0
    hidden: int = 512          # expander widths (the paper: 8192-8192-8192, scaled for 2 CPU cores)
    out_dim: int = 512


@dataclass
class VICRegViewConfig:
    max_gap_s: float = 5.0     # the two crops start at most this far apart (as data.contrastive)


EPS = 1e-4   # inside the square root of the variance, as the paper


def _variance(z: torch.Tensor) -> torch.Tensor:
    std = torch.sqrt(z.var(dim=0) + EPS)          # unbiased, as torch.var and the paper's code
    return F.relu(1.0 - std).mean()


def _covariance(z: torch.Tensor) -> torch.Tensor:
    n, d = z.shape
    z = z - z.mean(dim=0)
    cov = z.T @ z / (n - 1)
    off = cov - torch.diag(torch.diagonal(cov))
    return off.pow(2).sum() / d


def vicreg_loss(za: torch.Tensor, zb: torch.Tensor, invariance: float = 25.0, variance: float = 25.0,
                covariance: float = 1.0) -> tuple[torch.Tensor, dict]:
    """(loss, terms) for the expander outputs of two views ``za``, ``zb`` [N, D] (this rank's rows; the
    statistics are taken over every rank's, gathered with gradient):

        invariance = mean over rows and dims of (za - zb)^2
        variance   = (mean_d relu(1 - sqrt(var_d(za) + 1e-4)) + same for zb) / 2
        covariance = (sum_{i != j} cov(za)_ij^2 + same for zb) / D

    with var and cov unbiased (over N - 1). Every rank returns the loss of the whole batch."""
    if za.dim() != 2 or za.shape != zb.shape or za.shape[0] < 1:
        raise ValueError(f"vicreg_loss expects two [N, D] tensors of one shape, got {tuple(za.shape)}, {tuple(zb.shape)}")
    with torch.autocast(device_type=za.device.type, enabled=False):
        a, b = gather_with_grad(za.float()), gather_with_grad(zb.float())
        if a.shape[0] < 2:
            raise ValueError("vicreg_loss needs at least 2 rows over all ranks (a variance over one row is undefined)")
        inv = F.mse_loss(a, b)
        var = (_variance(a) + _variance(b)) / 2
        cov = _covariance(a) + _covariance(b)
        loss = invariance * inv + variance * var + covariance * cov
    return loss, {"invariance": inv.detach(), "variance": var.detach(), "covariance": cov.detach()}


class Expander(nn.Sequential):
    """VICReg's expander: Linear-BN-ReLU, Linear-BN-ReLU, Linear."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int):
        super().__init__(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, out_dim))


# ------------------------------------------------------------------------------------------- the spec
def _sampler(views, sample_rate: int):
    return crops_sampler(views, sample_rate, n_views=2)


def _head(cfg, encoder) -> Expander:
    o = cfg.objectives.vicreg
    return Expander(encoder.content_dim, int(o.hidden), int(o.out_dim))


def _step(head, encoder, e: torch.Tensor, batch: dict, cfg) -> dict:
    b, v = e.shape[:2]
    z = head(e[..., :encoder.content_dim].reshape(b * v, -1)).view(b, v, -1)
    loss, terms = vicreg_loss(z[:, 0], z[:, 1], cfg.invariance, cfg.variance, cfg.covariance)
    return {"vicreg": loss, **{f"vicreg/{k}": t for k, t in terms.items()}}


def _validate(obj, views) -> None:
    for key in ("invariance", "variance", "covariance"):
        check(getattr(obj, key) >= 0, f"objectives.vicreg.{key}", f"must be >= 0, got {getattr(obj, key)}")
    check(obj.hidden > 0, "objectives.vicreg.hidden", f"must be > 0, got {obj.hidden}")
    check(obj.out_dim > 0, "objectives.vicreg.out_dim", f"must be > 0, got {obj.out_dim}")
    check(views.max_gap_s >= 0, "data.vicreg.max_gap_s", "must be >= 0")


def _check_config(cfg) -> None:
    check(cfg.data.batch_size >= 2, "data.batch_size",
          f"VICReg's variance and covariance need at least 2 tracks per batch, got {cfg.data.batch_size}")
    refuse_with_subspaces("vicreg", cfg)


SPEC = Objective("vicreg", VICRegObjectiveConfig, VICRegViewConfig, _sampler, _step, head="expander",
                 build_head=_head, validate=_validate, check_config=_check_config)
