"""Back-ends: the encoder's frame features [B, C, T] -> one vector per clip (Won, Chun et al.'s split of a
music model into a front-end — filter bank + local CNN — and a back-end that summarises over time).

``pool``: mean + max over time, every encoder's ending before back-ends were a choice (no parameters, so
checkpoints made before ``model.backend`` existed load unchanged). ``attention``: a small pre-norm
Transformer over the frame sequence with a class token (Won et al. 2019, *Toward Interpretable Music Tagging
with Self-attention*): it can weigh a drum entry or a key change more than the bars around it, over a context
longer than one short chunk, and its weights say where it listened (``attention_over_time``).

Both take a padding mask (``valid`` [B, T], True for real frames): padded frames change nothing.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def frame_mask(valid_fraction: torch.Tensor | None, frames: int) -> torch.Tensor | None:
    """[B] fraction of each input that is real audio (1.0 = none padded) -> [B, frames] bool, True = real frame.

    A frame counts as real when it starts inside the real audio (ceil), so a clip shorter than one frame keeps
    one. None stays None (nothing padded)."""
    if valid_fraction is None:
        return None
    n = torch.ceil(valid_fraction.clamp(0, 1) * frames).clamp(min=1).to(torch.long)
    return torch.arange(frames, device=n.device)[None, :] < n[:, None]


class Pool(nn.Module):
    """[B, C, T] -> [B, 2C]: mean keeps how often a pattern occurs, max whether it occurs at all."""

    def __init__(self, channels: int, **_):
        super().__init__()
        self.out_dim = 2 * channels

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        if valid is None:
            return torch.cat([x.mean(dim=-1), x.amax(dim=-1)], dim=1)
        m = valid[:, None, :].to(x.dtype)
        mean = (x * m).sum(dim=-1) / m.sum(dim=-1).clamp(min=1)
        return torch.cat([mean, x.masked_fill(~valid[:, None, :], float("-inf")).amax(dim=-1)], dim=1)


def sinusoids(frames: int, dim: int, device=None) -> torch.Tensor:
    """[frames, dim] fixed sinusoidal positions (Vaswani et al.): any context length, no table to outgrow."""
    pos = torch.arange(frames, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    out = torch.zeros(frames, dim, device=device)
    out[:, 0::2] = torch.sin(pos * freq)
    out[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return out


class _Block(nn.Module):
    """Pre-norm Transformer layer that can hand back its attention weights (nn.TransformerEncoderLayer
    cannot: it asks its attention for none)."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None, need_weights: bool = False):
        h = self.norm1(x)
        a, w = self.attn(h, h, h, key_padding_mask=pad, need_weights=need_weights, average_attn_weights=True)
        x = x + self.drop(a)
        return x + self.drop(self.ff(self.norm2(x))), w


class SelfAttention(nn.Module):
    """[B, C, T] -> [B, dim]: frames projected to ``dim``, sinusoidal positions added, a learned class token
    prepended, ``layers`` pre-norm Transformer layers with a key padding mask; the class token's output is the
    summary. Its width is the back-end's own (``model.backend_dim``), not the CNN's."""

    def __init__(self, channels: int, dim: int = 128, heads: int = 4, layers: int = 2, dropout: float = 0.1):
        super().__init__()
        self.out_dim = dim
        self.proj = nn.Linear(channels, dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.normal_(self.cls, std=0.02)
        self.blocks = nn.ModuleList(_Block(dim, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def _tokens(self, x: torch.Tensor, valid: torch.Tensor | None):
        b, _, t = x.shape
        h = self.proj(x.transpose(1, 2)) + sinusoids(t, self.out_dim, x.device).to(x.dtype)
        h = torch.cat([self.cls.expand(b, -1, -1).to(h.dtype), h], dim=1)
        pad = None if valid is None else F.pad(~valid, (1, 0), value=False)   # the class token is never padding
        return h, pad

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        h, pad = self._tokens(x, valid)
        for block in self.blocks:
            h, _ = block(h, pad)
        return self.norm(h[:, 0])

    @torch.no_grad()
    def weights(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Per layer, [B, T+1, T+1] attention (averaged over heads; row/column 0 is the class token)."""
        h, pad = self._tokens(x, valid)
        out = []
        for block in self.blocks:
            h, w = block(h, pad, need_weights=True)
            out.append(w)
        return out


def rollout(weights: list[torch.Tensor]) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020): the product over layers of 0.5·A + 0.5·I (the residual
    path), rows renormalised; row 0 without its own column is how much the class token's output draws on
    each frame through every layer. [B, T] summing to one per clip."""
    eye = torch.eye(weights[0].shape[-1], device=weights[0].device)
    r = eye.expand_as(weights[0])
    for w in weights:
        a = 0.5 * w + 0.5 * eye
        r = (a / a.sum(dim=-1, keepdim=True)) @ r
    cls = r[:, 0, 1:]
    return cls / cls.sum(dim=-1, keepdim=True).clamp(min=1e-12)


# name -> class; every encoder's frame features go through one of these (model.backend)
BACKENDS = {"pool": Pool, "attention": SelfAttention}


def build_backend(name: str, channels: int, dim: int = 128, heads: int = 4, layers: int = 2,
                  dropout: float = 0.1) -> nn.Module:
    return BACKENDS[name](channels, dim=dim, heads=heads, layers=layers, dropout=dropout)


def has_attention(encoder: nn.Module) -> bool:
    """Whether ``encoder``'s back-end has attention weights to show (:func:`listen` works)."""
    return hasattr(encoder.encoder.backend, "weights")


def listen(encoder: nn.Module, wave: torch.Tensor, valid_fraction: torch.Tensor | None = None) -> torch.Tensor:
    """[B, L] waveform -> [B, T] attention rollout over the back-end's frames: where the embedding of each
    clip draws from (padded frames get none). Needs an encoder whose back-end has attention
    (``model.backend=attention``)."""
    from ssl_music.errors import SSLMusicError

    backend = encoder.encoder.backend
    if not has_attention(encoder):
        raise SSLMusicError(f"this model summarises its frames with '{type(backend).__name__.lower()}' "
                            "(model.backend): there is no attention to show; pretrain with model.backend=attention")
    seen = {}
    hook = backend.register_forward_pre_hook(lambda _m, args: seen.setdefault("frames", args[0]))
    try:
        with torch.no_grad():
            encoder(wave, valid_fraction)
    finally:
        hook.remove()
    frames = seen["frames"]
    return rollout(backend.weights(frames, frame_mask(valid_fraction, frames.shape[-1])))
