"""The checkpoint format: what pretraining writes beside Lightning's state and what readers accept.

A checkpoint carries ``ssl_music = {"format": FORMAT, "config": <the run's config as a plain dict>}``;
``load_encoder`` and evaluation rebuild the model from that config and refuse, with the reason, a format
they do not know. Kept apart from the LightningModule so readers need not import Lightning.
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ssl_music.errors import SSLMusicError

FORMAT = "ssl_music.checkpoint/2"  # /2: the projector reads Encoder.content_dim inputs
# Formats whose encoder and heads this version rebuilds (/1 differs only in the projector's input width,
# which resuming refuses and embedding does not use).
READABLE = ("ssl_music.checkpoint/1", FORMAT)


def metadata(config: dict) -> dict:
    return {"format": FORMAT, "config": config}


def read_checkpoint(path: str | Path) -> tuple[dict, DictConfig]:
    """Load a checkpoint and its ssl_music config; anything else is refused with the path in the message."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise SSLMusicError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise SSLMusicError(f"cannot read checkpoint {path}: {exc}") from None
    meta = ckpt.get("ssl_music") if isinstance(ckpt, dict) else None
    if not isinstance(meta, dict) or "config" not in meta:
        raise SSLMusicError(f"{path} is not an ssl_music checkpoint (no 'ssl_music' section)")
    fmt = meta.get("format")
    if fmt not in READABLE:
        raise SSLMusicError(f"{path}: checkpoint format {fmt!r} is not one this version reads "
                            f"({', '.join(READABLE)}); it was written by a different ssl_music version")
    return ckpt, OmegaConf.create(meta["config"])
