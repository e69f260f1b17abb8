"""Triplet margin loss on L2-normalised embeddings (McCallum 2019; Lee et al. 2020)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


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
