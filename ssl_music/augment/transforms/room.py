"""delay and reverb. Both are numpy on the cpu backend: audiomentations has no delay, and its reverb needs
impulse-response files. On the spectral backend both act on the source waveform before the STFT (an echo
interferes with the signal through its phase, which a magnitude spectrogram does not hold), their delay
and decay scaled by the row's stretch rate so that the stretched view has them as drawn."""
from __future__ import annotations

import math

import numpy as np

from ssl_music.augment.transforms.base import POSITIVE, UNIT, Transform, lerp, register_transform
from ssl_music.augment.transforms.filters import fast_len


@register_transform
class Delay(Transform):
    """One echo: x + volume * x delayed by delay_ms."""

    name = "delay"
    params = {"min_delay_ms": (200.0, POSITIVE), "max_delay_ms": (500.0, POSITIVE),
              "min_volume": (0.5, UNIT), "max_volume": (0.5, UNIT)}
    n_uniforms = 2

    def draw(self, cfg, u, xp):
        return {"delay_ms": lerp(cfg["min_delay_ms"], cfg["max_delay_ms"], u[:, 0]),
                "volume": lerp(cfg["min_volume"], cfg["max_volume"], u[:, 1])}

    def cpu(self, x, drawn, cfg, sr, rng):
        d = int(round(drawn["delay_ms"] * sr / 1000))
        delayed = np.concatenate([np.zeros(min(d, len(x)), np.float32), x[: max(0, len(x) - d)]])
        return x + np.float32(drawn["volume"]) * delayed

    spectral_domain = "wave"

    def gpu(self, x, drawn, cfg, sr, g):
        return _echo(x, drawn["delay_ms"], drawn["volume"], sr)

    def spectral_wave(self, x, drawn, cfg, sr, rate, signal):
        return _echo(x, drawn["delay_ms"] * rate, drawn["volume"], sr)


def _echo(x, delay_ms, volume, sr: int):
    import torch

    d = torch.round(delay_ms * sr / 1000).long()[:, None]
    src = torch.arange(x.shape[1], device=x.device)[None] - d
    delayed = x.gather(1, src.clamp_min(0)) * (src >= 0)
    return x + volume[:, None] * delayed


@register_transform
class Reverb(Transform):
    """A synthetic room: exponentially decaying Gaussian noise (-60 dB at rt60), unit energy, mixed in at
    ``wet``. The impulse response is as long as max_rt60_s allows, so every example has the same length."""

    name = "reverb"
    params = {"min_rt60_s": (0.2, POSITIVE), "max_rt60_s": (1.2, POSITIVE),
              "min_wet": (0.1, UNIT), "max_wet": (0.5, UNIT)}
    n_uniforms = 2

    def draw(self, cfg, u, xp):
        return {"rt60_s": lerp(cfg["min_rt60_s"], cfg["max_rt60_s"], u[:, 0]),
                "wet": lerp(cfg["min_wet"], cfg["max_wet"], u[:, 1])}

    def cpu(self, x, drawn, cfg, sr, rng):
        from scipy.signal import fftconvolve

        n_ir = max(1, int(math.ceil(float(cfg["max_rt60_s"]) * sr)))
        t = np.arange(n_ir) / sr
        ir = rng.standard_normal(n_ir) * np.exp(-math.log(1000.0) * t / drawn["rt60_s"])
        ir /= max(np.sqrt(np.sum(ir ** 2)), 1e-9)
        wet = fftconvolve(x, ir.astype(np.float32))[: len(x)]
        return ((1 - drawn["wet"]) * x + drawn["wet"] * wet).astype(np.float32)

    spectral_domain = "wave"

    def draw_signal(self, n, cfg, sr, out_len, g, like):
        import torch

        n_ir = max(1, int(math.ceil(float(cfg["max_rt60_s"]) * sr)))
        return torch.randn(n, n_ir, generator=g, device=like.device, dtype=like.dtype)

    def gpu(self, x, drawn, cfg, sr, g):
        noise = self.draw_signal(x.shape[0], cfg, sr, x.shape[1], g, x)
        return _room(x, noise, drawn["rt60_s"], drawn["wet"], sr)

    def spectral_wave(self, x, drawn, cfg, sr, rate, signal):
        # the response stays max_rt60_s long (the draw's size): a decay stretched by r > 1 is cut at -60 / r dB
        return _room(x, signal, drawn["rt60_s"] * rate, drawn["wet"], sr)


def _room(x, noise, rt60_s, wet, sr: int):
    """x convolved with ``noise`` decaying by 60 dB in rt60_s [n] (unit energy), mixed in at ``wet`` [n]."""
    import torch

    n_ir = noise.shape[1]
    t = torch.arange(n_ir, device=x.device, dtype=x.dtype)[None] / sr
    ir = noise * torch.exp(-math.log(1000.0) * t / rt60_s[:, None])
    ir = ir / ir.pow(2).sum(1, keepdim=True).sqrt().clamp_min(1e-9)
    n = x.shape[1]
    n_fft = fast_len(n + n_ir)
    wet_part = torch.fft.irfft(torch.fft.rfft(x, n_fft) * torch.fft.rfft(ir, n_fft), n_fft)[:, :n]
    w = wet[:, None]
    return (1 - w) * x + w * wet_part
