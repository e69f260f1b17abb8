"""Batched torch augmentations: one call per batch, independent random parameters per example.

Nothing loops over the batch. Time-stretch and pitch shift are in :mod:`ssl_music.augment.vocoder`; a
time_stretch directly followed by pitch_shift in a chain (and the tempo view's stretch followed by the
chain's pitch_shift) runs as one stretch and one read-back. Filters are frequency responses multiplied
in the rFFT domain. Works on CPU and CUDA tensors alike.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional

import torch
from torch import Tensor, nn

from ssl_music.augment.chain import N_UNIFORMS, draw_params, tempo_rates
from ssl_music.augment.vocoder import pitch_shift, stretch, stretch_shift

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


def _crop(x: Tensor, n: int) -> Tensor:
    # a view when x is long enough: a copy of the whole batch costs as much as a cheap transform
    return x[:, :n] if x.shape[1] >= n else nn.functional.pad(x, (0, n - x.shape[1]))


def _on_rows(y: Tensor, mask: Tensor, fn: Callable[[Tensor], Tensor]) -> Tensor:
    """y with the rows where ``mask`` holds replaced by fn(those row indices); fn sees only those rows."""
    idx = mask.nonzero().squeeze(1)
    if idx.numel() == 0:
        return y
    if idx.numel() == mask.numel():  # all rows: skip the gather/scatter copies
        return fn(None)
    y = y.clone()
    y[idx] = fn(idx)
    return y


def _sub(t: Tensor, idx: Optional[Tensor]) -> Tensor:
    return t if idx is None else t[idx]


class BatchTransform(nn.Module):
    """One chain entry: applies with probability p per example, parameters drawn per example."""

    def __init__(self, name: str, p: float, params: Dict[str, Any], sample_rate: int, out_len: int):
        super().__init__()
        self.name, self.p, self.params, self.sample_rate, self.out_len = name, p, dict(params), sample_rate, out_len

    def draw(self, x: Tensor, g: Optional[torch.Generator], record: Optional[List]):
        """(applied [N] bool, params {name: [N]}, generator for large random tensors) for a batch like x."""
        n = x.shape[0]
        u = uniforms(n, 1 + N_UNIFORMS[self.name], g, x.device)
        apply = u[:, 0] < self.p
        prm = {k: torch.as_tensor(v, dtype=x.dtype, device=x.device)
               for k, v in draw_params(self.name, self.params, u[:, 1:], torch).items()}
        big_g = device_generator(g, x.device)
        if record is not None:
            record.append((self.name, apply, prm))
        return apply, prm, big_g

    def forward(self, x: Tensor, g: Optional[torch.Generator] = None, record: Optional[List] = None) -> Tensor:
        apply, prm, big_g = self.draw(x, g, record)
        if self.name in ("gain", "polarity"):  # one pass, factor 1 where not applied: no row copies, no sync
            one = torch.ones_like(apply, dtype=x.dtype)
            factor = -one if self.name == "polarity" else 10 ** (prm["gain_db"] / 20)
            return x * torch.where(apply, factor, one)[:, None]
        if self.name == "time_stretch":   # not stretched = the first out_len samples
            return _on_rows(_crop(x, self.out_len), apply,
                            lambda i: stretch(_sub(x, i), _sub(prm["rate"], i), self.out_len))
        return _on_rows(x, apply, lambda i: _apply(self.name, _sub(x, i), {k: _sub(v, i) for k, v in prm.items()},
                                                   self.sample_rate, big_g, self.params))


def stretch_then_shift(x: Tensor, rate: Tensor, stretched: Tensor, semitones: Tensor, shifted: Tensor,
                       out_len: int) -> Tensor:
    """A time_stretch (``rate`` where ``stretched``) followed by a pitch_shift (``semitones`` where
    ``shifted``), each row through at most one phase vocoder; rows with neither are cropped to out_len."""
    y = _crop(x, out_len)
    y = _on_rows(y, stretched & ~shifted, lambda i: stretch(_sub(x, i), _sub(rate, i), out_len))
    rate = torch.where(stretched, rate, torch.ones_like(rate))
    return _on_rows(y, shifted, lambda i: stretch_shift(_sub(x, i), _sub(rate, i), _sub(semitones, i), out_len))


class BatchChain(nn.Module):
    """A resolved chain on batches [N, S] -> [N, out_len]; the crop to out_len happens at time_stretch,
    or first thing when the chain has none."""

    def __init__(self, chain: Dict[str, Dict[str, Any]], sample_rate: int, out_len: int):
        super().__init__()
        self.out_len = out_len
        self.transforms = nn.ModuleList(
            BatchTransform(name, spec["p"], spec["params"], sample_rate, out_len) for name, spec in chain.items())
        self.has_stretch = "time_stretch" in chain

    def forward(self, x: Tensor, g: Optional[torch.Generator] = None, record: Optional[List] = None,
                rate: Optional[Tensor] = None) -> Tensor:
        """``rate`` [N]: x is a source to stretch by it first (the tempo view); the chain has no time_stretch."""
        ts = list(self.transforms)
        i = 0
        if rate is not None:
            everywhere = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
            if ts and ts[0].name == "pitch_shift":
                apply, prm, _ = ts[0].draw(x, g, record)
                x = stretch_then_shift(x, rate, everywhere, prm["semitones"], apply, self.out_len)
                i = 1
            else:
                x = stretch(x, rate, self.out_len)
        elif not self.has_stretch:
            x = _crop(x, self.out_len)
        while i < len(ts):
            if ts[i].name == "time_stretch" and i + 1 < len(ts) and ts[i + 1].name == "pitch_shift":
                # drawn in chain order, so the random stream is the same as applying them one by one
                s_apply, s_prm, _ = ts[i].draw(x, g, record)
                p_apply, p_prm, _ = ts[i + 1].draw(x, g, record)
                x = stretch_then_shift(x, s_prm["rate"], s_apply, p_prm["semitones"], p_apply, self.out_len)
                i += 2
                continue
            x = ts[i](x, g, record)
            i += 1
        return x


def tempo_draw(b: int, tempo: Dict[str, float], g: Optional[torch.Generator], device):
    """(rates [B, 2], same [B]) for the tempo view; ``tempo`` as data.tempo."""
    u = uniforms(b, 3, g, device).double()
    return tempo_rates(u, xp=torch, **tempo)


def tempo_pair(x: Tensor, tempo: Dict[str, float], g: Optional[torch.Generator], out_len: int):
    """x [B, 2, S] -> (stretched [B, 2, out_len], same [B], rates [B, 2]); ``tempo`` as data.tempo."""
    b = x.shape[0]
    rates, same = tempo_draw(b, tempo, g, x.device)
    y = stretch(x.reshape(b * 2, -1), rates.reshape(-1).to(x.dtype), out_len)
    return y.reshape(b, 2, out_len), same.to(x.dtype), rates.to(x.dtype)
