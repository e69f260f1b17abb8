"""Online k-NN monitor: representation quality while training, per label, on a small labelled set.

A Lightning callback that the CLI hands to ``ssl_music.train.pretrain`` when ``monitor.every_n_steps > 0``;
it lives with evaluation because it is one (k-NN on a labelled set), and the library never imports it."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch

from ssl_music_eval.probes.knn import knn_accuracy
from ssl_music.data.audio import load_audio
from ssl_music.data.crops import seconds_to_frames
from ssl_music.data.files import read_csv, resolve
from ssl_music.errors import SSLMusicError

log = logging.getLogger(__name__)


def load_monitor_set(labels_csv: str | Path, labels: list[str], sample_rate: int, crop_len: int,
                     max_items: int, crops_per_item: int = 3) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    """Decode a few evenly spaced crops per labelled file once; returns crops [n*c, L] and labels per item."""
    labels_csv = Path(labels_csv)
    _, rows = read_csv(labels_csv, required=("path", *labels), what="monitor.labels_csv")
    if not rows:
        raise SSLMusicError(f"monitor.labels_csv {labels_csv} has no rows")
    crops, kept = [], []
    for row in rows[:max_items]:
        path = resolve(row["path"], labels_csv.parent).resolve()
        try:
            x = torch.from_numpy(load_audio(path, sample_rate))
        except SSLMusicError as exc:
            log.warning("k-NN monitor skips %s: %s", path, exc)
            continue
        if x.numel() < crop_len:
            x = torch.nn.functional.pad(x, (0, crop_len - x.numel()))
        starts = np.linspace(0, x.numel() - crop_len, crops_per_item).astype(int)
        crops.append(torch.stack([x[s:s + crop_len] for s in starts]))
        kept.append(row)
    if len(kept) < 2:
        raise SSLMusicError(f"monitor.labels_csv {labels_csv}: fewer than 2 readable files")
    return torch.cat(crops), {name: np.array([r[name] for r in kept]) for name in labels}


class KnnMonitor(pl.Callback):
    """Every N steps rank 0 embeds the monitor set with the live encoder and logs leave-one-out k-NN accuracy."""

    def __init__(self, labels_csv: str, labels: list[str], every_n_steps: int, k: int, max_items: int):
        self.labels_csv, self.labels = labels_csv, list(labels)
        self.every_n_steps, self.k, self.max_items = every_n_steps, k, max_items
        self._crops: torch.Tensor | None = None
        self._targets: dict[str, np.ndarray] = {}
        self.history: list[dict] = []

    def setup(self, trainer, pl_module, stage=None):
        if trainer.is_global_zero and self._crops is None:
            cfg = pl_module.cfg
            crop_len = seconds_to_frames(cfg.data.crop_s, cfg.data.sample_rate)
            self._crops, self._targets = load_monitor_set(self.labels_csv, self.labels, cfg.data.sample_rate,
                                                          crop_len, self.max_items)
            self._per_item = self._crops.shape[0] // len(next(iter(self._targets.values())))

    @torch.no_grad()
    def measure(self, encoder: torch.nn.Module, device: torch.device) -> dict[str, float]:
        was_training = encoder.training
        encoder.eval()
        try:
            emb = torch.cat([encoder(self._crops[i:i + 64].to(device)).float().cpu()
                             for i in range(0, self._crops.shape[0], 64)])
        finally:
            encoder.train(was_training)
        X = emb.view(-1, self._per_item, emb.shape[-1]).mean(dim=1).numpy()
        return {name: float(knn_accuracy(X, y, ks=(self.k,))[self.k]) for name, y in self._targets.items()}

    def _run(self, trainer, pl_module):
        scores = self.measure(pl_module.encoder, pl_module.device)
        self.history.append({"step": trainer.global_step, **scores})
        for name, acc in scores.items():
            pl_module.log(f"knn/{name}", acc, rank_zero_only=True, batch_size=1)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.is_global_zero and trainer.global_step % self.every_n_steps == 0:
            self._run(trainer, pl_module)

    def on_train_start(self, trainer, pl_module):
        if trainer.is_global_zero and trainer.global_step == 0:
            self._run(trainer, pl_module)  # the random-init reference point


def monitor_callbacks(cfg) -> list[pl.Callback]:
    """The callbacks ``cfg.monitor`` asks for: a KnnMonitor when every_n_steps > 0, else none."""
    m = cfg.monitor
    if m.every_n_steps <= 0:
        return []
    return [KnnMonitor(m.labels_csv, list(m.labels), m.every_n_steps, m.k, m.max_items)]
