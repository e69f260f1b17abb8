"""Heads on top of the pooled embedding: SimCLR projection MLP and the tempo-pair classifier."""
from __future__ import annotations

import torch
from torch import nn


class ProjectionHead(nn.Sequential):
    """SimCLR projection g(.): Linear-BN-ReLU-Linear. The loss sees its output; downstream tasks use the
    encoder's embedding before it (Chen et al. 2020 found that representation better)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int):
        super().__init__(nn.Linear(in_dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, out_dim))


class TempoHead(nn.Module):
    """Same-tempo classifier (Henkel et al. 2024): logit over concat(e1, e2, |e1 - e2|, e1 * e2).

    The difference and product terms make "same" easy to express whatever order the pair comes in.
    """

    def __init__(self, embed_dim: int, hidden: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(4 * embed_dim, hidden, bias=False), nn.BatchNorm1d(hidden),
                                 nn.ReLU(inplace=True), nn.Linear(hidden, 1))

    def forward(self, e1: torch.Tensor, e2: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([e1, e2, (e1 - e2).abs(), e1 * e2], dim=1)).squeeze(1)


def projector(model_cfg, encoder: nn.Module) -> ProjectionHead:
    """The projection head of the view-matching objectives (contrastive, triplet), which share it. It reads
    only the learned part of the embedding: given the periodicity block too, it told tracks apart by
    their rhythm statistic, the learned layers were left to encode timbre alone, and k-NN on the whole
    embedding then ranked neighbours by timbre and lost on tempo and style."""
    return ProjectionHead(encoder.content_dim, model_cfg.proj_hidden, model_cfg.proj_dim)


def tempo_head(model_cfg, encoder: nn.Module) -> TempoHead:
    """The same-vs-different tempo classifier; it reads the whole embedding, periodicity block included."""
    return TempoHead(encoder.embed_dim, model_cfg.tempo_hidden)
