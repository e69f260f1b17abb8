"""Heads on top of the pooled embedding: SimCLR projection MLP and the tempo-pair classifier."""
from __future__ import annotations

import torch
import torch.nn.functional as F
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

    scores_pairs = True   # what readers look for (EmbeddingModel.tempo_same_prob), not the head's name

    def __init__(self, embed_dim: int, hidden: int, unit_blocks: int | None = None, reads=None):
        super().__init__()
        # With a block-normalised embedding, the periodicity block is short by design (periodicity_weight);
        # the head rescales both blocks to unit length so that its product term is not w^2 times too small.
        # ``unit_blocks`` counts the dimensions it reads (``reads``) before the periodicity block.
        self.unit_blocks = unit_blocks
        # ``reads``: the embedding dimensions it sees (the named parts its objective declares), in order;
        # None: all of them. A buffer, not saved: the config rebuilds it, and old checkpoints have no key.
        self.register_buffer("reads", None if reads is None else torch.as_tensor(list(reads), dtype=torch.long),
                             persistent=False)
        embed_dim = embed_dim if reads is None else len(reads)
        self.mlp = nn.Sequential(nn.Linear(4 * embed_dim, hidden, bias=False), nn.BatchNorm1d(hidden),
                                 nn.ReLU(inplace=True), nn.Linear(hidden, 1))

    def _blocks(self, e: torch.Tensor) -> torch.Tensor:
        c = self.unit_blocks
        return torch.cat([F.normalize(e[:, :c], dim=1), F.normalize(e[:, c:], dim=1)], dim=1)

    def forward(self, e1: torch.Tensor, e2: torch.Tensor) -> torch.Tensor:
        if self.reads is not None:
            e1, e2 = e1.index_select(1, self.reads), e2.index_select(1, self.reads)
        if self.unit_blocks:
            e1, e2 = self._blocks(e1), self._blocks(e2)
        return self.mlp(torch.cat([e1, e2, (e1 - e2).abs(), e1 * e2], dim=1)).squeeze(1)


def projector(model_cfg, encoder: nn.Module) -> ProjectionHead:
    """The projection head of the view-matching objectives (contrastive, triplet), which share it. It reads
    only the learned part of the embedding: given the periodicity block too, it told tracks apart by
    their rhythm statistic, the learned layers were left to encode timbre alone, and k-NN on the whole
    embedding then ranked neighbours by timbre and lost on tempo and style."""
    return ProjectionHead(encoder.content_dim, model_cfg.proj_hidden, model_cfg.proj_dim)


def tempo_head(model_cfg, encoder: nn.Module, parts=None) -> TempoHead:
    """The same-vs-different tempo classifier. It reads the named ``parts`` (``Subspace``s) its objective
    declares, periodicity block included where one of them holds it; None: the whole embedding."""
    dims = None if parts is None else [d for p in parts for d in range(p.start, p.stop)]
    seen = range(encoder.embed_dim) if dims is None else dims
    learned = sum(d < encoder.content_dim for d in seen)
    normed = getattr(encoder, "block_norm", False) or bool(getattr(encoder, "part_dims", ()))
    split = learned if normed and 0 < learned < len(seen) else None
    return TempoHead(encoder.embed_dim, model_cfg.tempo_hidden, unit_blocks=split, reads=dims)
