"""Batched torch augmentations: one call per batch, independent random parameters per example.

Nothing loops over the batch. Time-stretch is a phase vocoder in which example i's output frame k reads
source frame k * rate_i (two gathered neighbours, interpolated magnitude, phase advance accumulated with a
cumulative sum) followed by one iSTFT for the whole batch. Pitch shift stretches by 2^(s/12) and reads
the result back at per-example positions n * 2^(s/12) with a windowed-sinc kernel (a gather of taps).
Filters are frequency responses multiplied in the rFFT domain. Works on CPU and CUDA tensors alike.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional

import torch
from torch import Tensor, nn

from ssl_music.augment.chain import N_UNIFORMS, draw_params, tempo_rates

N_FFT = 512           # 32 ms at 16 kHz: short enough to keep onsets sharp (tempo), long enough for pitch
HOP = N_FFT // 4
SINC_HALF_TAPS = 4    # 8-tap Lanczos kernel for the pitch-shift resampler
ONSET_RATIO = 2.0     # frame energy jump (x2 = +3 dB) that counts as an onset for phase reset
FILTER_PAD = 4096     # zero padding that absorbs the wrap-around of the FFT-domain filters


# ------------------------------------------------------------------------------------- random numbers
def uniforms(n: int, k: int, g: Optional[torch.Generator], device) -> Tensor:
    gen_device = g.device if g is not None else torch.device("cpu")
    return torch.rand(n, k, generator=g, device=gen_device).to(device)


def device_generator(g: Optional[torch.Generator], device) -> Optional[torch.Generator]:
    """A generator on ``device`` derived from ``g``, for large random tensors (noise, impulse responses)."""
    if g is None or g.device == torch.device(device):
        return g
    seed = int(torch.randint(0, 2**62, (1,), generator=g, device=g.device))
    return torch.Generator(device=device).manual_seed(seed)


# --------------------------------------------------------------------------------- phase vocoder
def stretch(x: Tensor, rate: Tensor, out_len: int, max_freq: Optional[Tensor] = None,
            n_fft: int = N_FFT, hop: int = HOP) -> Tensor:
    """Time-stretch each row of ``x`` [B, S] by ``rate`` [B] (r > 1 faster); returns [B, out_len].

    ``max_freq`` [B] (fraction of Nyquist) zeroes bins above it, the anti-aliasing a later resampler needs.
    """
    b, s = x.shape
    if s < n_fft:
        x = nn.functional.pad(x, (0, n_fft - s))
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    # Zero (not reflect) padding: the phase-accumulation seed is frame 0, and a reflected frame 0 gives
    # inter-bin phases no real sinusoid has, which then cancel in the overlap-add for every later frame.
    spec = torch.stft(x, n_fft, hop, window=window, center=True, pad_mode="constant",
                      return_complex=True)                                            # [B, F, T]
    n_freq, n_src = spec.shape[1], spec.shape[2]
    mag, phase = spec.abs(), spec.angle()

    n_out = out_len // hop + 1
    pos = torch.arange(n_out, device=x.device, dtype=x.dtype)[None] * rate.to(x.dtype)[:, None]
    pos = pos.clamp(max=n_src - 1)
    i0 = pos.floor().long()
    frac = (pos - i0)[:, None, :]
    idx0 = i0[:, None, :].expand(b, n_freq, n_out)
    idx1 = (idx0 + 1).clamp(max=n_src - 1)
    m = torch.lerp(mag.gather(2, idx0), mag.gather(2, idx1), frac)
    bins = torch.arange(n_freq, device=x.device, dtype=x.dtype)
    if max_freq is not None:
        m = m * (bins[None, :, None] < max_freq.to(x.dtype)[:, None, None] * (n_freq - 1))
    # Per source frame: the phase advance to the next frame. For equal analysis and synthesis hops the
    # classic "bin advance + wrapped deviation" equals the raw difference modulo 2 pi, so the raw
    # difference, wrapped to (-pi, pi] to keep the float32 running sum precise, is all that is needed.
    # (The last source frame has no successor; it reuses the increment before it.)
    src_inc = torch.remainder(torch.diff(phase, dim=2) + math.pi, 2 * math.pi) - math.pi
    inc = src_inc.gather(2, idx0.clamp(max=max(0, n_src - 2)))
    cum = torch.cumsum(inc, 2) - inc                    # exclusive: phase advance since output frame 0
    # Phase reset at onsets: an output frame that reaches a new source frame whose energy jumps takes that
    # frame's own phase, so clicks keep their position instead of being smeared (tempo depends on it).
    # acc_k = phase at the last reset r <= k + advance accumulated since r; frame 0 always resets.
    energy = mag.pow(2).sum(1)                                                    # [B, T]
    onset = energy > ONSET_RATIO * torch.cat([energy[:, :1], energy[:, :-1]], 1) + 1e-10
    near = pos.round().long()
    reset = onset.gather(1, near) & (near != torch.cat([near[:, :1] - 1, near[:, :-1]], 1))
    reset[:, 0] = True
    k = torch.arange(n_out, device=x.device)[None].expand(b, n_out)
    last = torch.where(reset, k, torch.zeros_like(k)).cummax(1).values[:, None, :].expand(b, n_freq, n_out)
    start = phase.gather(2, near[:, None, :].expand(b, n_freq, n_out)) - cum
    acc = start.gather(2, last) + cum
    return torch.istft(torch.polar(m, acc), n_fft, hop, window=window, center=True, length=out_len)


def _sinc_table(half: int, phases: int, device, dtype) -> Tensor:
    """[phases + 1, 2*half] Lanczos (sinc-windowed sinc) taps for fractional delays k / phases."""
    frac = torch.arange(phases + 1, device=device, dtype=torch.float64)[:, None] / phases
    d = frac - torch.arange(-half + 1, half + 1, device=device, dtype=torch.float64)[None]
    w = torch.sinc(d) * torch.sinc(d / half)
    return (w / w.sum(1, keepdim=True)).to(dtype)


def resample_at(z: Tensor, step: Tensor, out_len: int, half: int = SINC_HALF_TAPS, phases: int = 512,
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
    outs = []
    for start in range(0, out_len, chunk):  # bounds memory to B * chunk * 2*half; the batch stays vectorised
        n = torch.arange(start, min(out_len, start + chunk), device=z.device, dtype=torch.float64)
        t = n[None] * step.double()[:, None]                          # [B, n], float64: exact positions
        base = t.floor()
        w = table[torch.round((t - base) * phases).long()]            # [B, n, 2*half]
        taps = frames[rows, base.long().clamp_(0, m)]                 # [B, n, 2*half]
        outs.append(torch.einsum("bnk,bnk->bn", taps, w))
    return torch.cat(outs, 1)


def pitch_shift(x: Tensor, semitones: Tensor) -> Tensor:
    ratio = torch.pow(2.0, semitones.to(x.dtype) / 12.0)
    n = x.shape[1]
    long_len = int(math.ceil(n * float(ratio.max()))) + SINC_HALF_TAPS + 1
    # same pitch, ratio times longer, band-limited so that reading it ratio times faster does not alias
    z = stretch(x, 1.0 / ratio, long_len, max_freq=torch.clamp(0.95 / ratio, max=1.0))
    return resample_at(z, ratio, n)          # back to n samples: pitch times ratio


# ------------------------------------------------------------------------------- spectral filters
def _freqs(n_fft: int, sample_rate: int, like: Tensor) -> Tensor:
    return torch.fft.rfftfreq(n_fft, 1.0 / sample_rate).to(like.device, like.dtype)[None]


def _butter_mag(f: Tensor, cutoff: Tensor, order: Tensor, sample_rate: int, high: bool) -> Tensor:
    # |H| of a digital Butterworth filter (bilinear transform, as scipy.signal.butter designs it)
    w = torch.tan(math.pi * f.clamp(max=sample_rate / 2 * 0.9999) / sample_rate)
    wc = torch.tan(math.pi * cutoff[:, None] / sample_rate)
    ratio = (wc / w.clamp_min(1e-9)) if high else (w / wc)
    return torch.rsqrt(1 + ratio.clamp(max=1e6) ** (2 * order[:, None]))


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


def _filter(x: Tensor, response: Callable[[Tensor, int], Tensor]) -> Tensor:
    n = x.shape[1]
    n_fft = fast_len(n + FILTER_PAD)
    spec = torch.fft.rfft(x, n_fft)
    return torch.fft.irfft(spec * response(spec, n_fft), n_fft)[:, :n]


def _pass(x, prm, sr, high):
    return _filter(x, lambda s, n: _butter_mag(_freqs(n, sr, x), prm["cutoff_freq"], prm["order"], sr, high))


def _high_low(x, prm, sr):
    def response(s, n):
        f = _freqs(n, sr, x)
        low = _butter_mag(f, prm["cutoff_freq"], prm["order"], sr, high=False)
        high = _butter_mag(f, prm["cutoff_freq"], prm["order"], sr, high=True)
        return torch.where(prm["is_low"][:, None] > 0.5, low, high)
    return _filter(x, response)


def _band(x, prm, sr):
    lo = (prm["center_freq"] - prm["bandwidth"] / 2).clamp_min(1.0)
    hi = (prm["center_freq"] + prm["bandwidth"] / 2).clamp(max=sr / 2 * 0.9999)

    def response(s, n):
        f = _freqs(n, sr, x)
        return _butter_mag(f, lo, prm["order"], sr, True) * _butter_mag(f, hi, prm["order"], sr, False)
    return _filter(x, response)


def _eq(x, prm, sr):
    # RBJ peaking biquad (same coefficients as audiomentations.PeakingFilter), evaluated on the FFT grid
    w0 = 2 * math.pi * prm["center_freq"] / sr
    a = 10 ** (prm["gain_db"] / 40)
    alpha = torch.sin(w0) / (2 * prm["q"])
    b0, b1, b2 = 1 + alpha * a, -2 * torch.cos(w0), 1 - alpha * a
    a0, a1, a2 = 1 + alpha / a, -2 * torch.cos(w0), 1 - alpha / a

    def response(s, n):
        z1 = torch.exp(-1j * 2 * math.pi * _freqs(n, sr, x) / sr)
        num = b0[:, None] + b1[:, None] * z1 + b2[:, None] * z1 * z1
        den = a0[:, None] + a1[:, None] * z1 + a2[:, None] * z1 * z1
        return (num / den).to(s.dtype)
    return _filter(x, response)


# ------------------------------------------------------------------------------------- the rest
def _rms(x: Tensor) -> Tensor:
    return x.pow(2).mean(1, keepdim=True).sqrt()


def _noise(x, prm, sr, g):
    std = _rms(x) / 10 ** (prm["snr_db"][:, None] / 20)
    return x + std * torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)


def _delay(x, prm, sr):
    d = torch.round(prm["delay_ms"] * sr / 1000).long()[:, None]
    n = torch.arange(x.shape[1], device=x.device)[None]
    src = n - d
    delayed = x.gather(1, src.clamp_min(0)) * (src >= 0)
    return x + prm["volume"][:, None] * delayed


def _reverb(x, prm, sr, g, max_rt60: float):
    # Synthetic room: exponentially decaying Gaussian noise (-60 dB at rt60), unit energy.
    n_ir = max(1, int(math.ceil(max_rt60 * sr)))
    t = torch.arange(n_ir, device=x.device, dtype=x.dtype)[None] / sr
    ir = torch.randn(x.shape[0], n_ir, generator=g, device=x.device, dtype=x.dtype)
    ir = ir * torch.exp(-math.log(1000.0) * t / prm["rt60_s"][:, None])
    ir = ir / ir.pow(2).sum(1, keepdim=True).sqrt().clamp_min(1e-9)
    n = x.shape[1]
    n_fft = fast_len(n + n_ir)
    wet = torch.fft.irfft(torch.fft.rfft(x, n_fft) * torch.fft.rfft(ir, n_fft), n_fft)[:, :n]
    w = prm["wet"][:, None]
    return (1 - w) * x + w * wet


def _apply(name: str, x: Tensor, prm: Dict[str, Tensor], sr: int, g, params: Dict[str, Any]) -> Tensor:
    if name == "pitch_shift":
        return pitch_shift(x, prm["semitones"])
    if name == "gain":
        return x * 10 ** (prm["gain_db"][:, None] / 20)
    if name == "polarity":
        return -x
    if name == "noise":
        return _noise(x, prm, sr, g)
    if name in ("low_pass", "high_pass"):
        return _pass(x, prm, sr, high=name == "high_pass")
    if name == "high_low_pass":
        return _high_low(x, prm, sr)
    if name == "band_pass":
        return _band(x, prm, sr)
    if name == "eq":
        return _eq(x, prm, sr)
    if name == "delay":
        return _delay(x, prm, sr)
    if name == "reverb":
        return _reverb(x, prm, sr, g, float(params["max_rt60_s"]))
    raise KeyError(name)


class BatchTransform(nn.Module):
    """One chain entry: applies with probability p per example, parameters drawn per example."""

    def __init__(self, name: str, p: float, params: Dict[str, Any], sample_rate: int, out_len: int):
        super().__init__()
        self.name, self.p, self.params, self.sample_rate, self.out_len = name, p, dict(params), sample_rate, out_len

    def forward(self, x: Tensor, g: Optional[torch.Generator] = None, record: Optional[List] = None) -> Tensor:
        n = x.shape[0]
        u = uniforms(n, 1 + N_UNIFORMS[self.name], g, x.device)
        apply = u[:, 0] < self.p
        prm = {k: torch.as_tensor(v, dtype=x.dtype, device=x.device)
               for k, v in draw_params(self.name, self.params, u[:, 1:], torch).items()}
        big_g = device_generator(g, x.device)
        if record is not None:
            record.append((self.name, apply, prm))
        if self.name == "time_stretch":   # not stretched = the first out_len samples
            y = nn.functional.pad(x[:, : self.out_len], (0, max(0, self.out_len - x.shape[1])))
        else:
            y = x
        idx = apply.nonzero().squeeze(1)
        if idx.numel() == 0:
            return y
        if idx.numel() == n:  # all applied: skip the gather/scatter copies
            if self.name == "time_stretch":
                return stretch(x, prm["rate"], self.out_len)
            return _apply(self.name, x, prm, self.sample_rate, big_g, self.params)
        y = y.clone()
        sub = {k: v[idx] for k, v in prm.items()}
        if self.name == "time_stretch":
            y[idx] = stretch(x[idx], sub["rate"], self.out_len)
        else:
            y[idx] = _apply(self.name, x[idx], sub, self.sample_rate, big_g, self.params)
        return y


class BatchChain(nn.Module):
    """A resolved chain on batches [N, S] -> [N, out_len]; the crop to out_len happens at time_stretch,
    or first thing when the chain has none."""

    def __init__(self, chain: Dict[str, Dict[str, Any]], sample_rate: int, out_len: int):
        super().__init__()
        self.out_len = out_len
        self.transforms = nn.ModuleList(
            BatchTransform(name, spec["p"], spec["params"], sample_rate, out_len) for name, spec in chain.items())
        self.has_stretch = "time_stretch" in chain

    def forward(self, x: Tensor, g: Optional[torch.Generator] = None, record: Optional[List] = None) -> Tensor:
        if not self.has_stretch:
            x = nn.functional.pad(x[:, : self.out_len], (0, max(0, self.out_len - x.shape[1])))
        for t in self.transforms:
            x = t(x, g, record)
        return x


def tempo_pair(x: Tensor, tempo: Dict[str, float], g: Optional[torch.Generator], out_len: int):
    """x [B, 2, S] -> (stretched [B, 2, out_len], same [B], rates [B, 2]); ``tempo`` as data.tempo."""
    b = x.shape[0]
    u = uniforms(b, 3, g, x.device).double()
    rates, same = tempo_rates(u, xp=torch, **tempo)
    y = stretch(x.reshape(b * 2, -1), rates.reshape(-1).to(x.dtype), out_len)
    return y.reshape(b, 2, out_len), same.to(x.dtype), rates.to(x.dtype)
