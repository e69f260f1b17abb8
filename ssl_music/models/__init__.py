"""Models: front-end + encoder (a CNN, then a back-end over its frames) -> embedding, projection/tempo heads.

``build_encoder(model_cfg, sample_rate)`` is the one place a config turns into a network. ``model.frontend``
may be ``auto`` to take the encoder's default front-end (``ENCODERS[name][2]``).
"""
from __future__ import annotations

import inspect
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ssl_music.models.encoders import ENCODERS
from ssl_music.models.frontends import FRONTENDS, build_frontend

__all__ = ["ENCODERS", "FRONTENDS", "Encoder", "build_encoder", "reads_spectrogram", "resolve_frontend",
           "validate_model"]


def resolve_frontend(model_cfg: Any) -> str:
    frontend = str(model_cfg.frontend)
    return ENCODERS[str(model_cfg.encoder)][2] if frontend == "auto" else frontend


def reads_spectrogram(model_cfg: Any) -> bool:
    """Whether the front-end is an STFT followed by a filter bank on its power (``from_power``): what the
    spectral augmentation backend augments in between. A waveform front-end is not."""
    return hasattr(FRONTENDS[resolve_frontend(model_cfg)], "from_power")


def validate_model(model_cfg: Any) -> None:
    """Raise ConfigError naming the offending ``model.*`` key."""
    from ssl_music.errors import require

    def bad(key: str, msg: str) -> None:
        require(False, f"model.{key}", msg)

    norm = str(model_cfg.get("input_norm", "none"))
    if norm not in INPUT_NORMS:
        bad("input_norm", f"must be one of {', '.join(INPUT_NORMS)}, got '{norm}'")
    encoder = str(model_cfg.encoder)
    if encoder not in ENCODERS:
        bad("encoder", f"unknown encoder '{encoder}' (known: {', '.join(sorted(ENCODERS))})")
    _, compatible, default = ENCODERS[encoder]
    frontend = str(model_cfg.frontend)
    if frontend != "auto" and frontend not in FRONTENDS:
        bad("frontend", f"unknown front-end '{frontend}' (known: auto, {', '.join(sorted(FRONTENDS))})")
    if frontend != "auto" and frontend not in compatible:
        bad("frontend", f"encoder '{encoder}' takes {' or '.join(compatible)}, got '{frontend}' "
                              f"(set model.frontend={default} or auto)")
    from ssl_music.models.backends import BACKENDS

    backend = str(model_cfg.get("backend", "pool"))
    if backend not in BACKENDS:
        bad("backend", f"unknown back-end '{backend}' (known: {', '.join(sorted(BACKENDS))})")
    if backend == "attention":
        dim, heads = int(model_cfg.backend_dim), int(model_cfg.backend_heads)
        if dim <= 0 or dim % 2:
            bad("backend_dim", f"must be a positive even number (sinusoidal positions), got {dim}")
        if heads <= 0 or dim % heads:
            bad("backend_heads", f"must be > 0 and divide model.backend_dim ({dim}), got {heads}")
        if int(model_cfg.backend_layers) <= 0:
            bad("backend_layers", f"must be > 0, got {model_cfg.backend_layers}")
        if not 0 <= float(model_cfg.backend_dropout) < 1:
            bad("backend_dropout", f"must be in [0, 1), got {model_cfg.backend_dropout}")
    w = model_cfg.get("periodicity_weight", 0.1)
    if not 0 < w < 1:
        bad("periodicity_weight", f"must be in (0, 1), got {w}")
    for key in ("embed_dim", "width", "n_mels", "proj_hidden", "proj_dim", "tempo_hidden", "win_ms", "hop_ms"):
        value = model_cfg[key]
        if not value > 0:
            bad(key, f"must be > 0, got {value}")
    pitch = model_cfg.get("pitch_classes", 0)
    if pitch < 0:
        bad("pitch_classes", f"must be >= 0, got {pitch}")
    if pitch and "pitch_classes" not in inspect.signature(ENCODERS[encoder][0]).parameters:
        bad("pitch_classes", f"encoder '{encoder}' has no pitch-class pooling (tiny and short_chunk_resnet do)")
    if pitch and resolve_frontend(model_cfg) != "logfreq":
        bad("pitch_classes", "folds a semitone axis: needs model.frontend=logfreq")
    from ssl_music.models.pooling import PERIODICITY, periodicity_mode

    mode = periodicity_mode(model_cfg.get("periodicity", False))
    if mode not in PERIODICITY:
        bad("periodicity", f"must be {' | '.join(PERIODICITY)}, got '{model_cfg.periodicity}'")
    if mode != "off" and "periodicity" not in inspect.signature(ENCODERS[encoder][0]).parameters:
        bad("periodicity", f"encoder '{encoder}' has no periodicity pooling (tiny and short_chunk_resnet do)")
    split = list(model_cfg.get("head_split", None) or [])
    if split:
        from ssl_music.models.encoders import _period_dim

        if "head_split" not in inspect.signature(ENCODERS[encoder][0]).parameters:
            bad("head_split", f"encoder '{encoder}' has one dense head (tiny and short_chunk_resnet can split it)")
        learned = int(model_cfg.embed_dim) - (_period_dim(int(model_cfg.width), int(model_cfg.embed_dim))
                                              if mode != "off" else 0)
        if any(int(d) <= 0 for d in split) or sum(split) != learned:
            bad("head_split", f"must be sizes > 0 summing to the learned block ({learned} = model.embed_dim less the "
                              f"periodicity block), got {split}")
    if model_cfg.get("part_norm", False) and not split:
        bad("part_norm", "normalises each part of model.head_split on its own: set model.head_split (the named "
                         "parts' sizes, objectives.subspaces.dims) or model.part_norm=false")
    reads = list(model_cfg.get("head_reads", None) or [])
    if reads:
        from ssl_music.models.encoders import HEAD_READS

        if len(reads) != len(split):
            bad("head_reads", f"needs one entry per part of model.head_split ({len(split)}), got {reads}")
        if any(r not in HEAD_READS for r in reads):
            bad("head_reads", f"entries must be {' | '.join(HEAD_READS)}, got {reads}")
        if "pitch_classes" in reads and not model_cfg.get("pitch_classes", 0):
            bad("head_reads", "a part reads pitch_classes: set model.pitch_classes > 0 (with model.frontend=logfreq)")


INPUT_NORMS = ("none", "rms")
RMS_TARGET = 0.1          # -20 dBFS: what model.input_norm=rms brings every clip to
RMS_FLOOR = 1e-4          # -80 dBFS, the silence threshold: quieter clips are not raised further (no noise blown up)


class Encoder(nn.Module):
    """Waveform [B, L] -> embedding [B, embed_dim]: front-end then encoder. A spectrogram front-end also
    takes the power spectrogram [B, F, T] the spectral augmentation backend makes."""

    def __init__(self, frontend: nn.Module, encoder: nn.Module, embed_dim: int, sample_rate: int,
                 frontend_name: str, encoder_name: str, block_norm: bool = False, periodicity_weight: float = 0.1,
                 input_norm: str = "none", part_dims=()):
        super().__init__()
        self.input_norm = str(input_norm)
        self.block_norm, self.periodicity_weight = bool(block_norm), float(periodicity_weight)
        # model.part_norm: the learned parts' sizes, each normalised on its own (normalise_parts); () = off
        self.part_dims = tuple(int(d) for d in part_dims)
        self.frontend = frontend
        self.encoder = encoder
        self.embed_dim = embed_dim
        self.sample_rate = sample_rate
        self.frontend_name = frontend_name
        self.encoder_name = encoder_name

    @property
    def content_dim(self) -> int:
        """Leading embedding dimensions that come from the learned layers.

        The trailing ``embed_dim - content_dim`` hold the periodicity statistic when the encoder has one; the
        contrastive and triplet projector reads only the leading part (see ``PretrainModule``).
        """
        periodicity = getattr(self.encoder, "periodicity", None)
        return self.embed_dim - (periodicity.out_dim if periodicity is not None else 0)

    def forward(self, wave: torch.Tensor, valid_fraction: torch.Tensor | None = None) -> torch.Tensor:
        """``valid_fraction`` [B]: the share of each row that is real audio, the rest zero padding; the
        back-end ignores the padded frames (the CNN before it sees the zeros at its edge, as at any clip end)."""
        if self.input_norm == "rms":
            wave = self.loudness_normalised(wave)
        x = self.frontend(wave)
        e = self.encoder(x) if valid_fraction is None else self.encoder(x, valid_fraction)
        if self.part_dims:
            return self.normalise_parts(e)
        return self.normalise_blocks(e) if self.block_norm else e

    def loudness_normalised(self, x: torch.Tensor) -> torch.Tensor:
        """``model.input_norm=rms``: each example scaled to RMS_TARGET (a clip below RMS_FLOOR is scaled as if at
        the floor), so a gain does not move the embedding (padding and silence count in the RMS). A waveform
        [B, L] directly; a power spectrogram [B, F, T] (the spectral augmentation backend's) through Parseval:
        its mean over bins is rms^2 * sum(window^2) * n_fft / (n_fft + 2) for a one-sided STFT, so both paths
        scale a clip alike (up to its DC and Nyquist bins and the frames' edge padding)."""
        if x.dim() == 2:
            rms = x.float().pow(2).mean(dim=1, keepdim=True).sqrt()
            return x * (RMS_TARGET / rms.clamp_min(RMS_FLOOR)).to(x.dtype)
        s = self.frontend.stft_module()
        per_unit = s.window.float().pow(2).sum() * s.n_fft / (s.n_fft + 2)
        ms = x.float().mean(dim=(1, 2), keepdim=True) / per_unit
        return x * (RMS_TARGET ** 2 / ms.clamp_min(RMS_FLOOR ** 2)).to(x.dtype)

    def normalise_parts(self, e: torch.Tensor) -> torch.Tensor:
        """Per-part normalisation (``model.part_norm``): each named part to unit length on its own, so a part
        exported alone, or probed alone, depends on nothing outside it (one norm over the learned block
        divided the pitch slice by a length that content and tempo set). The last part also holds the
        periodicity block: inside it, its learned dimensions and the periodicity block are each unit length,
        weighted sqrt(1 - w^2) and w as in ``normalise_blocks``. The whole embedding has length sqrt(parts),
        and its cosine is the mean of the parts' cosines."""
        out, start = [], 0
        for d in self.part_dims[:-1]:
            out.append(F.normalize(e[:, start:start + d], dim=1))
            start += d
        last = e[:, start:]
        c = self.content_dim - start
        if c == last.shape[1]:
            return torch.cat([*out, F.normalize(last, dim=1)], dim=1)
        w = self.periodicity_weight
        return torch.cat([*out, F.normalize(last[:, :c], dim=1) * math.sqrt(1.0 - w * w),
                          F.normalize(last[:, c:], dim=1) * w], dim=1)

    def normalise_blocks(self, e: torch.Tensor) -> torch.Tensor:
        """Per-block normalisation: the learned block and the periodicity block each to unit length, then
        weighted sqrt(1 - w^2) and w (``model.periodicity_weight``), so the embedding has unit length and
        cosine similarity is (1 - w^2) x content similarity + w^2 x rhythm-statistic similarity.

        Without it the periodicity block (BatchNorm output: unit variance per dimension, a fixed tempo
        statistic) outweighs the learned dimensions, and on real music nearest neighbours were ranked by
        tempo: on the dev set, 10-NN instrument 0.35 on the whole embedding, 0.57 on the learned block alone.
        """
        c = self.content_dim
        content = F.normalize(e[:, :c], dim=1)
        if c == e.shape[1]:
            return content
        w = self.periodicity_weight
        return torch.cat([content * math.sqrt(1.0 - w * w), F.normalize(e[:, c:], dim=1) * w], dim=1)


def build_encoder(model_cfg: Any, sample_rate: int) -> Encoder:
    validate_model(model_cfg)
    name = str(model_cfg.encoder)
    frontend_name = resolve_frontend(model_cfg)
    frontend = build_frontend(frontend_name, sample_rate, n_mels=int(model_cfg.n_mels),
                              win_ms=float(model_cfg.win_ms), hop_ms=float(model_cfg.hop_ms))
    cls = ENCODERS[name][0]
    # .get: configs saved before the key existed load as without it
    from ssl_music.models.pooling import periodicity_mode

    mode = periodicity_mode(model_cfg.get("periodicity", False))   # configs before `learned` hold a bool
    kwargs = dict(periodicity=mode, hop_ms=float(model_cfg.hop_ms)) if mode != "off" else {}
    if model_cfg.get("head_split", None):
        kwargs.update(head_split=[int(d) for d in model_cfg.head_split],
                      head_reads=[str(r) for r in (model_cfg.get("head_reads", None) or [])])
    backend = str(model_cfg.get("backend", "pool"))   # .get: configs saved before back-ends were a choice
    if backend != "pool":
        kwargs.update(backend=backend, backend_kw=dict(dim=int(model_cfg.backend_dim), heads=int(model_cfg.backend_heads),
                                                       layers=int(model_cfg.backend_layers),
                                                       dropout=float(model_cfg.backend_dropout)))
    if model_cfg.get("pitch_classes", 0):
        kwargs.update(pitch_classes=int(model_cfg.pitch_classes), bands_per_octave=frontend.bands_per_octave)
    encoder = cls(in_channels=frontend.out_channels, embed_dim=int(model_cfg.embed_dim), width=int(model_cfg.width),
                  **kwargs)
    # .get: configs saved before these keys existed load as without block (or part) normalisation
    part_norm = bool(model_cfg.get("part_norm", False))
    return Encoder(frontend, encoder, int(model_cfg.embed_dim), sample_rate, frontend_name, name,
                   block_norm=bool(model_cfg.get("block_norm", False)),
                   periodicity_weight=float(model_cfg.get("periodicity_weight", 0.1)),
                   input_norm=str(model_cfg.get("input_norm", "none")),   # .get: older configs embed unchanged
                   part_dims=[int(d) for d in model_cfg.head_split] if part_norm else ())
