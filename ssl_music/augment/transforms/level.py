"""gain, polarity and noise: per-example level changes."""
from __future__ import annotations

import numpy as np

from ssl_music.augment.transforms.base import DB, Transform, frozen_apply, lerp, register_transform


def _scale_where(x, applied, factor):
    # one pass with factor 1 where not applied: no row gather/scatter, no host sync on the mask
    import torch

    return x * torch.where(applied, factor, torch.ones_like(applied, dtype=x.dtype))[:, None]


@register_transform
class Gain(Transform):
    name = "gain"
    params = {"min_gain_db": (-12.0, DB), "max_gain_db": (0.0, DB)}
    n_uniforms = 1

    def draw(self, cfg, u, xp):
        return {"gain_db": lerp(cfg["min_gain_db"], cfg["max_gain_db"], u[:, 0])}

    def cpu(self, x, drawn, cfg, sr, rng):
        import audiomentations as am

        return frozen_apply(am.Gain(p=1.0), x, sr, amplitude_ratio=10 ** (drawn["gain_db"] / 20))

    def gpu_batch(self, x, applied, drawn, cfg, sr, out_len, g):
        return _scale_where(x, applied, 10 ** (drawn["gain_db"] / 20))


@register_transform
class Polarity(Transform):
    name = "polarity"

    def cpu(self, x, drawn, cfg, sr, rng):
        import audiomentations as am

        return frozen_apply(am.PolarityInversion(p=1.0), x, sr)

    def gpu_batch(self, x, applied, drawn, cfg, sr, out_len, g):
        import torch

        return _scale_where(x, applied, -torch.ones_like(applied, dtype=x.dtype))


@register_transform
class Noise(Transform):
    """White noise at a drawn SNR relative to the example's RMS (on our generator, not audiomentations')."""

    name = "noise"
    params = {"min_snr_db": (10.0, DB), "max_snr_db": (40.0, DB)}
    n_uniforms = 1

    def draw(self, cfg, u, xp):
        return {"snr_db": lerp(cfg["min_snr_db"], cfg["max_snr_db"], u[:, 0])}

    def cpu(self, x, drawn, cfg, sr, rng):
        rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
        return x + rng.normal(0.0, rms / 10 ** (drawn["snr_db"] / 20), x.shape).astype(np.float32)

    def gpu(self, x, drawn, cfg, sr, g):
        import torch

        std = x.pow(2).mean(1, keepdim=True).sqrt() / 10 ** (drawn["snr_db"][:, None] / 20)
        return x + std * torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)
