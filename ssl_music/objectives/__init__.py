"""Objectives: pure functions of tensors. The LightningModule weights them by ``objectives.<name>.weight``."""
from ssl_music.objectives.contrastive import nt_xent
from ssl_music.objectives.distributed import gather_with_grad, rank_and_world
from ssl_music.objectives.tempo import tempo_bce
from ssl_music.objectives.triplet import triplet_loss

# objective name (= config section and batch view name) -> loss function
OBJECTIVES = {"contrastive": nt_xent, "triplet": triplet_loss, "tempo": tempo_bce}

__all__ = ["OBJECTIVES", "gather_with_grad", "nt_xent", "rank_and_world", "tempo_bce", "triplet_loss"]
