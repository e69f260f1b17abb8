"""What an objective is, in one place.

An :class:`Objective` holds everything the pipeline needs to know about one training objective: its two
config sections (``objectives.<name>``: weight and loss settings; ``data.<name>``: how its views are
sampled), the view sampler, the augmentation treatment of its views, its head, and the step that turns
the encoder's embeddings of its views into losses (through its pure loss function) and logs. The config,
the loader, the augmenter, the LightningModule and the API iterate :data:`ssl_music.objectives.OBJECTIVES`
and never name an objective, so a new objective is one module plus one registry line (or one
``register`` call from outside the package).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

import numpy as np


if TYPE_CHECKING:
    import torch

# read(start_frame, frames) -> float32 [<= frames]: seek-decodes frames of the current segment
Reader = Callable[[int, int], np.ndarray]
# (track_id, n_frames, read, length, rng) -> float32 [V, length]: the views of one example
Sampler = Callable[[str, int, Reader, int, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class PairStretch:
    """Augmentation treatment of a two-view example whose views are time-stretched by a drawn pair of
    rates (r1, r2) with a same/different label (the tempo pair, DESIGN §3). The views then go through
    the chain without its time_stretch; the augmenter adds ``<name>_same`` [B] and ``<name>_rates`` [B, 2]
    to the batch. Built from the objective's ``data.<name>`` section."""

    min_rate: float
    max_rate: float
    tolerance: float
    same_p: float

    @property
    def source_factor(self) -> float:
        return max(1.0, float(self.max_rate))

    def as_kwargs(self) -> dict[str, float]:
        return dict(min_rate=float(self.min_rate), max_rate=float(self.max_rate),
                    tolerance=float(self.tolerance), same_p=float(self.same_p))


@dataclass(frozen=True)
class Subspace:
    """One named part of the embedding: dimensions ``start:stop`` and the transforms it is trained to be
    sensitive to (its positive views share their draws); invariant to the rest of the chain."""

    name: str
    start: int
    stop: int
    sensitive_to: tuple[str, ...] = ()

    @property
    def dim(self) -> int:
        return self.stop - self.start

    def as_dict(self) -> dict:
        return {"name": self.name, "start": self.start, "stop": self.stop, "dim": self.dim,
                "sensitive_to": list(self.sensitive_to)}


# (data.<name>) -> one tuple per view: the chain entries whose draws (applied, parameters) that view takes
# from view 0 of the same example instead of drawing its own; view 0's tuple is empty
Tie = Callable[[Any], tuple[tuple[str, ...], ...]]
# (config, encoder) -> the embedding's named parts, in order, covering [0, embed_dim)
Layout = Callable[[Any, "torch.nn.Module"], list[Subspace]]


@dataclass(frozen=True)
class Objective:
    name: str
    config: type                      # dataclass of objectives.<name>; must have ``weight``
    views: type                       # dataclass of data.<name>
    sampler: Callable[[Any, int], Sampler]  # (data.<name>, sample_rate) -> a sampler (may keep state)
    step: Callable[..., dict]         # (head, encoder, emb [B, V, D], batch, objectives.<name>) -> {log name: value}
    head: Optional[str] = None        # its key in the model's ``heads`` mapping; objectives may share one
    build_head: Optional[Callable[[Any, "torch.nn.Module"], "torch.nn.Module"]] = None  # (config, encoder)
    pair: Optional[Callable[[Any], PairStretch]] = None  # views stretched as a rate pair; None: the chain
    keep_head: bool = False           # the head is part of the trained model (load_encoder rebuilds it)
    tie: Optional[Tie] = None         # views through the chain with some draws shared within an example
    layout: Optional[Layout] = None   # the embedding's named subspaces this objective trains
    validate: Callable[[Any, Any], None] = lambda obj_cfg, view_cfg: None  # (objectives.<name>, data.<name>)
    # Whole-config checks of an enabled objective (combinations with other objectives, the model, the chain);
    # ConfigError naming the offending key. Called by config validation after every ``validate``.
    check_config: Callable[[Any], None] = lambda cfg: None
    # Training state that is neither encoder nor head (a negatives queue, an EMA target): (config, encoder,
    # heads) -> an nn.Module or None. It lives under ``states.<name>`` of the LightningModule, so it is saved
    # and restored with the checkpoint, and is never exported (readers load only ``encoder.``/``heads.``).
    # Its ``step`` then gets it as the keyword argument ``state``.
    state: Optional[Callable[[Any, "torch.nn.Module", Any], Optional["torch.nn.Module"]]] = None
    # Called once per optimizer step (not per micro-batch, on every rank with the same synchronised
    # weights): (state, encoder, heads, objectives.<name>); e.g. the EMA target's move.
    after_step: Optional[Callable[..., None]] = None
    # (objectives.<name>) -> names of the embedding's parts (``layout``) its head reads; empty: the whole embedding.
    # None: its head reads the whole embedding (or slices it itself, as the subspace objective does)
    reads: Optional[Callable[[Any], list]] = None

    def treatment(self, view_cfg: Any) -> Optional[PairStretch]:
        return self.pair(view_cfg) if self.pair is not None else None


def enabled(cfg: Any, registry: Mapping[str, Objective]) -> list[str]:
    """Names of the objectives with weight > 0, in registry order (which is also the order of the
    random draws and of the heads' construction)."""
    return [name for name in registry if cfg.objectives[name].weight > 0]


def refuse_with_subspaces(name: str, cfg: Any) -> None:
    """An invariance objective on the whole learned block (BYOL, VICReg) next to named subspaces would pull
    the parts that are meant to be sensitive (pitch, tempo) to be invariant to the whole chain as well."""
    from ssl_music.errors import require

    require(cfg.objectives.get("subspaces") is None or cfg.objectives.subspaces.weight == 0,
            f"objectives.{name}.weight",
            f"{name} makes the whole learned block invariant to every transform of the chain, which would undo "
            f"the named subspaces that are sensitive to some (objectives.subspaces.weight > 0): use one or the other")
