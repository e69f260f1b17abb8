"""Time-stretch and pitch shift of magnitude spectrograms [N, F, T] (the spectral backend's two warps).

A spectrogram front-end keeps only the STFT's magnitude, so the phase a vocoder reconstructs is thrown
away: stretching by r is reading source frame k * r for output frame k (interpolating magnitudes between
the two neighbours), and shifting by s semitones is reading source bin k / 2^(s/12) for output bin k.
Imports nothing of the package, so transforms and backends can both use it.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def stretched_frames(n_src: int, rate: float) -> int:
    """Frames a stretch by ``rate`` makes of ``n_src`` source frames: frame k reads k * rate <= n_src - 1
    (give or take a rounding of rate: a position a hair past the last frame reads the last frame)."""
    return int((n_src - 1) / rate * (1 + 1e-6)) + 1


def _lerp_gather(mag: Tensor, pos: Tensor, dim: int) -> Tensor:
    """mag read at fractional positions ``pos`` along ``dim`` by linear interpolation; ``pos`` has size 1
    in mag's other dims but the first (the index is expanded, not materialised)."""
    n = mag.shape[dim]
    i0 = pos.floor().long().clamp_(0, n - 2)       # i0 + 1 exists; frac reaches 1 at the last entry
    frac = (pos - i0).to(mag.dtype)
    shape = list(mag.shape)
    shape[dim] = pos.shape[dim]
    lo, hi = mag.gather(dim, i0.expand(shape)), mag.gather(dim, (i0 + 1).expand(shape))
    return torch.lerp(lo, hi, frac)


def stretch_frames(mag: Tensor, rate: Tensor, n_out: Optional[int] = None) -> Tensor:
    """[N, F, T] -> [N, F, n_out]: output frame k is source frame k * rate_n (r > 1 faster).

    Without ``n_out`` the output has :func:`stretched_frames` frames for the smallest rate; rows whose
    reading runs past the last source frame repeat it (a caller that crops never reads them).
    """
    n, f, t = mag.shape
    rate = rate.to(torch.float64)
    if n_out is None:
        n_out = stretched_frames(t, float(rate.min()))
    pos = (torch.arange(n_out, device=mag.device, dtype=torch.float64)[None] * rate[:, None]).clamp_(max=t - 1)
    return _lerp_gather(mag, pos[:, None, :], 2)


def warp_bins(mag: Tensor, ratio: Tensor) -> Tensor:
    """[N, F, T] -> [N, F, T]: output bin k is source bin k / ratio_n, zero past the top bin (a shift
    down leaves the top of the band empty, as resampling does).

    Magnitudes are scaled by 1 / sqrt(ratio): a shift spreads (or squeezes) the power over ratio times as
    many bins while keeping the total, as a sine keeps its amplitude and a noise its power.
    """
    f = mag.shape[1]
    ratio = ratio.to(torch.float64)
    src = torch.arange(f, device=mag.device, dtype=torch.float64)[None] / ratio[:, None]
    gain = (src <= f - 1) * ratio[:, None].rsqrt()
    return _lerp_gather(mag, src.clamp(max=f - 1)[:, :, None], 1) * gain.to(mag.dtype)[:, :, None]
