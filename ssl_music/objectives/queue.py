"""A FIFO of negative keys for NT-Xent (``objectives.contrastive.queue``), MoCo-style (He et al. 2020).

Keys are the L2-normalised projections of past batches, detached: the rows of the global batch (every
rank's, gathered in rank order) join at the front, the oldest leave from the back once ``size`` is reached.
Every rank enqueues the same gathered rows, so every rank holds the same queue, and a run on W ranks x B
clips holds the queue a single process over W x B clips would (the lightly #1018 trap is a queue of the
local batch only).

Why past batches of the online network and no momentum encoder: it costs no second forward pass (on two
CPU cores the forward is most of a step) and needs no second copy of the encoder; its keys are older
versions of the same projector, which with a queue of a few batches and this project's learning rates is
the memory bank of Wu et al. (2018). MoCo's momentum encoder keeps keys consistent over queues of 65k; at
the queue sizes a CPU run can fill (hundreds) a key is at most a few steps old. Whether a momentum encoder
would do better here has not been measured.

The buffers are persistent, so the queue is in the LightningModule's ``state_dict`` under
``states.contrastive.`` (saved and restored with the checkpoint); readers (``load_encoder``, ``export``)
take only ``encoder.`` and ``heads.``.
"""
from __future__ import annotations

import torch
from torch import nn

from ssl_music.objectives.distributed import gather_rows


class KeyQueue(nn.Module):
    def __init__(self, size: int, dim: int):
        super().__init__()
        if size <= 0 or dim <= 0:
            raise ValueError(f"KeyQueue needs size > 0 and dim > 0, got {size}, {dim}")
        # rows [0, count) hold keys, newest batch first; rows [count:] are empty
        self.register_buffer("keys", torch.zeros(size, dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @property
    def size(self) -> int:
        return self.keys.shape[0]

    def current(self) -> torch.Tensor:
        """The keys held now [count, dim], newest first (a detached copy: enqueueing does not change it)."""
        return self.keys[: int(self.count)].clone()

    @torch.no_grad()
    def push(self, local: torch.Tensor) -> None:
        """Enqueue this rank's keys [n, dim] together with every other rank's (gathered in rank order, the
        order of the single-process batch); assumed already normalised."""
        everyone, _ = gather_rows(local.detach().float())
        self.push_gathered(everyone)

    @torch.no_grad()
    def push_gathered(self, keys: torch.Tensor) -> None:
        """Enqueue rows already gathered from every rank: the batch goes to the front in its own row order,
        everything older moves back by its length, and what passes ``size`` leaves (the oldest batch first;
        a batch longer than the queue keeps its first ``size`` rows)."""
        keys = keys.to(self.keys.dtype)
        n = min(keys.shape[0], self.size)
        kept = min(int(self.count), self.size - n)
        self.keys[n: n + kept] = self.keys[:kept].clone()
        self.keys[:n] = keys[:n]
        self.count.fill_(n + kept)
