"""Periodicity pooling: a tempo statistic that global mean/max pooling cannot provide.

Mean and max over time discard *when* things happen, so a CNN with a ~1 s receptive field has to learn
tempo as a non-linear function of dilated-conv activations, which a few hundred CPU steps do not reach
(the tempo-pair objective stays at chance). The autocorrelation of an onset envelope makes the beat
period explicit; sampling it on a logarithmic lag axis turns a tempo ratio r into a shift of log(r) bins,
so "same tempo" becomes a near-linear comparison of two vectors that the tempo head's e1 * e2 term can
express directly.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


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


class PeriodicityPool(nn.Module):
    """Log-lag onset autocorrelation plus a small learned projection: [B, C, F, T] -> [B, out_dim].

    Lags span ``min_lag_s``..``max_lag_s`` (0.25-1.5 s: beat periods of 40-240 BPM) in ``n_bins`` steps
    geometrically spaced; the default 2 % step is half the 4 % same-tempo tolerance, so neighbouring
    tolerance classes land on different bins. Lags the crop is too short for read as zero.
    """

    def __init__(self, frame_rate: float, out_dim: int = 32, min_lag_s: float = 0.25, max_lag_s: float = 1.5,
                 step: float = 0.02):
        super().__init__()
        n_bins = int(math.floor(math.log(max_lag_s / min_lag_s) / math.log1p(step))) + 1
        lags = min_lag_s * frame_rate * (1.0 + step) ** torch.arange(n_bins, dtype=torch.float64)
        self.register_buffer("lags", lags.float(), persistent=False)
        self.n_bins = n_bins
        self.out_dim = out_dim
        self.proj = nn.Sequential(nn.Linear(n_bins, out_dim, bias=False), nn.BatchNorm1d(out_dim))

    def log_lag_acf(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, F, T] -> [B, n_bins]: the autocorrelation linearly interpolated at the log-spaced lags."""
        ac = autocorrelation(onset_envelope(x.float()))
        t = ac.shape[-1]
        lo = self.lags.floor().long()
        frac = self.lags - lo
        valid = (lo + 1 < t).to(ac.dtype)
        lo_c, hi_c = lo.clamp(max=t - 1), (lo + 1).clamp(max=t - 1)
        return (ac[:, lo_c] * (1 - frac) + ac[:, hi_c] * frac) * valid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.log_lag_acf(x).to(self.proj[0].weight.dtype))
