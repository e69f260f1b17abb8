"""Augmentation of training views: one config, three backends.

``backend: cpu`` augments each example in DataLoader workers with audiomentations (:meth:`apply_sample`);
``backend: gpu`` augments whole batches on the device after transfer (:meth:`apply_batch`). Either way
every view leaves with exactly ``L = round(crop_s * sample_rate)`` samples. ``backend: spectral`` draws
as gpu does and augments the magnitude STFT of a spectrogram front-end instead (:meth:`apply_batch` with
the front-end): its views leave as that front-end's power spectrograms of L samples. Which views get which
treatment is the objectives' business (``Objective.treatment``: a pair stretched by drawn rates;
``Objective.tie``: the chain with some draws shared between the views of an example), handed in as
``{view: (pair, tie)}`` (``ssl_music.objectives.view_treatments``), as the data module gets its view samplers:
objectives sit above augment (the subspace objective reads the chain's transforms), so this module never reads
their registry.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional

import numpy as np

if TYPE_CHECKING:
    import torch

from ssl_music.augment.chain import has_time_stretch, resolve_chain, tempo_rates, without
from ssl_music.data.crops import seconds_to_frames, source_frames

BACKENDS = ("cpu", "gpu", "spectral")   # augment.backend


class ViewAugmenter:
    """Augments the views named in ``treatments`` (``{view: (pair, tie)}``, every registered objective's from
    ``objectives.view_treatments``): each view of a chain objective (pair None) independently through the
    chain, with the draws its tie shares; a pair objective's two views stretched by a drawn rate pair (its
    :class:`~ssl_music.objectives.PairStretch`), then through the chain without its time_stretch."""

    def __init__(self, augment_cfg: Any, data_cfg: Any, treatments: Mapping[str, tuple]):
        self.backend = str(augment_cfg.backend)
        self.chain = resolve_chain(augment_cfg.chain)
        self.pair_chain = without(self.chain, "time_stretch")
        # The rate pairs follow the chain: an arm without time_stretch (absent or p = 0) stretches no view, the
        # tempo pair's included. Its rates are still drawn, so every arm's random stream stays paired seed for
        # seed, then replaced by (1, 1), labelled "same" as they are: the tempo loss has one class to learn there.
        self.stretch_pairs = has_time_stretch(self.chain)
        self.sample_rate = int(data_cfg.sample_rate)
        self.crop_s = float(data_cfg.crop_s)
        self.out_len = seconds_to_frames(self.crop_s, self.sample_rate)
        self.pairs = {name: pair for name, (pair, _) in treatments.items()}
        self.ties = {name: tie for name, (_, tie) in treatments.items()}
        self._batch_chains = {}

    # ------------------------------------------------------------------------------------- lengths
    def source_factor(self, view: str) -> float:
        """Source length / output length for a view (>= 1): a stretch by r reads crop_s * r seconds."""
        pair = self.pairs[view]
        if pair is not None:
            return pair.source_factor
        if has_time_stretch(self.chain):
            return max(1.0, float(self.chain["time_stretch"]["params"]["max_rate"]))
        return 1.0

    def source_len(self, view: str) -> int:
        return source_frames(self.crop_s, self.sample_rate, self.source_factor(view))

    # ---------------------------------------------------------------------------------- cpu backend
    def apply_sample(self, sample: Dict[str, Any], rng: np.random.Generator, record: Optional[list] = None) -> dict:
        """Numpy views [V, S] -> [V, L]; ``record`` (a list) collects (view, row, transform, applied, params)."""
        from ssl_music.augment.cpu import apply_chain
        from ssl_music.augment.signal import cpu_stretch, fit

        out = dict(sample)
        # chain views first, then pair views: the order of the random draws
        for name, pair in self.pairs.items():
            if name in sample and pair is None:
                out[name] = self._cpu_views(apply_chain, np.asarray(sample[name]), rng, record, name)
        for name, pair in self.pairs.items():
            if name in sample and pair is not None:
                rates, same = tempo_rates(rng.random((1, 3)), xp=np, **pair.as_kwargs())
                if not self.stretch_pairs:
                    rates, same = np.ones_like(rates), np.ones_like(same)
                rows = []
                for i, row in enumerate(np.asarray(sample[name])):
                    y = (cpu_stretch(row, float(rates[0, i]), self.out_len, self.sample_rate) if self.stretch_pairs
                         else fit(np.asarray(row, np.float32), self.out_len))
                    rows.append(self._cpu_row(apply_chain, y, self.pair_chain, rng, record, name, i))
                out[name] = np.stack(rows)
                out[f"{name}_same"] = np.float32(same[0])
                out[f"{name}_rates"] = rates[0].astype(np.float32)
        return out

    def _cpu_views(self, apply_chain, rows, rng, record, view):
        """A chain objective's views; a tied one's views take view 0's draws where its tie says."""
        tie, first, out = self.ties[view], [], []
        for i, row in enumerate(rows):
            fixed = None if tie is None or i == 0 else {n: (a, p) for n, a, p in first if n in tie[i]}
            rec = [] if record is not None or (tie is not None and i == 0) else None
            out.append(self._cpu_row(apply_chain, row, self.chain, rng, record, view, i, fixed, rec))
            first = rec if i == 0 and rec is not None else first
        return np.stack(out)

    def _cpu_row(self, apply_chain, row, chain, rng, record, view, i, fixed=None, rec=None):
        rec = rec if rec is not None else ([] if record is not None else None)
        y = apply_chain(row, chain, self.sample_rate, self.out_len, rng, rec, fixed)
        if record is not None:
            record.extend((view, i, name, applied, prm) for name, applied, prm in rec)
        return y

    # ------------------------------------------------------------------------- gpu and spectral backends
    def _chains(self, spectral: bool):
        if spectral not in self._batch_chains:
            from ssl_music.augment.gpu import BatchChain
            from ssl_music.augment.spectral import SpectralChain

            cls = SpectralChain if spectral else BatchChain
            self._batch_chains[spectral] = (cls(self.chain, self.sample_rate, self.out_len),
                                            cls(self.pair_chain, self.sample_rate, self.out_len))
        return self._batch_chains[spectral]

    def apply_batch(self, batch: Dict[str, Any], generator: Optional["torch.Generator"] = None,
                    record: Optional[list] = None, frontend: Optional["torch.nn.Module"] = None) -> dict:
        """Tensors [B, V, S] (any device) -> [B, V, L]; random parameters differ per example and view.

        With a spectrogram ``frontend`` (the spectral backend) -> power spectrograms [B, V, F, T] in its STFT
        layout, from the same draws. Without one a spectral augmenter gives the waveform views of those
        draws (what an audio preview can play)."""
        import torch  # here, so that config validation (which imports this package) stays light

        with torch.no_grad():
            return self._apply_batch(batch, generator, record, frontend)

    def _apply_batch(self, batch, generator, record, frontend) -> dict:
        import torch

        from ssl_music.augment.gpu import Tie, tempo_draw
        from ssl_music.augment.signal import crop

        chain, pair_chain = self._chains(frontend is not None)
        kw = {} if frontend is None else {"frontend": frontend}
        out = dict(batch)
        for name, pair in self.pairs.items():
            if name in batch and pair is None:
                x = batch[name].float()
                b, v = x.shape[:2]
                tie = {} if self.ties[name] is None else {"tie": Tie(self.ties[name])}
                y = chain(x.reshape(b * v, -1), generator, record, **kw, **tie)
                out[name] = y.reshape(b, v, *y.shape[1:])
        for name, pair in self.pairs.items():
            if name in batch and pair is not None:
                x = batch[name].float()
                b = x.shape[0]
                rates, same = tempo_draw(b, pair.as_kwargs(), generator, x.device)
                rates, same = rates.to(x.dtype), same.to(x.dtype)
                if self.stretch_pairs:
                    # the chain stretches by the rates itself (gpu: fused with its pitch_shift when that comes first)
                    y = pair_chain(x.reshape(b * 2, -1), generator, record, rate=rates.reshape(-1), **kw)
                else:
                    rates, same = torch.ones_like(rates), torch.ones_like(same)
                    y = pair_chain(crop(x.reshape(b * 2, -1), self.out_len), generator, record, **kw)
                out[name] = y.reshape(b, 2, *y.shape[1:])
                out[f"{name}_same"], out[f"{name}_rates"] = same, rates
        return out


__all__ = ["BACKENDS", "ViewAugmenter"]
