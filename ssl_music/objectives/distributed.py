"""Cross-rank gathering that keeps the autograd graph.

Why a custom Function instead of ``torch.distributed.nn.functional.all_gather``: the latter's backward
emulates reduce-scatter with all-to-all on gloo and returns a tuple per rank; ours needs only all_gather and
all_reduce (supported by gloo and NCCL alike), handles unequal row counts per rank (a short last batch
would otherwise hang NCCL or crash gloo), and returns one concatenated tensor.

Gradient: rank r's loss uses every rank's rows, so the gradient for rank s's rows is the sum over r of
d loss_r / d rows_s. Backward therefore all-reduces (sums) the full gradient and keeps its own slice. With
each rank's loss averaged over its local rows and DDP averaging parameter gradients, the update equals that
of the single-process loss averaged over the concatenated batch (tests/objectives/test_distributed.py).
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.distributed as dist


def rank_and_world() -> Tuple[int, int]:
    """(rank, world size); (0, 1) when torch.distributed is unavailable or not initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _row_counts(n: int, device: torch.device, world: int) -> list[int]:
    mine = torch.tensor([n], device=device, dtype=torch.long)
    counts = [torch.zeros_like(mine) for _ in range(world)]
    dist.all_gather(counts, mine)
    return [int(c.item()) for c in counts]


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, counts: list[int], rank: int) -> torch.Tensor:
        x = x.contiguous()
        longest = max(counts)
        padded = x
        if x.shape[0] < longest:  # all_gather needs equal shapes on every rank
            padded = torch.cat([x, x.new_zeros((longest - x.shape[0],) + x.shape[1:])])
        parts = [torch.empty_like(padded) for _ in counts]
        dist.all_gather(parts, padded)
        ctx.start = sum(counts[:rank])
        ctx.n = x.shape[0]
        return torch.cat([p[:c] for p, c in zip(parts, counts)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous().clone()  # all_reduce is in place; the incoming grad may be shared
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.start:ctx.start + ctx.n], None, None


def gather_rows(x: torch.Tensor) -> Tuple[torch.Tensor, int]:
    """(concatenation over ranks of ``x`` along dim 0 with gradient, offset of this rank's rows in it)."""
    rank, world = rank_and_world()
    if world == 1:
        return x, 0
    counts = _row_counts(x.shape[0], x.device, world)
    return _GatherWithGrad.apply(x, counts, rank), sum(counts[:rank])


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` [N_r, ...] over ranks along dim 0 (rank order); gradients flow back to every rank."""
    return gather_rows(x)[0]
