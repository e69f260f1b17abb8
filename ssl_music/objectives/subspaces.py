"""Subspace objective (LooC: Xiao, Wang, Efros, Darrell, *What Should Not Be Contrastive in Contrastive
Learning*, ICLR 2021): one embedding, several named parts, each invariant to the chain but for what it is
named after.

An example is a query crop and one key crop per part, all of one track (at most ``max_gap_s`` apart), all
through the augmentation chain; part k's key takes from the query the draws of the transforms part k is
sensitive to (``data.subspaces.shared[k]``: ``[]`` for content, ``[pitch_shift]`` for pitch,
``[time_stretch]`` for tempo), and draws the rest itself. In part k's dimensions two views of a track are
positives when they share those draws and negatives otherwise (the same clip at another pitch is a hard
negative of the pitch part); views of other tracks are negatives everywhere.

Parts are slices of the encoder's embedding, in order (``objectives.subspaces.dims``, summing to the
learned block ``Encoder.content_dim``), so what the loss shapes is exactly what a reader gets, with no
projector between. With ``model.head_split`` equal to the dims, each part has its own dense head (hidden
layer included) on the pooled features, as LooC gives each space its own head on a shared backbone;
without it the parts are slices of one dense head's output and share its hidden layer.
The periodicity block (``model.periodicity``: a fixed onset-autocorrelation statistic with a learned
projection) joins the last part, so put tempo last. Pitch reaches a part only if the encoder keeps it:
every encoder ends in a max over frequency, which a transposition does not change, so the recipe uses
the semitone front-end with pitch-class pooling (``model.frontend=logfreq``, ``model.pitch_classes``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

import numpy as np
import torch
import torch.nn.functional as F

from ssl_music.data.crops import read_crops, seconds_to_frames
from ssl_music.errors import require as check
from ssl_music.objectives.base import Objective, Subspace
from ssl_music.objectives.contrastive import contrastive_starts
from ssl_music.objectives.distributed import gather_rows


@dataclass
class SubspacesObjectiveConfig:
    weight: float = 0.0
    temperature: float = 0.1
    names: List[str] = field(default_factory=lambda: ["content", "pitch", "tempo"])
    dims: List[int] = field(default_factory=lambda: [64, 32, 16])  # learned dims per part, sum = content_dim


@dataclass
class SubspacesViewConfig:
    max_gap_s: float = 5.0    # the query and the keys start at most this far apart
    # per part, the transforms whose draws its key shares with the query (what the part is sensitive to)
    shared: List[List[str]] = field(default_factory=lambda: [[], ["pitch_shift"], ["time_stretch"]])


def positive_views(shared: list[list[str]], part: int, absent: frozenset = frozenset()) -> np.ndarray:
    """[V, V] bool, V = 1 + parts: which views of one example are positives in ``part``'s dimensions.

    View 0 is the query, view 1 + j the key of part j, which shares the draws of ``shared[j]`` with the
    query. Two views are positives in part k when they share every transform part k is sensitive to; a
    transform ``absent`` from the chain (an ablation arm without it) is shared by every view."""
    sets = [None] + [set(s) for s in shared]           # None: the query, which every key copies from
    need = set(shared[part]) - set(absent)
    v = len(sets)
    out = np.zeros((v, v), dtype=bool)
    for i in range(v):
        for j in range(v):
            if i == j:
                continue
            common = sets[j] if sets[i] is None else sets[i] if sets[j] is None else sets[i] & sets[j]
            out[i, j] = need <= common
    return out


def subspace_nce(z: torch.Tensor, positive: torch.Tensor, temperature: float) -> torch.Tensor:
    """Multi-positive NT-Xent over ``z`` [B, V, D] with the positives of a view given by ``positive``
    [V, V] (bool, symmetric, False on the diagonal): row (b, i)'s positives are the rows (b, j) with
    positive[i, j]; every other row of the global batch (all ranks, gathered with gradient), the same
    track's other views included, is a negative. Rows without a positive are not anchors.

        loss_i = -1/|P(i)| * sum_{p in P(i)} log( exp(s_ip / t) / sum_{a != i} exp(s_ia / t) )

    With every off-diagonal entry True this is :func:`~ssl_music.objectives.contrastive.nt_xent`."""
    if z.dim() != 3 or positive.shape != (z.shape[1], z.shape[1]):
        raise ValueError(f"subspace_nce expects z [B, V, D] and positive [V, V], got {tuple(z.shape)}, "
                         f"{tuple(positive.shape)}")
    # float32 without autocast, as nt_xent: bf16 cosines blur near-identical positives
    with torch.autocast(device_type=z.device.type, enabled=False):
        b, v, d = z.shape
        local = F.normalize(z.float().reshape(b * v, d), dim=1)
        everyone, offset = gather_rows(local)
        logits = local @ everyone.T / temperature
        rows = torch.arange(b * v, device=z.device)
        global_rows = rows + offset
        logits[rows, global_rows] = float("-inf")
        other = torch.arange(everyone.shape[0], device=z.device)
        positive = positive.to(z.device, torch.bool)
        pos = (other[None, :] // v == (global_rows // v)[:, None]) & positive[(global_rows % v)[:, None],
                                                                               (other % v)[None, :]]
        pos[rows, global_rows] = False
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        n_pos = pos.sum(dim=1)
        per_row = -log_prob.masked_fill(~pos, 0.0).sum(dim=1) / n_pos.clamp_min(1)
        return per_row[n_pos > 0].mean()


# ------------------------------------------------------------------------------------------- the spec
def _sampler(views, sample_rate: int):
    n_views, max_gap = 1 + len(views.shared), seconds_to_frames(views.max_gap_s, sample_rate)

    def sample(track_id, n_frames, read, length, rng):
        return read_crops(read, contrastive_starts(n_frames, length, n_views, max_gap, rng), length)
    return sample


def _tie(views) -> tuple[tuple[str, ...], ...]:
    return ((),) + tuple(tuple(str(t) for t in s) for s in views.shared)


def layout(cfg, encoder) -> list[Subspace]:
    """The parts as slices of the embedding; the periodicity block, if any, extends the last one."""
    obj, views = cfg.objectives.subspaces, cfg.data.subspaces
    dims = [int(d) for d in obj.dims]
    check(sum(dims) == encoder.content_dim, "objectives.subspaces.dims",
          f"must sum to the encoder's learned dimensions ({encoder.content_dim} = model.embed_dim "
          f"{encoder.embed_dim} less {encoder.embed_dim - encoder.content_dim} of periodicity), got "
          f"{dims} = {sum(dims)}")
    split = [int(d) for d in (cfg.model.get("head_split", None) or [])]
    check(not split or split == dims, "model.head_split",
          f"splits the dense head as {split}, objectives.subspaces.dims asks for {dims}: make them equal (or [])")
    parts, start = [], 0
    for i, (name, dim) in enumerate(zip(obj.names, dims)):
        stop = encoder.embed_dim if i == len(dims) - 1 else start + dim
        parts.append(Subspace(str(name), start, stop, tuple(str(t) for t in views.shared[i])))
        start = stop
    return parts


class SubspaceSlices(torch.nn.Module):
    """The objective's head: no weights (a part's head is its share of the encoder's dense head, its own
    one with ``model.head_split``), the layout and each part's positive-view mask, built once from the
    whole config."""

    def __init__(self, parts: list[Subspace], shared: list[list[str]], absent: frozenset = frozenset()):
        super().__init__()
        self.parts = parts
        for k, part in enumerate(parts):
            self.register_buffer(f"positive_{k}", torch.as_tensor(positive_views(shared, k, absent)), persistent=False)

    def forward(self, e: torch.Tensor, temperature: float) -> dict:
        out = {f"subspaces/{p.name}": subspace_nce(e[..., p.start:p.stop], getattr(self, f"positive_{k}"), temperature)
               for k, p in enumerate(self.parts)}
        out["subspaces"] = sum(out.values()) / len(out)
        return out


def _head(cfg, encoder) -> SubspaceSlices:
    from ssl_music.augment.chain import resolve_chain

    shared = [list(s) for s in cfg.data.subspaces.shared]
    chain = resolve_chain(cfg.augment.chain)
    # not drawn at all, so no two views differ in it: its part's keys are positives like content's
    absent = frozenset(t for s in shared for t in s if t not in chain or chain[t]["p"] == 0)
    return SubspaceSlices(layout(cfg, encoder), shared, absent)


def _step(head, encoder, e: torch.Tensor, batch: dict, cfg) -> dict:
    return head(e, cfg.temperature)


def _validate(obj, views) -> None:
    from ssl_music.augment.chain import TRANSFORMS

    n = len(obj.names)
    check(n >= 1, "objectives.subspaces.names", "needs at least one part")
    check(len(set(obj.names)) == n, "objectives.subspaces.names", f"must be distinct, got {list(obj.names)}")
    check(len(obj.dims) == n, "objectives.subspaces.dims", f"needs one dimension per name ({n}), got {list(obj.dims)}")
    check(all(int(d) > 0 for d in obj.dims), "objectives.subspaces.dims", f"must be > 0, got {list(obj.dims)}")
    check(len(views.shared) == n, "data.subspaces.shared",
          f"needs one list of transforms per part of objectives.subspaces.names ({n}), got {len(views.shared)}")
    for i, s in enumerate(views.shared):
        for t in s:
            check(t in TRANSFORMS, f"data.subspaces.shared.{i}", f"unknown transform '{t}'; known: {', '.join(TRANSFORMS)}")
    check(views.max_gap_s >= 0, "data.subspaces.max_gap_s", "must be >= 0")
    check(obj.temperature > 0, "objectives.subspaces.temperature", "must be > 0")


SPEC = Objective("subspaces", SubspacesObjectiveConfig, SubspacesViewConfig, _sampler, _step,
                 head="subspaces", build_head=_head, tie=_tie, layout=layout, validate=_validate)
