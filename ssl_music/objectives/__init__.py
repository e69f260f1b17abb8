"""Objectives: one module each (its configs, view sampler, augmentation treatment, head, pure loss and
step), found through the :data:`OBJECTIVES` registry. Registry order is the order views are sampled,
heads are built and losses are summed; a new objective is one module plus one line here, or one
:func:`register` call from outside the package."""
from ssl_music.objectives.base import Objective, PairStretch, enabled
from ssl_music.objectives.contrastive import SPEC as _contrastive, nt_xent
from ssl_music.objectives.distributed import gather_with_grad, rank_and_world
from ssl_music.objectives.tempo import SPEC as _tempo, tempo_bce
from ssl_music.objectives.triplet import SPEC as _triplet, triplet_loss

OBJECTIVES: dict[str, Objective] = {spec.name: spec for spec in (_contrastive, _triplet, _tempo)}


def register(spec: Objective) -> Objective:
    """Add an objective (e.g. from a plug-in or a test); its config sections exist from the next
    ``load_config`` on."""
    OBJECTIVES[spec.name] = spec
    return spec


def enabled_objectives(cfg) -> list[str]:
    """Names of the objectives with weight > 0, in registry order."""
    return enabled(cfg, OBJECTIVES)


__all__ = ["OBJECTIVES", "Objective", "PairStretch", "enabled_objectives", "gather_with_grad", "nt_xent",
           "rank_and_world", "register", "tempo_bce", "triplet_loss"]
