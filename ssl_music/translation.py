"""Tempo translation in the embedding space (after McCallum, Henkel et al., ICASSP 2024).

Given a track embedding ``e`` and a tempo ratio ``r``, :class:`TempoTranslator` predicts the embedding of the
same track played ``r`` times faster (r > 1 faster, the stretch convention of DESIGN §3):

    T(e, s) = e + σ ⊙ s · g((e − μ) / σ, s / log 1.25),    s = log r

``g`` is a small MLP; μ, σ are the per-dimension mean and spread of the training embeddings (so ``g`` works
in standardised units whatever the encoder's scale). The factor ``s`` makes ``T(e, 0) = e`` exactly: at the
original tempo nothing moves, and the network only learns how embeddings travel with log-tempo.

Training needs no labels (:func:`train_translator`, ``ssl-music tempo translate-train``): crops from the
unlabelled shards, each embedded as it is and after the project's own batched time-stretch
(``augment.vocoder.stretch``) by ``rates_per_crop`` log-uniform ratios in [min_rate, max_rate], by the frozen
encoder of a checkpoint. The encoder being frozen, pairs are embedded once and ``T`` trains on the cached
pairs (a 128-d MLP on a few thousand pairs: seconds), with the loss

    mean_d ((T(e, s) − e_r) / σ)²  +  cos_weight · (1 − cos(T(e, s), e_r)).

Saved beside the checkpoint as safetensors + JSON, no pickle (:func:`translator_paths`): ``last.ckpt`` ->
``last.translator.safetensors`` + ``last.translator.json``; an export folder -> ``translator.*`` inside it. The
JSON records the encoder's weight fingerprint, so a translator is never applied to an encoder it was not
trained on (``last.ckpt`` overwritten by a resumed run, a copied file): loading refuses it with the reason.
"""
from __future__ import annotations

import hashlib
import json
import math
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ssl_music.errors import SSLMusicError, require

FORMAT = "ssl_music.translator/1"
LOG_SPAN = math.log(1.25)   # scale of the log-ratio input: the trained range maps to about [-1, 1]
Progress = Optional[Callable[[str], None]]   # receives one line of progress text


class TempoTranslator(nn.Module):
    """T(e, log r) -> the embedding of the same audio r times faster; identity at r = 1 by construction."""

    def __init__(self, embed_dim: int, hidden: int = 256, depth: int = 2):
        super().__init__()
        self.embed_dim, self.hidden, self.depth = int(embed_dim), int(hidden), int(depth)
        layers: list[nn.Module] = []
        width = self.embed_dim + 1
        for _ in range(self.depth):
            layers += [nn.Linear(width, self.hidden), nn.GELU()]
            width = self.hidden
        last = nn.Linear(width, self.embed_dim)
        nn.init.zeros_(last.weight)   # starts as the identity: training only ever moves away from e
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*layers, last)
        self.register_buffer("mean", torch.zeros(self.embed_dim))
        self.register_buffer("scale", torch.ones(self.embed_dim))

    def set_statistics(self, e: torch.Tensor) -> None:
        """μ, σ from training embeddings [N, D] (σ floored at a thousandth of its mean: no division by ~0)."""
        std = e.float().std(dim=0)
        self.mean.copy_(e.float().mean(dim=0))
        self.scale.copy_(std.clamp(min=1e-3 * float(std.mean()) + 1e-8))

    def forward(self, e: torch.Tensor, log_ratio: torch.Tensor) -> torch.Tensor:
        s = log_ratio.to(e.dtype).reshape(-1, 1).expand(e.shape[0], 1)
        z = (e - self.mean) / self.scale
        return e + self.scale * s * self.net(torch.cat([z, s / LOG_SPAN], dim=1))


def translation_loss(pred: torch.Tensor, target: torch.Tensor, scale: torch.Tensor,
                     cos_weight: float = 1.0) -> torch.Tensor:
    """Standardised squared error (every dimension counts in units of its spread) + cosine distance."""
    mse = ((pred - target) / scale).square().mean()
    return mse + cos_weight * (1.0 - F.cosine_similarity(pred, target, dim=1)).mean()


# ------------------------------------------------------------------------------------- settings
@dataclass
class TranslatorConfig:
    crops: int = 2048          # unlabelled crops embedded (two per drawn segment, tempo-pair view sampler)
    rates_per_crop: int = 4    # stretched copies per crop: pairs = crops x rates_per_crop
    min_rate: float = 0.8      # ratios drawn log-uniformly in [min_rate, max_rate]; r > 1 faster
    max_rate: float = 1.25
    steps: int = 3000          # optimiser steps on the cached pairs
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    hidden: int = 256
    depth: int = 2
    cos_weight: float = 1.0
    holdout: float = 0.15      # share of tracks (by id hash) held out for the reported fidelity
    embed_batch: int = 64      # crops per encoder call while collecting pairs
    seed: int = 0


def validate_config(c: TranslatorConfig) -> None:
    def check(cond, key, msg):
        require(cond, key, msg, "translator")

    check(c.crops >= 2, "crops", f"must be >= 2, got {c.crops}")
    check(c.rates_per_crop >= 1, "rates_per_crop", f"must be >= 1, got {c.rates_per_crop}")
    check(0 < c.min_rate <= c.max_rate, "min_rate", f"need 0 < min_rate <= max_rate, got {c.min_rate}, {c.max_rate}")
    check(c.steps >= 1 and c.batch_size >= 1, "steps", "steps and batch_size must be >= 1")
    check(c.lr > 0 and c.hidden >= 1 and c.depth >= 1, "lr", "lr > 0, hidden >= 1 and depth >= 1 required")
    check(0 <= c.holdout < 1, "holdout", f"must be in [0, 1), got {c.holdout}")


def translator_config(overrides: Sequence[str] = ()) -> TranslatorConfig:
    """TranslatorConfig from ``key=value`` overrides through the project's one config system: an unknown or
    misspelt key, or a value of the wrong type, is a ConfigError naming the key (and its nearest sibling)."""
    from omegaconf import OmegaConf

    from ssl_music.config import apply_overrides

    cfg = apply_overrides(OmegaConf.structured(TranslatorConfig), overrides, "translator")
    c = TranslatorConfig(**OmegaConf.to_container(cfg))
    validate_config(c)
    return c


# ---------------------------------------------------------------------------------- pair collection
class _CropSource:
    """Stand-in augmenter for the loader: plain crops (no CPU chain), long enough to stretch by max_rate."""

    backend = "gpu"

    def __init__(self, max_rate: float):
        self.max_rate = max(1.0, float(max_rate))

    def source_factor(self, view: str) -> float:
        return self.max_rate


def stretch_pairs(x: torch.Tensor, rates: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Source crops ``x`` [B, S] -> (the centre ``length`` samples [B, L], each crop stretched by each of its
    ``rates`` [B, K] to ``length`` samples [B*K, L]). The stretched copy reads ``length * r`` samples centred
    on the same point, so original and stretched audio cover the same moment of the track."""
    from ssl_music.augment.vocoder import stretch

    b, s = x.shape
    k = rates.shape[1]
    c0 = (s - length) // 2
    anchor = x[:, c0:c0 + length]
    r = rates.reshape(-1).to(x.dtype)
    start = (s / 2 - length * r / 2).round().long().clamp(min=0)                     # [B*K]
    idx = start[:, None] + torch.arange(s, device=x.device)[None]
    src = x.repeat_interleave(k, 0).gather(1, idx.clamp(max=s - 1)) * (idx < s)       # zeros past the end
    return anchor, stretch(src, r, length)


def _held_out(track_id: str, share: float) -> bool:
    return zlib.crc32(track_id.encode()) % 1000 < share * 1000


def _crop_chunks(loader, size: int):
    """(crops [<= size, S], track ids) from the loader's batches of two-crop segments."""
    pending, ids = [], []
    for batch in loader:
        x = batch["tempo"]                                        # [B, 2, S]: two crops per segment
        pending.append(x.reshape(-1, x.shape[-1]))
        ids += [t for t in batch["track_id"] for _ in range(x.shape[1])]
        xs = torch.cat(pending)
        while len(xs) >= size:
            yield xs[:size], ids[:size]
            xs, ids = xs[size:], ids[size:]
        pending = [xs]
    if pending and len(pending[0]):
        yield pending[0], ids


def collect_pairs(model: Any, data_cfg: Any, c: TranslatorConfig, progress: Progress = None) -> dict:
    """Embed ``c.crops`` shard crops and their stretched copies with the frozen encoder of ``model`` (an
    :class:`ssl_music.api.EmbeddingModel`). Returns tensors on the CPU: ``anchor`` [N, D], ``target`` [N*K, D],
    ``log_ratio`` [N*K], ``held_out`` [N] (bool, by track) and the ``track_ids``."""
    from ssl_music.data.stream import make_loader
    from ssl_music.objectives import view_samplers

    loader = make_loader(data_cfg, view_samplers(["tempo"]), _CropSource(c.max_rate))
    gen = torch.Generator().manual_seed(int(c.seed))
    lo, hi = math.log(c.min_rate), math.log(c.max_rate)
    anchors, targets, logs, tracks = [], [], [], []
    n = 0
    chunks = _crop_chunks(loader, int(c.embed_batch))
    for chunk, ids in chunks:
        chunk, ids = chunk[:c.crops - n], ids[:c.crops - n]
        ls = torch.rand(len(chunk), c.rates_per_crop, generator=gen, dtype=torch.float64) * (hi - lo) + lo
        a, st = stretch_pairs(chunk.to(model.device), ls.exp().float().to(model.device), model.crop_len)
        anchors.append(model.encode(a).cpu())
        targets.append(model.encode(st).cpu())
        logs.append(ls.reshape(-1).float())
        tracks += ids
        n += len(chunk)
        if progress:
            progress(f"embedded {n}/{c.crops} crops ({n * c.rates_per_crop} pairs)")
        if n >= c.crops:
            break
    chunks.close()   # stops the loader's workers now rather than when garbage-collected
    if n < 2:
        raise SSLMusicError(f"only {n} crops came from the shards in {data_cfg.shards}; need at least 2")
    tracks = tracks[:n]
    held = torch.tensor([_held_out(t, c.holdout) for t in tracks])
    if c.holdout > 0 and (held.all() or not held.any()):   # a handful of tracks: hold out crops instead
        held = torch.zeros(n, dtype=torch.bool)
        held[-max(1, int(round(c.holdout * n))):] = True
    return {"anchor": torch.cat(anchors), "target": torch.cat(targets), "log_ratio": torch.cat(logs),
            "held_out": held, "track_ids": tracks}


# --------------------------------------------------------------------------------------- training
def fidelity(translator: TempoTranslator, pairs: dict, rows: torch.Tensor) -> dict:
    """Mean cosine of T(e, log r) and of e itself (identity) with the stretched crop's embedding."""
    k = pairs["target"].shape[0] // pairs["anchor"].shape[0]
    pair_rows = (rows[:, None] * k + torch.arange(k)[None]).reshape(-1)
    e = pairs["anchor"][rows].repeat_interleave(k, 0)
    tgt, s = pairs["target"][pair_rows], pairs["log_ratio"][pair_rows]
    with torch.no_grad():
        pred = translator(e, s)
    return {"pairs": int(len(pair_rows)),
            "translated": float(F.cosine_similarity(pred, tgt, dim=1).mean()),
            "identity": float(F.cosine_similarity(e, tgt, dim=1).mean())}


def fit_translator(pairs: dict, c: TranslatorConfig, progress: Progress = None) -> tuple[TempoTranslator, dict]:
    """Train a :class:`TempoTranslator` on collected pairs; returns it (eval mode, CPU) and a summary with
    the held-out fidelity before (identity) and after."""
    validate_config(c)
    torch.manual_seed(int(c.seed))
    anchor, target, log_ratio = pairs["anchor"].float(), pairs["target"].float(), pairs["log_ratio"].float()
    k = target.shape[0] // anchor.shape[0]
    train_rows = torch.nonzero(~pairs["held_out"]).squeeze(1)
    test_rows = torch.nonzero(pairs["held_out"]).squeeze(1)
    t = TempoTranslator(anchor.shape[1], c.hidden, c.depth)
    t.set_statistics(anchor[train_rows])
    train_pairs = (train_rows[:, None] * k + torch.arange(k)[None]).reshape(-1)
    opt = torch.optim.AdamW(t.parameters(), lr=c.lr, weight_decay=c.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=c.lr, total_steps=c.steps, pct_start=0.05)
    gen = torch.Generator().manual_seed(int(c.seed))
    losses = []
    t.train()
    for step in range(c.steps):
        pick = train_pairs[torch.randint(len(train_pairs), (min(c.batch_size, len(train_pairs)),), generator=gen)]
        pred = t(anchor[pick // k], log_ratio[pick])
        loss = translation_loss(pred, target[pick], t.scale, c.cos_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if progress and (step + 1) % max(1, c.steps // 10) == 0:
            progress(f"step {step + 1}/{c.steps}  loss {np.mean(losses[-50:]):.4f}")
    t.eval()
    train_tracks = {pairs["track_ids"][i] for i in train_rows.tolist()}
    summary = {"pairs": int(len(train_pairs)), "train_tracks": len(train_tracks),
               "final_loss": float(np.mean(losses[-50:])), "train": fidelity(t, pairs, train_rows)}
    if len(test_rows):
        summary["held_out"] = fidelity(t, pairs, test_rows)
    return t, summary


def train_translator(model: Any, c: TranslatorConfig, shards: str | Path | None = None, batch_size: int | None = None,
                     num_workers: int | None = None, progress: Progress = None) -> tuple[TempoTranslator, dict]:
    """Collect pairs from ``shards`` (default: the checkpoint's own ``data.shards``) and fit a translator to
    ``model``'s frozen encoder. ``batch_size`` / ``num_workers`` override the loader's (segments per batch)."""
    from omegaconf import OmegaConf

    validate_config(c)
    data_cfg = OmegaConf.create(OmegaConf.to_container(model.cfg.data, resolve=True))
    if shards is not None:
        data_cfg.shards = str(shards)
    if batch_size is not None:
        data_cfg.batch_size = int(batch_size)
    if num_workers is not None:
        data_cfg.num_workers = int(num_workers)
    data_cfg.seed = int(c.seed)
    per_batch = 2 * int(data_cfg.batch_size)
    data_cfg.batches_per_epoch = -(-int(c.crops) // per_batch) + 1
    pairs = collect_pairs(model, data_cfg, c, progress)
    translator, summary = fit_translator(pairs, c, progress)
    summary["shards"] = str(data_cfg.shards)
    return translator, summary


# ------------------------------------------------------------------------------------ files and use
def translator_paths(checkpoint: str | Path) -> tuple[Path, Path]:
    """(weights, JSON) of the translator belonging to ``checkpoint``: beside a ``.ckpt`` file
    (``NAME.translator.safetensors`` / ``.json``), inside an export folder (``translator.*``)."""
    p = Path(checkpoint)
    if p.is_dir() or p.suffix == ".safetensors":
        folder = p if p.is_dir() else p.parent
        return folder / "translator.safetensors", folder / "translator.json"
    return p.with_name(p.stem + ".translator.safetensors"), p.with_name(p.stem + ".translator.json")


def encoder_fingerprint(encoder: nn.Module) -> str:
    """SHA-256 of the encoder's weights (names, shapes and float32 bytes): the same for a checkpoint and
    its export, different as soon as one weight differs."""
    h = hashlib.sha256()
    for name, v in sorted(encoder.state_dict().items()):
        h.update(f"{name}:{tuple(v.shape)}".encode())
        h.update(v.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def save_translator(translator: TempoTranslator, checkpoint: str | Path, encoder: nn.Module, c: TranslatorConfig,
                    summary: dict, out: str | Path | None = None) -> tuple[Path, Path]:
    """Write the translator as safetensors + JSON beside ``checkpoint`` (or at ``out``: a base path whose
    ``.safetensors`` / ``.json`` are written). Returns the two paths."""
    from safetensors.torch import save

    weights, meta_path = translator_paths(checkpoint) if out is None else \
        (Path(f"{out}.safetensors"), Path(f"{out}.json"))
    weights.parent.mkdir(parents=True, exist_ok=True)
    data = save({k: v.detach().cpu().contiguous().clone() for k, v in translator.state_dict().items()},
                metadata={"format": FORMAT})
    weights.write_bytes(data)
    meta = {"format": FORMAT, "weights": weights.name, "weights_sha256": hashlib.sha256(data).hexdigest(),
            "embed_dim": translator.embed_dim, "hidden": translator.hidden, "depth": translator.depth,
            "encoder_fingerprint": encoder_fingerprint(encoder), "checkpoint": str(checkpoint),
            "config": asdict(c), "summary": summary}
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return weights, meta_path


def load_translator(checkpoint: str | Path | None, encoder: nn.Module,
                    path: str | Path | None = None) -> TempoTranslator:
    """The translator beside ``checkpoint`` (or the JSON at ``path``), checked against ``encoder``'s
    fingerprint; SSLMusicError with the reason when there is none or it does not belong to this encoder."""
    from safetensors.torch import load as st_load

    if path is None and checkpoint is None:
        raise SSLMusicError("this model has no tempo translator (it was not loaded from a checkpoint)")
    meta_path = Path(path) if path is not None else translator_paths(checkpoint)[1]
    if not meta_path.is_file():
        raise SSLMusicError(f"checkpoint {checkpoint} has no tempo translator (no {meta_path}); train one with "
                            f"`ssl-music tempo translate-train --checkpoint {checkpoint}`")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SSLMusicError(f"cannot read {meta_path}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        fmt = meta.get("format") if isinstance(meta, dict) else None
        raise SSLMusicError(f"{meta_path}: translator format {fmt!r} "
                            f"is not one this version reads ({FORMAT})")
    if meta.get("encoder_fingerprint") != encoder_fingerprint(encoder):
        raise SSLMusicError(f"{meta_path} was trained on another encoder than this checkpoint's (weights "
                            f"fingerprint differs: trained for {meta.get('checkpoint')}); retrain it with "
                            "`ssl-music tempo translate-train`")
    weights = meta_path.with_name(meta["weights"])
    try:
        data = weights.read_bytes()
    except OSError as exc:
        raise SSLMusicError(f"cannot read translator weights {weights}: {exc}") from None
    if hashlib.sha256(data).hexdigest() != meta.get("weights_sha256"):
        raise SSLMusicError(f"{weights} does not match the checksum recorded in {meta_path} (changed or truncated)")
    t = TempoTranslator(int(meta["embed_dim"]), int(meta["hidden"]), int(meta["depth"]))
    t.load_state_dict(st_load(data))
    return t.eval()


@torch.no_grad()
def translate(translator: TempoTranslator, embedding, ratio, device: torch.device | str | None = None):
    """Apply ``translator`` to ``embedding`` ([D] or [B, D], numpy or torch) at tempo ``ratio`` (a number or
    [B]; r > 1 faster). Returns the same kind, shape and (for torch) device as ``embedding``."""
    is_numpy = not isinstance(embedding, torch.Tensor)
    e = torch.as_tensor(np.asarray(embedding) if is_numpy else embedding)
    where, dtype = e.device, e.dtype if e.is_floating_point() else torch.float32
    single = e.dim() == 1
    e2 = e.reshape(1, -1) if single else e
    if e2.dim() != 2 or e2.shape[1] != translator.embed_dim:
        raise SSLMusicError(f"expected an embedding of shape [{translator.embed_dim}] or [B, {translator.embed_dim}], "
                            f"got {tuple(e.shape)}")
    r = torch.as_tensor(ratio, dtype=torch.float64).reshape(-1).to(e2.device)
    if r.numel() not in (1, e2.shape[0]):
        raise SSLMusicError(f"ratio must be one number or one per embedding ({e2.shape[0]}), got {r.numel()}")
    if not bool(torch.all(r > 0)):
        raise SSLMusicError("tempo ratios must be > 0")
    dev = torch.device(device) if device is not None else where
    translator.to(dev)
    out = translator(e2.to(dev, torch.float32), r.log().float().expand(e2.shape[0]).to(dev))
    out = out.to(where, dtype)
    out = out[0] if single else out
    return out.numpy() if is_numpy else out
