"""LightningDataModule around the streaming loader.

The rank is captured in ``setup`` from the Trainer and handed to the stream explicitly: webdataset's own
lookup inside workers reads ``RANK``/``WORLD_SIZE``, which Lightning does not set (DESIGN §6).
"""
from __future__ import annotations

from typing import Callable, Mapping, Optional

import pytorch_lightning as pl

from ssl_music.data.stream import StreamLoader, make_loader, shard_urls


class ShardDataModule(pl.LightningDataModule):
    """``ShardDataModule(data_cfg, views, augmenter=None)``, ``views`` = ``objectives.view_samplers(names)``;
    ``rank``/``world_size`` override the Trainer's (tests, or use without a Trainer)."""

    def __init__(self, data_cfg, views: Mapping[str, Callable], augmenter=None,
                 rank: Optional[int] = None, world_size: Optional[int] = None):
        super().__init__()
        self.data_cfg = data_cfg
        self.views = dict(views)
        self.augmenter = augmenter
        self._explicit = (rank, world_size)
        self.rank = 0 if rank is None else int(rank)
        self.world_size = 1 if world_size is None else int(world_size)
        self._loader: Optional[StreamLoader] = None

    def prepare_data(self) -> None:
        shard_urls(self.data_cfg)   # fail fast (missing dir, wrong sample rate) before any process forks

    def setup(self, stage: Optional[str] = None) -> None:
        trainer = getattr(self, "trainer", None)
        rank, world_size = self._explicit
        if trainer is not None:
            rank = trainer.global_rank if rank is None else rank
            world_size = trainer.world_size if world_size is None else world_size
        self.rank = 0 if rank is None else int(rank)
        self.world_size = 1 if world_size is None else int(world_size)

    def train_dataloader(self) -> StreamLoader:
        self._loader = make_loader(self.data_cfg, self.views, self.augmenter, self.rank, self.world_size)
        return self._loader

    @property
    def bad_sample_count(self) -> int:
        """Samples and shard reads skipped so far by this rank's loader."""
        return 0 if self._loader is None else self._loader.bad_sample_count
