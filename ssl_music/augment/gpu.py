"""Batched torch augmentations: one call per batch, independent random parameters per example.

Nothing loops over the batch: each chain entry's transform (:mod:`ssl_music.augment.transforms`) applies
to all its rows at once. Time-stretch and pitch shift are in :mod:`ssl_music.augment.vocoder`; a
time_stretch directly followed by pitch_shift in a chain (and the tempo view's stretch followed by the
chain's pitch_shift) runs as one stretch and one read-back. Works on CPU and CUDA tensors alike.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import torch
from torch import Tensor, nn

from ssl_music.augment.chain import tempo_rates
from ssl_music.augment.signal import crop, on_rows, take
from ssl_music.augment.transforms import TRANSFORMS
from ssl_music.augment.vocoder import stretch, stretch_shift


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


class Tie:
    """Draws shared within an example: rows come as [B * V] (V views per example, view-major within an
    example) and view j takes view 0's draws of the entries named in ``shared[j]`` (``Objective.tie``)."""

    def __init__(self, shared):
        self.views = len(shared)
        names = {n for s in shared for n in s}
        self.copies = {n: [n in s for s in shared] for n in names}

    def share(self, name: str, t: Tensor) -> Tensor:
        if name not in self.copies:
            return t
        rows = t.reshape(-1, self.views, *t.shape[1:])
        copy = torch.tensor(self.copies[name], device=t.device).reshape(1, self.views, *([1] * (t.dim() - 1)))
        return torch.where(copy, rows[:, :1], rows).reshape(t.shape)


# ------------------------------------------------------------------------------------- rows
class BatchTransform(nn.Module):
    """One chain entry: applies with probability p per example, parameters drawn per example."""

    def __init__(self, name: str, p: float, params: Dict[str, Any], sample_rate: int, out_len: int):
        super().__init__()
        self.name, self.p, self.params, self.sample_rate, self.out_len = name, p, dict(params), sample_rate, out_len
        self.transform = TRANSFORMS[name]()

    def draw(self, x: Tensor, g: Optional[torch.Generator], record: Optional[List], tie: Optional[Tie] = None):
        """(applied [N] bool, params {name: [N]}, generator for large random tensors) for a batch like x;
        with ``tie``, the views it names take their example's view-0 draws (every row draws all the same,
        so the random stream is the untied one)."""
        n = x.shape[0]
        u = uniforms(n, 1 + self.transform.n_uniforms, g, x.device)
        apply = u[:, 0] < self.p
        prm = {k: torch.as_tensor(v, dtype=x.dtype, device=x.device)
               for k, v in self.transform.draw(self.params, u[:, 1:], torch).items()}
        if tie is not None:
            apply, prm = tie.share(self.name, apply), {k: tie.share(self.name, v) for k, v in prm.items()}
        big_g = device_generator(g, x.device)
        if record is not None:
            record.append((self.name, apply, prm))
        return apply, prm, big_g

    def forward(self, x: Tensor, g: Optional[torch.Generator] = None, record: Optional[List] = None,
                tie: Optional[Tie] = None) -> Tensor:
        apply, prm, big_g = self.draw(x, g, record, tie)
        return self.transform.gpu_batch(x, apply, prm, self.params, self.sample_rate, self.out_len, big_g)


def stretch_then_shift(x: Tensor, rate: Tensor, stretched: Tensor, semitones: Tensor, shifted: Tensor,
                       out_len: int) -> Tensor:
    """A time_stretch (``rate`` where ``stretched``) followed by a pitch_shift (``semitones`` where
    ``shifted``), each row through at most one phase vocoder; rows with neither are cropped to out_len."""
    y = crop(x, out_len)
    y = on_rows(y, stretched & ~shifted, lambda i: stretch(take(x, i), take(rate, i), out_len))
    rate = torch.where(stretched, rate, torch.ones_like(rate))
    return on_rows(y, shifted, lambda i: stretch_shift(take(x, i), take(rate, i), take(semitones, i), out_len))


class BatchChain(nn.Module):
    """A resolved chain on batches [N, S] -> [N, out_len]; the crop to out_len happens at time_stretch,
    or first thing when the chain has none."""

    def __init__(self, chain: Dict[str, Dict[str, Any]], sample_rate: int, out_len: int):
        super().__init__()
        self.out_len = out_len
        self.transforms = nn.ModuleList(
            BatchTransform(name, spec["p"], spec["params"], sample_rate, out_len) for name, spec in chain.items())
        self.sets_length = any(t.transform.sets_length for t in self.transforms)

    def forward(self, x: Tensor, g: Optional[torch.Generator] = None, record: Optional[List] = None,
                rate: Optional[Tensor] = None, tie: Optional[Tie] = None) -> Tensor:
        """``rate`` [N]: x is a source to stretch by it first (the tempo view); the chain has no time_stretch.
        ``tie``: draws shared between the views of an example (:class:`Tie`)."""
        ts = list(self.transforms)
        i = 0
        if rate is not None:
            everywhere = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
            if ts and ts[0].name == "pitch_shift":
                apply, prm, _ = ts[0].draw(x, g, record, tie)
                x = stretch_then_shift(x, rate, everywhere, prm["semitones"], apply, self.out_len)
                i = 1
            else:
                x = stretch(x, rate, self.out_len)
        elif not self.sets_length:
            x = crop(x, self.out_len)
        while i < len(ts):
            if ts[i].name == "time_stretch" and i + 1 < len(ts) and ts[i + 1].name == "pitch_shift":
                # drawn in chain order, so the random stream is the same as applying them one by one
                s_apply, s_prm, _ = ts[i].draw(x, g, record, tie)
                p_apply, p_prm, _ = ts[i + 1].draw(x, g, record, tie)
                x = stretch_then_shift(x, s_prm["rate"], s_apply, p_prm["semitones"], p_apply, self.out_len)
                i += 2
                continue
            x = ts[i](x, g, record, tie)
            i += 1
        return x


def tempo_draw(b: int, tempo: Dict[str, float], g: Optional[torch.Generator], device):
    """(rates [B, 2], same [B]) for the tempo view; ``tempo`` as data.tempo."""
    u = uniforms(b, 3, g, device).double()
    return tempo_rates(u, xp=torch, **tempo)

