"""Filters: low_pass, high_pass, high_low_pass, band_pass (Butterworth) and eq (peaking biquad).

The cpu backend runs audiomentations' filters; the gpu backend multiplies by the same filters' magnitude
(Butterworth) or complex (biquad) response in the rFFT domain, all rows in one FFT; the spectral backend
multiplies the magnitude STFT by the response's modulus at the bins' frequencies.
"""
from __future__ import annotations

import math

from ssl_music.augment.transforms.base import (BANDWIDTH, DB, FREQ, POSITIVE, ROLLOFF, Transform, butter_order,
                                               frozen_apply, lerp, mel_uniform, register_transform)

FILTER_PAD = 4096     # zero padding that absorbs the wrap-around of the FFT-domain filters


def fast_len(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n: FFT sizes with large prime factors are several times slower."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p235 = p35 * (1 << max(0, (n - 1) // p35).bit_length()) if p35 < n else p35
            best = min(best, p235)
            p35 *= 3
        p5 *= 5
    return best


def _freqs(n_fft: int, sample_rate: int, like):
    import torch

    return torch.fft.rfftfreq(n_fft, 1.0 / sample_rate).to(like.device, like.dtype)[None]


def _butter_mag(f, cutoff, order, sample_rate: int, high: bool):
    # |H| of a digital Butterworth filter (bilinear transform, as scipy.signal.butter designs it)
    import torch

    w = torch.tan(math.pi * f.clamp(max=sample_rate / 2 * 0.9999) / sample_rate)
    wc = torch.tan(math.pi * cutoff[:, None] / sample_rate)
    ratio = (wc / w.clamp_min(1e-9)) if high else (w / wc)
    return torch.rsqrt(1 + ratio.clamp(max=1e6) ** (2 * order[:, None]))


def _fft_filter(x, response):
    """x [n, S] times ``response(spectrum, n_fft)`` in the rFFT domain, zero padded against wrap-around."""
    import torch

    n = x.shape[1]
    n_fft = fast_len(n + FILTER_PAD)
    spec = torch.fft.rfft(x, n_fft)
    return torch.fft.irfft(spec * response(spec, n_fft), n_fft)[:, :n]


def _am_pass(low: bool, x, drawn, sr: int):
    import audiomentations as am

    rolloff = 6 * int(drawn["order"])
    t = (am.LowPassFilter if low else am.HighPassFilter)(min_rolloff=6, max_rolloff=rolloff, p=1.0)
    return frozen_apply(t, x, sr, cutoff_freq=drawn["cutoff_freq"], rolloff=rolloff)


class _Filter(Transform):
    """A filter is its response [n, F] at frequencies f [1, F] (Hz), one row per example: the gpu backend
    multiplies the rows' rFFT by it, the spectral backend their magnitude STFT by its modulus."""

    def response(self, f, drawn, sr: int):
        raise NotImplementedError

    def gpu(self, x, drawn, cfg, sr, g):
        return _fft_filter(x, lambda s, n: self.response(_freqs(n, sr, x), drawn, sr))

    def spectral(self, mag, drawn, cfg, ctx, signal):
        return mag * self.response(ctx.bin_hz.to(mag.dtype)[None], drawn, ctx.sr).abs()[:, None, :]


class _Pass(_Filter):
    high: bool
    n_uniforms = 2

    def draw(self, cfg, u, xp):
        return {"cutoff_freq": mel_uniform(cfg["min_cutoff_freq"], cfg["max_cutoff_freq"], u[:, 0]),
                "order": butter_order(cfg, u[:, 1], xp)}

    def cpu(self, x, drawn, cfg, sr, rng):
        return _am_pass(not self.high, x, drawn, sr)

    def response(self, f, drawn, sr):
        return _butter_mag(f, drawn["cutoff_freq"], drawn["order"], sr, self.high)


@register_transform
class LowPass(_Pass):
    name = "low_pass"
    params = {"min_cutoff_freq": (2200.0, FREQ), "max_cutoff_freq": (4000.0, FREQ),
              "min_rolloff": (12, ROLLOFF), "max_rolloff": (24, ROLLOFF)}
    high = False


@register_transform
class HighPass(_Pass):
    name = "high_pass"
    params = {"min_cutoff_freq": (200.0, FREQ), "max_cutoff_freq": (1200.0, FREQ),
              "min_rolloff": (12, ROLLOFF), "max_rolloff": (24, ROLLOFF)}
    high = True


@register_transform
class HighLowPass(_Filter):
    """CLMR's HighLowPass: a fair coin picks a low-pass or a high-pass per example."""

    name = "high_low_pass"
    params = {"min_low_pass_freq": (2200.0, FREQ), "max_low_pass_freq": (4000.0, FREQ),
              "min_high_pass_freq": (200.0, FREQ), "max_high_pass_freq": (1200.0, FREQ),
              "min_rolloff": (12, ROLLOFF), "max_rolloff": (12, ROLLOFF)}
    n_uniforms = 3

    def draw(self, cfg, u, xp):
        low = mel_uniform(cfg["min_low_pass_freq"], cfg["max_low_pass_freq"], u[:, 1])
        high = mel_uniform(cfg["min_high_pass_freq"], cfg["max_high_pass_freq"], u[:, 1])
        is_low = u[:, 0] < 0.5
        return {"is_low": is_low * 1.0, "cutoff_freq": xp.where(is_low, low, high),
                "order": butter_order(cfg, u[:, 2], xp)}

    def cpu(self, x, drawn, cfg, sr, rng):
        return _am_pass(drawn["is_low"] > 0.5, x, drawn, sr)

    def response(self, f, drawn, sr):
        import torch

        low = _butter_mag(f, drawn["cutoff_freq"], drawn["order"], sr, high=False)
        high = _butter_mag(f, drawn["cutoff_freq"], drawn["order"], sr, high=True)
        return torch.where(drawn["is_low"][:, None] > 0.5, low, high)


@register_transform
class BandPass(_Filter):
    name = "band_pass"
    params = {"min_center_freq": (200.0, FREQ), "max_center_freq": (4000.0, FREQ),
              "min_bandwidth_fraction": (0.5, BANDWIDTH), "max_bandwidth_fraction": (1.99, BANDWIDTH),
              "min_rolloff": (12, ROLLOFF), "max_rolloff": (24, ROLLOFF)}
    n_uniforms = 3

    def draw(self, cfg, u, xp):
        center = mel_uniform(cfg["min_center_freq"], cfg["max_center_freq"], u[:, 0])
        frac = lerp(cfg["min_bandwidth_fraction"], cfg["max_bandwidth_fraction"], u[:, 1])
        return {"center_freq": center, "bandwidth": center * frac, "order": butter_order(cfg, u[:, 2], xp)}

    def cpu(self, x, drawn, cfg, sr, rng):
        import audiomentations as am

        rolloff = 6 * int(drawn["order"])
        return frozen_apply(am.BandPassFilter(min_rolloff=6, max_rolloff=rolloff, p=1.0), x, sr,
                            center_freq=drawn["center_freq"], bandwidth=drawn["bandwidth"], rolloff=rolloff)

    def response(self, f, drawn, sr):
        lo = (drawn["center_freq"] - drawn["bandwidth"] / 2).clamp_min(1.0)
        hi = (drawn["center_freq"] + drawn["bandwidth"] / 2).clamp(max=sr / 2 * 0.9999)
        return _butter_mag(f, lo, drawn["order"], sr, True) * _butter_mag(f, hi, drawn["order"], sr, False)


@register_transform
class Eq(_Filter):
    name = "eq"
    params = {"min_center_freq": (50.0, FREQ), "max_center_freq": (7500.0, FREQ),
              "min_gain_db": (-12.0, DB), "max_gain_db": (12.0, DB), "min_q": (0.5, POSITIVE), "max_q": (5.0, POSITIVE)}
    n_uniforms = 3

    def draw(self, cfg, u, xp):
        return {"center_freq": mel_uniform(cfg["min_center_freq"], cfg["max_center_freq"], u[:, 0]),
                "gain_db": lerp(cfg["min_gain_db"], cfg["max_gain_db"], u[:, 1]),
                "q": lerp(cfg["min_q"], cfg["max_q"], u[:, 2])}

    def cpu(self, x, drawn, cfg, sr, rng):
        import audiomentations as am

        return frozen_apply(am.PeakingFilter(p=1.0), x, sr, center_freq=drawn["center_freq"],
                            gain_db=drawn["gain_db"], q_factor=drawn["q"])

    def response(self, f, drawn, sr):
        # RBJ peaking biquad (same coefficients as audiomentations.PeakingFilter), evaluated at f
        import torch

        w0 = 2 * math.pi * drawn["center_freq"] / sr
        a = 10 ** (drawn["gain_db"] / 40)
        alpha = torch.sin(w0) / (2 * drawn["q"])
        b0, b1, b2 = 1 + alpha * a, -2 * torch.cos(w0), 1 - alpha * a
        a0, a1, a2 = 1 + alpha / a, -2 * torch.cos(w0), 1 - alpha / a
        z1 = torch.exp(-1j * 2 * math.pi * f / sr)
        num = b0[:, None] + b1[:, None] * z1 + b2[:, None] * z1 * z1
        den = a0[:, None] + a1[:, None] * z1 + a2[:, None] * z1 * z1
        return num / den
