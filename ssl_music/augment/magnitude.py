"""Time-stretch and pitch shift of magnitude spectrograms (the spectral backend's two warps).

A spectrogram front-end keeps only the STFT's magnitude, so the phase a vocoder reconstructs is thrown
away: stretching by r is reading source frame k * r for output frame k (interpolating magnitudes between
the two neighbours), and shifting by s semitones is reading source bin k / 2^(s/12) for output bin k.

Magnitudes are [N, T, F] (frames, bins), the memory layout torch.stft returns: reading whole frames (the
stretch) is then a copy of contiguous rows, and reading bins (the shift) a gather within rows, each an
order of magnitude faster than the same reads across the other axis. Imports nothing of the package, so
transforms and backends can both use it.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def magnitude(spec: Tensor) -> Tensor:
    """Complex STFT [N, F, T] (torch's layout) -> contiguous magnitudes [N, T, F]."""
    # hypot on the real and imaginary parts: several times faster on CPU than the complex abs
    re_im = torch.view_as_real(spec.transpose(1, 2))
    return torch.hypot(re_im[..., 0], re_im[..., 1]).contiguous()


def stretched_frames(n_src: int, rate: float) -> int:
    """Frames a stretch by ``rate`` makes of ``n_src`` source frames: frame k reads k * rate <= n_src - 1
    (give or take a rounding of rate: a position a hair past the last frame reads the last frame)."""
    return int((n_src - 1) / rate * (1 + 1e-6)) + 1


def _split(pos: Tensor, n: int, dtype: torch.dtype):
    """Fractional positions in [0, n - 1] -> (left index, weight of the right one); the left index stays
    <= n - 2, so the weight reaches exactly 1 at the last entry (which lerp returns exactly)."""
    i0 = pos.floor().long().clamp_(0, n - 2)
    return i0, (pos - i0).to(dtype)


def stretch_frames(mag: Tensor, rate: Tensor, n_out: Optional[int] = None) -> Tensor:
    """[N, T, F] -> [N, n_out, F]: output frame k is source frame k * rate_n (r > 1 faster). A rate of 1
    returns the first frames exactly.

    Without ``n_out`` the output has :func:`stretched_frames` frames for the smallest rate; rows whose
    reading runs past the last source frame repeat it (a caller that crops never reads them).
    """
    n, t, f = mag.shape
    rate = rate.to(torch.float64)
    if n_out is None:
        n_out = stretched_frames(t, float(rate.min()))
    pos = (torch.arange(n_out, device=mag.device, dtype=torch.float64)[None] * rate[:, None]).clamp_(max=t - 1)
    i0, frac = _split(pos, t, mag.dtype)
    rows = (i0 + torch.arange(n, device=mag.device)[:, None] * t).reshape(-1)
    flat = mag.reshape(n * t, f)
    lo, hi = (flat.index_select(0, r).reshape(n, n_out, f) for r in (rows, rows + 1))
    return torch.lerp(lo, hi, frac[:, :, None])


def warp_bins(mag: Tensor, ratio: Tensor) -> Tensor:
    """[N, T, F] -> [N, T, F]: output bin k is source bin k / ratio_n, zero past the top bin (a shift
    down leaves the top of the band empty, as resampling does). A ratio of 1 returns mag exactly.

    Magnitudes are scaled by 1 / sqrt(ratio): a shift spreads (or squeezes) the power over ratio times as
    many bins while keeping the total, as a sine keeps its amplitude and a noise its power.
    """
    n, t, f = mag.shape
    ratio = ratio.to(torch.float64)
    src = torch.arange(f, device=mag.device, dtype=torch.float64)[None] / ratio[:, None]      # [N, F]
    i0, frac = _split(src.clamp(max=f - 1), f, mag.dtype)
    gain = ((src <= f - 1) * ratio[:, None].rsqrt()).to(mag.dtype)
    lo, hi = (mag.gather(2, i[:, None, :].expand(n, t, f)) for i in (i0, i0 + 1))
    return torch.lerp(lo, hi, frac[:, None, :]).mul_(gain[:, None, :])
