"""Tempo-pair objective (Henkel et al. 2024): is the second crop at the same tempo as the first?"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def tempo_bce(logits: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of ``logits`` [B] against ``same`` [B] (1 = same tempo), mean over the batch."""
    return F.binary_cross_entropy_with_logits(logits.float(), same.to(torch.float32))
