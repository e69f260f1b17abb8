"""Objectives: one module each (its configs, view sampler, augmentation treatment, head, pure loss and
step), found through the :data:`OBJECTIVES` registry. Registry order is the order views are sampled,
heads are built and losses are summed; a new objective is one module plus one line here, or one
:func:`register` call from outside the package."""
from ssl_music.objectives.base import Objective, PairStretch, Subspace, enabled
from ssl_music.objectives.contrastive import SPEC as _contrastive, nt_xent
from ssl_music.objectives.distributed import gather_with_grad, rank_and_world
from ssl_music.objectives.tempo import SPEC as _tempo, tempo_bce
from ssl_music.objectives.subspaces import SPEC as _subspaces, subspace_nce
from ssl_music.objectives.triplet import SPEC as _triplet, triplet_loss

OBJECTIVES: dict[str, Objective] = {spec.name: spec for spec in (_contrastive, _triplet, _tempo, _subspaces)}


def register(spec: Objective) -> Objective:
    """Add an objective (e.g. from a plug-in or a test); its config sections exist from the next
    ``load_config`` on."""
    OBJECTIVES[spec.name] = spec
    return spec


def enabled_objectives(cfg) -> list[str]:
    """Names of the objectives with weight > 0, in registry order."""
    return enabled(cfg, OBJECTIVES)


def view_samplers(names) -> dict:
    """``{name: Objective.sampler}`` for the loader (ssl_music.data), in registry order whatever the order of
    ``names``, so the random stream does not depend on it. The data folder gets the samplers handed in
    rather than reading this registry: objectives sit above data (they read crops through it)."""
    unknown = [n for n in names if n not in OBJECTIVES]
    if unknown or not names:
        raise ValueError(f"views must be a non-empty subset of {tuple(OBJECTIVES)}, got {list(names)}")
    return {name: OBJECTIVES[name].sampler for name in OBJECTIVES if name in names}


def build_heads(cfg, encoder, kept_only: bool = False):
    """The model's ``heads``: one ``nn.ModuleDict`` keyed by ``Objective.head``, built in registry order (the
    order parameters are created in), one head per name however many objectives share it. ``kept_only``:
    just the heads that outlive pretraining (``Objective.keep_head``), what ``load_encoder`` rebuilds."""
    from torch import nn

    heads = nn.ModuleDict()
    for name in enabled_objectives(cfg):
        spec = OBJECTIVES[name]
        if spec.head is not None and spec.head not in heads and (spec.keep_head or not kept_only):
            heads[spec.head] = spec.build_head(cfg, encoder)
    return heads


def embedding_layout(cfg, encoder) -> list[Subspace]:
    """The embedding's named subspaces: those of the first enabled objective that defines a layout, else
    one subspace, ``all``, the whole embedding."""
    for name in enabled_objectives(cfg):
        if OBJECTIVES[name].layout is not None:
            return OBJECTIVES[name].layout(cfg, encoder)
    return [Subspace(WHOLE, 0, int(encoder.embed_dim))]


WHOLE = "all"   # the one subspace of a model trained without a layout


def parts_read(cfg, name: str, encoder) -> list[Subspace] | None:
    """The parts of the embedding objective ``name``'s head reads (``Objective.reads``), in layout order; None
    for the whole embedding. A name the layout lacks is a ConfigError naming ``objectives.<name>.reads``."""
    from ssl_music.errors import require

    spec = OBJECTIVES[name]
    names = [str(n) for n in (spec.reads(cfg.objectives[name]) if spec.reads is not None else [])]
    if not names:
        return None
    layout = embedding_layout(cfg, encoder)
    known = [part.name for part in layout]
    unknown = [n for n in names if n not in known]
    require(not unknown, f"objectives.{name}.reads",
            f"names no part of the embedding: {unknown}; its parts are {known} (objectives.subspaces.names), "
            "or leave it empty to read the whole embedding")
    return [part for part in layout if part.name in names]


__all__ = ["OBJECTIVES", "Objective", "PairStretch", "Subspace", "WHOLE", "build_heads", "embedding_layout",
           "enabled_objectives", "gather_with_grad", "nt_xent", "parts_read", "rank_and_world", "register", "subspace_nce",
           "tempo_bce", "triplet_loss", "view_samplers"]
