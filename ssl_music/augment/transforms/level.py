"""gain, polarity and noise: per-example level changes. On a magnitude spectrogram gain is exact, polarity
is invisible, and noise is added to each bin as the STFT of the same white noise (exact in distribution:
the noise's phase is uniform, so the signal's own phase does not matter)."""
from __future__ import annotations

import numpy as np

from ssl_music.augment.transforms.base import DB, Transform, frozen_apply, lerp, register_transform


def _scale_where(x, applied, factor):
    # one pass with factor 1 where not applied: no row gather/scatter, no host sync on the mask
    import torch

    f = torch.where(applied, factor, torch.ones_like(applied, dtype=x.dtype))
    return x * f.reshape(-1, *([1] * (x.dim() - 1)))


def _energy(mag):
    return mag.square().reshape(mag.shape[0], -1).sum(1)


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

    def spectral_batch(self, mag, applied, drawn, cfg, ctx, signal):
        return _scale_where(mag, applied, 10 ** (drawn["gain_db"] / 20))


@register_transform
class Polarity(Transform):
    name = "polarity"

    def cpu(self, x, drawn, cfg, sr, rng):
        import audiomentations as am

        return frozen_apply(am.PolarityInversion(p=1.0), x, sr)

    def gpu_batch(self, x, applied, drawn, cfg, sr, out_len, g):
        import torch

        return _scale_where(x, applied, -torch.ones_like(applied, dtype=x.dtype))

    def spectral_batch(self, mag, applied, drawn, cfg, ctx, signal):
        return mag  # |-X| = |X|


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

    def draw_signal(self, n, cfg, sr, out_len, g, like):
        import torch

        return torch.randn(n, out_len, generator=g, device=like.device, dtype=like.dtype)

    def gpu(self, x, drawn, cfg, sr, g):
        std = x.pow(2).mean(1, keepdim=True).sqrt() / 10 ** (drawn["snr_db"][:, None] / 20)
        return x + std * self.draw_signal(x.shape[0], cfg, sr, x.shape[1], g, x)

    def spectral(self, mag, drawn, cfg, ctx, signal):
        import torch

        noise = ctx.stft(signal)
        # the SNR as a ratio of STFT energies: both go through the same window, so it is the waveform's
        ratio = (_energy(mag) / _energy(noise.abs()).clamp_min(1e-20)).sqrt()
        std = (ratio / 10 ** (drawn["snr_db"] / 20))[:, None, None]
        return torch.hypot(mag + std * noise.real, std * noise.imag)
