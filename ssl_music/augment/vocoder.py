"""Batched time-stretch and pitch shift with per-example parameters, on CPU or CUDA, no loop over the batch.

Time-stretch is a phase vocoder in which example b's output frame k reads source frame k * rate_b, followed
by one inverse STFT for the whole batch. Pitch shift by s semitones stretches by 1 / 2^(s/12) and reads the
result back at positions n * 2^(s/12) with a polyphase windowed-sinc kernel (a gather of taps); a stretch by
r followed by a shift is one stretch by r / 2^(s/12) and the same read-back (:func:`stretch_shift`).

The spectrogram is kept as [B, frames, bins] so that reading whole frames (the only access pattern a
stretch needs) is a row gather of contiguous memory.
"""
from __future__ import annotations

import functools
import math
from typing import Optional

import torch
from torch import Tensor, nn

N_FFT = 512           # 32 ms at 16 kHz: short enough to keep onsets sharp (tempo), long enough for pitch
HOP = N_FFT // 4
ONSET_RATIO = 2.0     # frame energy jump (x2 = +3 dB) that counts as an onset for phase reset
SINC_HALF_TAPS = 4    # 8-tap Lanczos kernel for the pitch-shift resampler
SINC_PHASES = 512     # fractional-delay resolution of the resampler's kernel table


@functools.lru_cache(maxsize=32)
def _window(n_fft: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    return torch.hann_window(n_fft, device=device, dtype=dtype)


def _overlap_add(frames: Tensor, hop: int, window: Optional[Tensor] = None) -> Tensor:
    """[B, T, n_fft] -> [B, (T - 1) * hop + n_fft]; n_fft must be a multiple of hop (a fixed, small loop)."""
    b, t, n_fft = frames.shape
    q = n_fft // hop
    parts = frames.reshape(b, t, q, hop)
    out = frames.new_zeros(b, t + q - 1, hop)
    for j in range(q):
        if window is None:
            out[:, j:j + t] += parts[:, :, j]
        else:  # the synthesis window, applied on the way instead of in a pass of its own
            out[:, j:j + t].addcmul_(parts[:, :, j], window[j * hop:(j + 1) * hop])
    return out.reshape(b, -1)


@functools.lru_cache(maxsize=32)
def _inverse_envelope(n_frames: int, n_fft: int, hop: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """1 / overlap-added squared window (what torch.istft divides by), cached per frame count."""
    w2 = _window(n_fft, device, dtype).square().expand(1, n_frames, n_fft)
    env = _overlap_add(w2, hop)[0]
    return torch.where(env > 1e-11, 1.0 / env, torch.zeros_like(env))


def stft(x: Tensor, n_fft: int = N_FFT, hop: int = HOP) -> Tensor:
    """[B, S] -> [B, 1 + S // hop, n_fft // 2 + 1], centred frames, zero padded at both ends."""
    # Zero (not reflect) padding: the phase-accumulation seed is frame 0, and a reflected frame 0 gives
    # inter-bin phases no real sinusoid has, which then cancel in the overlap-add for every later frame.
    xp = nn.functional.pad(x, (n_fft // 2, n_fft // 2))
    frames = xp.unfold(1, n_fft, hop) * _window(n_fft, x.device, x.dtype)
    return torch.fft.rfft(frames, dim=-1)


def istft(spec: Tensor, n_fft: int, hop: int, length: int) -> Tensor:
    """Inverse of :func:`stft` (windowed overlap-add, as torch.istft with center=True); -> [B, length]."""
    frames = torch.fft.irfft(spec, n_fft, dim=-1)
    y = _overlap_add(frames, hop, _window(n_fft, spec.device, frames.dtype))
    y = y * _inverse_envelope(spec.shape[1], n_fft, hop, spec.device, y.dtype)
    y = y[:, n_fft // 2: n_fft // 2 + length]
    return nn.functional.pad(y, (0, length - y.shape[1])) if y.shape[1] < length else y


def _rows(flat: Tensor, idx: Tensor, n_src: int) -> Tensor:
    """Frames idx [B, K] of the flattened spectrogram [B * n_src, F] -> [B, K, F] (contiguous row copies)."""
    b, k = idx.shape
    offset = torch.arange(b, device=idx.device)[:, None] * n_src
    return flat.index_select(0, (idx + offset).reshape(-1)).reshape(b, k, flat.shape[1])


def stretch(x: Tensor, rate: Tensor, out_len: int, max_freq: Optional[Tensor] = None,
            n_fft: int = N_FFT, hop: int = HOP) -> Tensor:
    """Time-stretch each row of ``x`` [B, S] by ``rate`` [B] (r > 1 faster); returns [B, out_len].

    Output frame k reads source frame k * rate_b: magnitude interpolated between the two neighbours, phase
    advanced by the neighbours' phase difference. ``max_freq`` [B] (fraction of Nyquist) zeroes bins above
    it, the anti-aliasing a later resampler needs.
    """
    b, s = x.shape
    if s < n_fft:
        x = nn.functional.pad(x, (0, n_fft - s))
    spec = stft(x, n_fft, hop)                                                   # [B, T, F]
    n_src, n_freq = spec.shape[1], spec.shape[2]
    # Real kernels on the real and imaginary parts: torch's CPU kernels for real tensors (hypot, atan2,
    # sin, cos) are several times faster than the complex ones (abs, angle, polar).
    re, im = spec.real.contiguous(), spec.imag.contiguous()   # atan2 is not vectorised for strided input
    mag = torch.hypot(re, im)
    energy = torch.linalg.vector_norm(mag, dim=2).square()                         # [B, T]
    mag = mag.reshape(b * n_src, n_freq)
    phase = torch.atan2(im, re)                                                    # [B, T, F]
    # For equal analysis and synthesis hops the classic "bin advance + wrapped deviation" equals the raw
    # difference modulo 2 pi. Not wrapped: the raw difference is in (-2 pi, 2 pi), at most twice a wrapped
    # one, which costs the float32 running sum one bit and saves three passes. (The last source frame has
    # no successor; see i0 below.)
    inc = torch.diff(phase, dim=1).reshape(b * (n_src - 1), n_freq)                # [B, T-1, F]
    phase = phase.reshape(b * n_src, n_freq)

    n_out = out_len // hop + 1
    pos = torch.arange(n_out, device=x.device, dtype=x.dtype)[None] * rate.to(x.dtype)[:, None]
    pos = pos.clamp(max=n_src - 1)
    # i0 <= n_src - 2 so that frame i0 + 1 exists; frac then reaches 1 at the last frame, which lerp
    # returns exactly, and the last frame reuses the advance before it.
    i0 = pos.floor().long().clamp_(max=n_src - 2)
    frac = (pos - i0)[:, :, None]
    m = torch.lerp(_rows(mag, i0, n_src), _rows(mag, i0 + 1, n_src), frac)      # [B, K, F]
    if max_freq is not None:
        bins = torch.arange(n_freq, device=x.device, dtype=x.dtype)
        m = m * (bins[None, None, :] < max_freq.to(x.dtype)[:, None, None] * (n_freq - 1))
    step = _rows(inc, i0, n_src - 1)
    cum = torch.cumsum(step, 1).sub_(step)         # exclusive: phase advance since output frame 0
    # Phase reset at onsets: an output frame that reaches a new source frame whose energy jumps takes that
    # frame's own phase, so clicks keep their position instead of being smeared (tempo depends on it).
    # acc_k = phase at the last reset r <= k + advance accumulated since r; frame 0 always resets.
    onset = energy > ONSET_RATIO * torch.cat([energy[:, :1], energy[:, :-1]], 1) + 1e-10
    near = pos.round().long()
    reset = onset.gather(1, near) & (near != torch.cat([near[:, :1] - 1, near[:, :-1]], 1))
    reset[:, 0] = True
    k = torch.arange(n_out, device=x.device)[None].expand(b, n_out)
    last = torch.where(reset, k, torch.zeros_like(k)).cummax(1).values                # [B, K]
    seed = _rows(phase, near.gather(1, last), n_src) - _rows(cum.reshape(b * n_out, n_freq), last, n_out)
    acc = cum.add_(seed)
    # m e^(i acc) written straight into the interleaved complex layout: no separate interleaving copy
    y = torch.empty(*acc.shape, 2, device=x.device, dtype=x.dtype)
    torch.cos(acc, out=y[..., 0])
    torch.sin(acc, out=y[..., 1])
    return istft(torch.view_as_complex(y.mul_(m[..., None])), n_fft, hop, out_len)


@functools.lru_cache(maxsize=32)
def _sinc_table(half: int, phases: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """[phases + 1, 2*half] Lanczos (sinc-windowed sinc) taps for fractional delays k / phases."""
    frac = torch.arange(phases + 1, dtype=torch.float64)[:, None] / phases
    d = frac - torch.arange(-half + 1, half + 1, dtype=torch.float64)[None]
    w = torch.sinc(d) * torch.sinc(d / half)
    return (w / w.sum(1, keepdim=True)).to(device, dtype)


def resample_at(z: Tensor, step: Tensor, out_len: int, half: int = SINC_HALF_TAPS, phases: int = SINC_PHASES,
                chunk: int = 16384) -> Tensor:
    """Read each row of ``z`` [B, M] at positions n * step_b (n < out_len) by windowed-sinc interpolation.

    The kernel is a fixed polyphase table (no per-call design); ``z`` must already be band-limited to
    Nyquist / step where step > 1 (``stretch(max_freq=...)`` does it).
    """
    b, m = z.shape
    table = _sinc_table(half, phases, z.device, z.dtype)
    zp = nn.functional.pad(z, (half - 1, half + chunk))    # taps left of 0 and right of the end read zeros
    frames = zp.unfold(1, 2 * half, 1)                      # [B, M', 2*half] view: the taps around each sample
    rows = torch.arange(b, device=z.device)[:, None]
    step = step.double()[:, None]
    outs = []
    for start in range(0, out_len, chunk):  # bounds memory to B * chunk * 2*half; the batch stays vectorised
        n = torch.arange(start, min(out_len, start + chunk), device=z.device, dtype=torch.float64)
        t = n[None] * step                                            # [B, n], float64: exact positions
        base = t.floor()
        w = table[(t - base).mul_(phases).round_().long()]            # [B, n, 2*half]
        taps = frames[rows, base.long().clamp_(0, m)]                 # [B, n, 2*half]
        outs.append(torch.linalg.vecdot(taps, w))             # fused multiply-sum, no [B, n, 2*half] product
    return torch.cat(outs, 1)


def stretch_shift(x: Tensor, rate: Tensor, semitones: Tensor, out_len: int) -> Tensor:
    """Time-stretch by ``rate`` [B], then pitch shift by ``semitones`` [B]: [B, S] -> [B, out_len].

    One phase vocoder instead of two: stretching by r and then shifting (= stretching by 1 / ratio and
    reading back ratio times faster) is stretching by r / ratio and reading back ratio times faster.
    """
    ratio = torch.pow(2.0, semitones.to(x.dtype) / 12.0)
    long_len = int(math.ceil(out_len * float(ratio.max()))) + SINC_HALF_TAPS + 1
    # same pitch, ratio times longer, band-limited so that reading it ratio times faster does not alias
    z = stretch(x, rate.to(x.dtype) / ratio, long_len, max_freq=torch.clamp(0.95 / ratio, max=1.0))
    return resample_at(z, ratio, out_len)          # out_len samples: pitch times ratio


def pitch_shift(x: Tensor, semitones: Tensor) -> Tensor:
    return stretch_shift(x, torch.ones_like(semitones, dtype=x.dtype), semitones, x.shape[1])
