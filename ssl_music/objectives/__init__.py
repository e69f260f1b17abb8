"""Objectives: one module each (its configs, view sampler, augmentation treatment, head, pure loss and
step), found through the :data:`OBJECTIVES` registry. Registry order is the order views are sampled,
heads are built and losses are summed; a new objective is one module plus one line here, or one
:func:`register` call from outside the package."""
from ssl_music.objectives.base import Objective, PairStretch, Subspace, enabled
from ssl_music.objectives.byol import SPEC as _byol, byol_loss
from ssl_music.objectives.contrastive import SPEC as _contrastive, nt_xent
from ssl_music.objectives.distributed import gather_with_grad, rank_and_world
from ssl_music.objectives.tempo import SPEC as _tempo, tempo_bce
from ssl_music.objectives.subspaces import SPEC as _subspaces, subspace_nce
from ssl_music.objectives.triplet import SPEC as _triplet, triplet_loss
from ssl_music.objectives.vicreg import SPEC as _vicreg, vicreg_loss

OBJECTIVES: dict[str, Objective] = {spec.name: spec for spec in (_contrastive, _triplet, _tempo, _subspaces,
                                                                 _vicreg, _byol)}


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


def view_treatments(data_cfg) -> dict:
    """``{name: (Objective.treatment, Objective.tie)}`` of every registered objective, built from its
    ``data.<name>`` section, in registry order: what ``ViewAugmenter`` does to each objective's views. Handed in
    rather than read by augment, as view_samplers are to data: objectives sit above augment."""
    return {name: (spec.treatment(data_cfg[name]), spec.tie(data_cfg[name]) if spec.tie is not None else None)
            for name, spec in OBJECTIVES.items()}


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


def build_states(cfg, encoder, heads):
    """The model's ``states``: one ``nn.ModuleDict`` keyed by objective name, holding what an enabled
    objective keeps between steps besides its head (``Objective.state``: a negatives queue, an EMA target).
    Saved with the checkpoint, never exported."""
    from torch import nn

    states = nn.ModuleDict()
    for name in enabled_objectives(cfg):
        spec = OBJECTIVES[name]
        made = spec.state(cfg, encoder, heads) if spec.state is not None else None
        if made is not None:
            states[name] = made
    return states


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


__all__ = ["OBJECTIVES", "Objective", "PairStretch", "Subspace", "WHOLE", "build_heads", "build_states", "byol_loss",
           "embedding_layout", "enabled_objectives", "gather_with_grad", "nt_xent", "parts_read", "rank_and_world",
           "register", "subspace_nce", "tempo_bce", "triplet_loss", "vicreg_loss", "view_samplers"]
