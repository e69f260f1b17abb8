"""Augmentation of training views: one config, two backends.

``backend: cpu`` augments each example in DataLoader workers with audiomentations (:meth:`apply_sample`);
``backend: gpu`` augments whole batches on the device after transfer (:meth:`apply_batch`). Either way
every view leaves with exactly ``L = round(crop_s * sample_rate)`` samples, and the tempo view gets the
tempo-pair treatment (rates r1, r2; label *same* iff |log(r1/r2)| <= log(tolerance)) followed by the
chain without its time_stretch.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Dict, Optional

import numpy as np

if TYPE_CHECKING:
    import torch

from ssl_music.augment.chain import resolve_chain, source_factor, tempo_rates, without

CHAIN_VIEWS = ("contrastive", "triplet")


class ViewAugmenter:
    def __init__(self, augment_cfg: Any, data_cfg: Any):
        self.backend = str(augment_cfg.backend)
        self.chain = resolve_chain(augment_cfg.chain)
        self.tempo_chain = without(self.chain, "time_stretch")
        self.sample_rate = int(data_cfg.sample_rate)
        self.crop_s = float(data_cfg.crop_s)
        self.out_len = int(round(self.crop_s * self.sample_rate))
        t = data_cfg.tempo
        self.tempo = dict(min_rate=float(t.min_rate), max_rate=float(t.max_rate),
                          tolerance=float(t.tolerance), same_p=float(t.same_p))
        self._batch_chains = None

    # ------------------------------------------------------------------------------------- lengths
    def source_factor(self, view: str) -> float:
        return source_factor(self.chain, view, self.tempo["max_rate"])

    def source_len(self, view: str) -> int:
        return int(math.ceil(self.crop_s * self.sample_rate * self.source_factor(view) - 1e-9))

    # ---------------------------------------------------------------------------------- cpu backend
    def apply_sample(self, sample: Dict[str, Any], rng: np.random.Generator, record: Optional[list] = None) -> dict:
        """Numpy views [V, S] -> [V, L]; ``record`` (a list) collects (view, row, transform, applied, params)."""
        from ssl_music.augment.cpu import _stretch, apply_chain

        out = dict(sample)
        for view in CHAIN_VIEWS:
            if view in sample:
                out[view] = np.stack([self._cpu_row(apply_chain, row, self.chain, rng, record, view, i)
                                      for i, row in enumerate(np.asarray(sample[view]))])
        if "tempo" in sample:
            rates, same = tempo_rates(rng.random((1, 3)), xp=np, **self.tempo)
            rows = []
            for i, row in enumerate(np.asarray(sample["tempo"])):
                y = _stretch(row, float(rates[0, i]), self.out_len, self.sample_rate)
                rows.append(self._cpu_row(apply_chain, y, self.tempo_chain, rng, record, "tempo", i))
            out["tempo"] = np.stack(rows)
            out["tempo_same"] = np.float32(same[0])
            out["tempo_rates"] = rates[0].astype(np.float32)
        return out

    def _cpu_row(self, apply_chain, row, chain, rng, record, view, i):
        rec = [] if record is not None else None
        y = apply_chain(row, chain, self.sample_rate, self.out_len, rng, rec)
        if record is not None:
            record.extend((view, i, name, applied, prm) for name, applied, prm in rec)
        return y

    # ---------------------------------------------------------------------------------- gpu backend
    def _chains(self):
        if self._batch_chains is None:
            from ssl_music.augment.gpu import BatchChain

            self._batch_chains = (BatchChain(self.chain, self.sample_rate, self.out_len),
                                  BatchChain(self.tempo_chain, self.sample_rate, self.out_len))
        return self._batch_chains

    def apply_batch(self, batch: Dict[str, Any], generator: Optional["torch.Generator"] = None,
                    record: Optional[list] = None) -> dict:
        """Tensors [B, V, S] (any device) -> [B, V, L]; random parameters differ per example and view."""
        import torch  # here, so that config validation (which imports this package) stays light

        with torch.no_grad():
            return self._apply_batch(batch, generator, record)

    def _apply_batch(self, batch, generator, record) -> dict:
        from ssl_music.augment.gpu import tempo_draw

        chain, tempo_chain = self._chains()
        out = dict(batch)
        for view in CHAIN_VIEWS:
            if view in batch:
                x = batch[view].float()
                b, v = x.shape[:2]
                out[view] = chain(x.reshape(b * v, -1), generator, record).reshape(b, v, self.out_len)
        if "tempo" in batch:
            x = batch["tempo"].float()
            b = x.shape[0]
            rates, same = tempo_draw(b, self.tempo, generator, x.device)
            rates, same = rates.to(x.dtype), same.to(x.dtype)
            # the chain stretches by the rates itself, fused with its pitch_shift when that comes first
            y = tempo_chain(x.reshape(b * 2, -1), generator, record, rate=rates.reshape(-1))
            out["tempo"] = y.reshape(b, 2, self.out_len)
            out["tempo_same"], out["tempo_rates"] = same, rates
        return out


__all__ = ["ViewAugmenter"]
