"""Periodicity pooling: a tempo statistic that global mean/max pooling cannot provide.

Mean and max over time discard *when* things happen, so a CNN with a ~1 s receptive field has to learn
tempo as a non-linear function of dilated-conv activations, which a few hundred CPU steps do not reach
(the tempo-pair objective stays at chance). The autocorrelation of an onset envelope makes the beat
period explicit; sampling it on a logarithmic lag axis turns a tempo ratio r into a shift of log(r) bins,
so "same tempo" becomes a near-linear comparison of two vectors that the tempo head's e1 * e2 term can
express directly.

``PeriodicityPool`` (``model.periodicity: fixed``) computes it from the input spectrogram, a fixed statistic
with a learned projection; ``LearnedPeriodicity`` (``learned``) from the encoder's own frame features.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


PERIODICITY = ("fixed", "learned", "off")   # model.periodicity


def periodicity_mode(value) -> str:
    """``model.periodicity`` as one of :data:`PERIODICITY`: configs written before ``learned`` existed hold a
    bool (true: the fixed block, today's ``fixed``; false: none), and YAML reads a bare ``off`` as false.
    Anything else is returned as given, for validation to name."""
    if isinstance(value, bool) or value is None:
        return "fixed" if value else "off"
    return str(value).strip().lower()


def onset_envelope(x: torch.Tensor) -> torch.Tensor:
    """[B, C, F, T] (log-magnitude) -> [B, T]: half-wave rectified temporal difference, mean over C and F.

    Rectification keeps note starts and drops decays, which is what beat periodicity is made of.
    """
    diff = F.relu(x[..., 1:] - x[..., :-1])
    env = diff.mean(dim=(1, 2))
    return F.pad(env, (1, 0))


def autocorrelation(env: torch.Tensor) -> torch.Tensor:
    """[B, T] -> [B, T]: unbiased, zero-lag-normalised autocorrelation of the mean-removed envelope.

    Dividing by the overlap T - lag removes the linear decay of the biased estimate, which would otherwise
    favour short lags (fast tempi) and break the shift-equivariance that log-lag sampling aims for.
    """
    t = env.shape[-1]
    env = env - env.mean(dim=-1, keepdim=True)
    n = 1 << math.ceil(math.log2(2 * t))  # zero-padding to >= 2T makes the circular correlation linear
    spec = torch.fft.rfft(env.float(), n=n)
    ac = torch.fft.irfft(spec.real.square() + spec.imag.square(), n=n)[..., :t]
    ac = ac / torch.arange(t, 0, -1, device=env.device, dtype=ac.dtype)
    return ac / ac[..., :1].clamp_min(1e-8)


def log_lags(frame_rate: float, min_lag_s: float, max_lag_s: float, step: float) -> torch.Tensor:
    """Lags in frames from ``min_lag_s`` to ``max_lag_s``, each ``1 + step`` times the one before."""
    n_bins = int(math.floor(math.log(max_lag_s / min_lag_s) / math.log1p(step))) + 1
    return (min_lag_s * frame_rate * (1.0 + step) ** torch.arange(n_bins, dtype=torch.float64)).float()


def at_lags(ac: torch.Tensor, lags: torch.Tensor) -> torch.Tensor:
    """[..., T] autocorrelation -> [..., len(lags)]: linearly interpolated at fractional ``lags`` (frames);
    lags the crop is too short for read as zero."""
    t = ac.shape[-1]
    lo = lags.floor().long()
    frac = lags - lo
    valid = (lo + 1 < t).to(ac.dtype)
    lo_c, hi_c = lo.clamp(max=t - 1), (lo + 1).clamp(max=t - 1)
    return (ac[..., lo_c] * (1 - frac) + ac[..., hi_c] * frac) * valid


class PeriodicityPool(nn.Module):
    """Log-lag onset autocorrelation plus a small learned projection: [B, C, F, T] -> [B, out_dim].

    Lags span ``min_lag_s``..``max_lag_s`` (0.25-1.5 s: beat periods of 40-240 BPM) in ``n_bins`` steps
    geometrically spaced; the default 2 % step is half the 4 % same-tempo tolerance, so neighbouring
    tolerance classes land on different bins. Lags the crop is too short for read as zero.
    """

    def __init__(self, frame_rate: float, out_dim: int = 32, min_lag_s: float = 0.25, max_lag_s: float = 1.5,
                 step: float = 0.02):
        super().__init__()
        lags = log_lags(frame_rate, min_lag_s, max_lag_s, step)
        n_bins = len(lags)
        self.register_buffer("lags", lags, persistent=False)
        self.n_bins = n_bins
        self.out_dim = out_dim
        self.proj = nn.Sequential(nn.Linear(n_bins, out_dim, bias=False), nn.BatchNorm1d(out_dim))

    def log_lag_acf(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, F, T] -> [B, n_bins]: the autocorrelation linearly interpolated at the log-spaced lags."""
        return at_lags(autocorrelation(onset_envelope(x.float())), self.lags)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.log_lag_acf(x).to(self.proj[0].weight.dtype))


class LearnedPeriodicity(nn.Module):
    """Periodicity of the encoder's own frame features: [B, C, T] -> [B, out_dim] (``model.periodicity:
    learned``).

    A 1x1 conv picks ``onsets`` learned onset channels from the C frame channels; each is half-wave
    rectified after a temporal difference (note starts, not decays, as ``onset_envelope``), autocorrelated
    and sampled on the same log-lag axis as ``PeriodicityPool``; learned layers map the channels' log-lag
    curves to ``out_dim``. The autocorrelation is fixed architecture, like a convolution; what it reads is
    learned, so the tempo objective's gradient reaches the features that carry the beat (the fixed block
    reads the input spectrogram and passes none). ``frame_rate`` is the rate of the frames it is given.
    """

    def __init__(self, channels: int, frame_rate: float, out_dim: int, onsets: int = 4, hidden: int = 64,
                 min_lag_s: float = 0.25, max_lag_s: float = 1.5, step: float = 0.02):
        super().__init__()
        self.register_buffer("lags", log_lags(frame_rate, min_lag_s, max_lag_s, step), persistent=False)
        self.n_bins, self.out_dim, self.onsets = len(self.lags), out_dim, onsets
        self.onset = nn.Conv1d(channels, onsets, 1)
        self.proj = nn.Sequential(nn.Linear(onsets * self.n_bins, hidden, bias=False), nn.BatchNorm1d(hidden),
                                  nn.ReLU(inplace=True), nn.Linear(hidden, out_dim, bias=False),
                                  nn.BatchNorm1d(out_dim))

    def log_lag_acf(self, frames: torch.Tensor) -> torch.Tensor:
        """[B, C, T] -> [B, onsets, n_bins]"""
        env = self.onset(frames)
        env = F.pad(F.relu(env[..., 1:] - env[..., :-1]), (1, 0))
        return at_lags(autocorrelation(env.float()), self.lags)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        acf = self.log_lag_acf(frames).flatten(1)
        return self.proj(acf.to(self.proj[0].weight.dtype))
