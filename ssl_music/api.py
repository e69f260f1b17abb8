"""User-facing embedding API: what evaluation, the HEAR API (``ssl_music.hear``) and downstream users call.

    model = ssl_music.load_encoder("runs/x/checkpoints/last.ckpt")   # or an `ssl-music export` folder
    vec = model.embed(waveform, sample_rate)          # [embed_dim], mean over crop-length windows
    # waveform: mono [N], [C, N] or soundfile's [N, C] (the axis of <= 8 is the channels), float or
    # integer PCM (rescaled); empty, NaN or infinite input is refused (data.audio.as_waveform)
    model.subspaces                                   # its named parts: ["content", "pitch", "tempo"] or ["all"]
    key = model.embed(waveform, sample_rate, subspace="pitch")
    model.similarity(vec_a, vec_b, weights={"content": 1, "pitch": 0.5, "tempo": 0})

``frame`` is the one windowing of audio into crop-length encoder inputs: back to back for track
embeddings, centred on a timestamp grid for HEAR timestamp embeddings.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from ssl_music.checkpoint import read_checkpoint, read_weights, write_export
from ssl_music.data.crops import seconds_to_frames
from ssl_music.errors import SSLMusicError


def frame(x: torch.Tensor, length: int, hop: int, centred: bool = False) -> torch.Tensor:
    """Windows of ``length`` samples every ``hop`` samples along the last axis: [..., N] -> [..., W, length].

    ``centred=False``: windows start at 0, hop, 2·hop, …; the tail shorter than a window is dropped and a
    clip shorter than one window is zero-padded to one (W = max(1, (N - length) // hop + 1)).
    ``centred=True``: window k is centred on sample k·hop for k = 0 … N // hop (W = N // hop + 1), with
    zeros beyond both ends of the clip (the frames of HEAR timestamp embeddings).
    The result is a strided view of (padded) ``x``: overlapping windows cost no memory until encoded.
    """
    if centred:
        x = torch.nn.functional.pad(x, (length // 2, length - length // 2))
    elif x.shape[-1] < length:
        x = torch.nn.functional.pad(x, (0, length - x.shape[-1]))
    return x.unfold(-1, length, hop)


class EmbeddingModel:
    """A frozen encoder and the heads that outlive pretraining (``heads``, by name) that embeds raw audio at
    any sample rate. The embedding is a concatenation of named subspaces (``layout``; one, ``all``, for a
    model trained without a layout)."""

    def __init__(self, cfg: DictConfig, encoder: torch.nn.Module, heads: dict[str, torch.nn.Module],
                 identity: str, device: str | torch.device = "cpu"):
        from ssl_music.objectives import embedding_layout

        self.cfg = cfg
        self.encoder = encoder.to(device).eval()
        self.heads = {name: head.to(device).eval() for name, head in heads.items()}
        self.layout = embedding_layout(cfg, self.encoder)
        self.identity = identity
        self.sample_rate = int(cfg.data.sample_rate)
        self.crop_s = float(cfg.data.crop_s)
        self.crop_len = seconds_to_frames(self.crop_s, self.sample_rate)
        self.embed_dim = int(encoder.embed_dim)

    @property
    def device(self) -> torch.device:
        """Where the encoder's weights are: moving the encoder (e.g. the HEAR model's ``.to``) moves the model."""
        return next(self.encoder.parameters()).device

    @property
    def has_tempo_head(self) -> bool:
        return self._pair_scorer() is not None

    @property
    def listens(self) -> bool:
        """Whether the back-end has attention to show (``model.backend=attention``): :meth:`attention` works."""
        from ssl_music.models.backends import has_attention

        return has_attention(self.encoder)

    def _pair_scorer(self) -> torch.nn.Module | None:
        """The kept head that scores embedding pairs as same-tempo (``scores_pairs``), if any."""
        return next((h for h in self.heads.values() if getattr(h, "scores_pairs", False)), None)

    # ---------------------------------------------------------------------------------------- subspaces
    @property
    def subspaces(self) -> list[str]:
        """The names of the embedding's parts, in order."""
        return [part.name for part in self.layout]

    def subspace(self, embedding, name: str | None):
        """``embedding`` [..., embed_dim] (numpy or torch) -> its dimensions of subspace ``name`` (None: all)."""
        if name is None:
            return embedding
        part = self._part(name)
        return embedding[..., part.start:part.stop]

    def _part(self, name: str):
        for part in self.layout:
            if part.name == name:
                return part
        raise SSLMusicError(f"no subspace '{name}' in this model; it has {', '.join(self.subspaces)}")

    def similarity(self, a, b, weights: dict[str, float] | None = None) -> np.ndarray:
        """Weighted cosine similarity of full embeddings ``a`` and ``b`` ([D] or [..., D], broadcast):
        sum_k w_k cos(a_k, b_k) / sum_k w_k over the subspaces k. Default: every subspace weight 1. One
        weight 1 and the rest 0 is the cosine on that subspace; subspaces absent from ``weights`` weigh 0."""
        weights = {name: 1.0 for name in self.subspaces} if weights is None else dict(weights)
        for name in weights:
            self._part(name)
        total = float(sum(weights.values()))
        if any(w < 0 for w in weights.values()) or total <= 0:
            raise SSLMusicError(f"similarity weights must be >= 0 with a positive sum, got {weights}")
        a, b = np.asarray(torch.as_tensor(a).cpu(), np.float64), np.asarray(torch.as_tensor(b).cpu(), np.float64)
        out = 0.0
        for name, w in weights.items():
            if w:
                x, y = self.subspace(a, name), self.subspace(b, name)
                cos = (x * y).sum(-1) / np.maximum(np.linalg.norm(x, axis=-1) * np.linalg.norm(y, axis=-1), 1e-12)
                out = out + w * cos
        return np.asarray(out / total)

    def layout_dict(self) -> list[dict]:
        return [part.as_dict() for part in self.layout]

    @classmethod
    def from_config(cls, cfg: DictConfig, seed: int = 0, device="cpu") -> "EmbeddingModel":
        """The same architecture at random initialisation: the baseline every report shows."""
        torch.manual_seed(seed)
        encoder, heads = _build(cfg)
        return cls(cfg, encoder, heads, identity=f"random-{seed}", device=device)

    # ---------------------------------------------------------------------------------------- embedding
    def _prepare(self, wave: np.ndarray, sample_rate: int) -> torch.Tensor:
        """The input contract (``data.audio.as_waveform``): [N], [C, N] or [N, C], float or integer PCM."""
        from ssl_music.data.audio import as_waveform, resample, to_mono

        if isinstance(wave, torch.Tensor):
            wave = wave.detach().cpu()
        x = np.asarray(as_waveform(wave))
        # the resampler the shards were built with, so training and embedding see the same band limit
        return torch.from_numpy(np.ascontiguousarray(resample(to_mono(x), sample_rate, self.sample_rate)))

    def windows(self, wave: np.ndarray, sample_rate: int, hop_s: float | None = None) -> torch.Tensor:
        """[W, crop_len]: back-to-back windows (or every hop_s); short clips are zero-padded to one window."""
        hop = self.crop_len if hop_s is None else max(1, int(round(hop_s * self.sample_rate)))
        return frame(self._prepare(wave, sample_rate), self.crop_len, hop)

    @torch.no_grad()
    def encode(self, crops: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """[..., L] crops at self.sample_rate (any device) -> float32 [..., embed_dim] on self.device.

        Batches are gathered window by window, so a strided view of overlapping windows (``frame``) is
        copied only ``batch_size`` windows at a time.
        """
        lead = tuple(crops.shape[:-1])
        n = math.prod(lead)
        out = []
        for start in range(0, n, batch_size):
            idx = torch.unravel_index(torch.arange(start, min(n, start + batch_size), device=crops.device), lead)
            batch = crops[idx].to(self.device, torch.float32)
            out.append(self.encoder(batch).float())
        emb = torch.cat(out) if out else torch.zeros(0, self.embed_dim, device=self.device)
        return emb.reshape(*lead, self.embed_dim)

    def embed_crops(self, crops: torch.Tensor | np.ndarray, batch_size: int = 64,
                    subspace: str | None = None) -> np.ndarray:
        return self.subspace(self.encode(torch.as_tensor(crops, dtype=torch.float32), batch_size).cpu().numpy(),
                             subspace)

    def embed_windows(self, wave: np.ndarray, sample_rate: int, hop_s: float | None = None,
                      subspace: str | None = None) -> np.ndarray:
        return self.embed_crops(self.windows(wave, sample_rate, hop_s), subspace=subspace)

    def embed(self, wave: np.ndarray, sample_rate: int, subspace: str | None = None) -> np.ndarray:
        """[embed_dim] (or the dimensions of ``subspace``): the mean over back-to-back crop-length windows."""
        return self.embed_windows(wave, sample_rate, subspace=subspace).mean(axis=0)

    def attention(self, wave: np.ndarray, sample_rate: int, start_s: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Where a self-attention model (``model.backend=attention``) listens in the crop-length window from
        ``start_s``: (frame centre times in seconds from the start of ``wave``, attention rollout [T] summing to one)."""
        from ssl_music.models.backends import frame_mask, listen

        x = self._prepare(wave, sample_rate)
        start = max(0, int(round(start_s * self.sample_rate)))
        crop = frame(x[start:], self.crop_len, self.crop_len)[:1].to(self.device, torch.float32)
        real = min(self.crop_len, max(1, x.shape[-1] - start))
        fraction = torch.tensor([real / self.crop_len], device=self.device)
        weights = listen(self.encoder, crop, fraction)[0].cpu()
        frames = weights.shape[0]
        keep = frame_mask(fraction.cpu(), frames)[0]   # a short clip's padded frames: no audio, no weight
        # frames cover the window evenly
        times = start / self.sample_rate + (torch.arange(frames) + 0.5) * (self.crop_len / self.sample_rate) / frames
        return times[keep].numpy(), weights[keep].numpy()

    def tempo_same_prob(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """P(same tempo) for crop pairs at self.sample_rate, each row crop_len samples."""
        return self.tempo_same_prob_from_embeddings(self.embed_crops(a), self.embed_crops(b))

    @torch.no_grad()
    def tempo_same_prob_from_embeddings(self, ea: np.ndarray, eb: np.ndarray) -> np.ndarray:
        """The head alone: comparing W windows with G references costs W + G encoder passes, not W × G."""
        head = self._pair_scorer()
        if head is None:
            raise SSLMusicError("this checkpoint has no tempo head (trained without objectives.tempo)")
        ea = torch.as_tensor(ea, dtype=torch.float32).to(self.device)
        eb = torch.as_tensor(eb, dtype=torch.float32).to(self.device)
        return torch.sigmoid(head(ea, eb)).float().cpu().numpy()

    # Tempo translation (ssl_music.translation): the translator stored beside the checkpoint, loaded on first use.
    translator_source: str | Path | None = None   # the checkpoint load_encoder read
    _translator: torch.nn.Module | None = None

    def translate_tempo(self, embedding, ratio):
        """The embedding of the same track played ``ratio`` times faster (r > 1 faster): ``embedding`` [D] or
        [B, D], numpy or torch (any device), ``ratio`` a number or one per row; the same kind, shape and
        device come back. Needs a translator trained with ``ssl-music tempo translate-train`` for this
        checkpoint; SSLMusicError with the reason otherwise."""
        from ssl_music.translation import load_translator, translate

        if self._translator is None:
            self._translator = load_translator(self.translator_source, self.encoder)
        return translate(self._translator, embedding, ratio, device=self.device)


def _sub_state(state: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _build(cfg: DictConfig) -> tuple[torch.nn.Module, dict[str, torch.nn.Module]]:
    """The encoder and the heads that outlive pretraining (``Objective.keep_head``: the tempo head, not
    the projector, which downstream never sees) of the objectives the config enables."""
    from ssl_music.models import build_encoder
    from ssl_music.objectives import build_heads

    encoder = build_encoder(cfg.model, cfg.data.sample_rate)
    return encoder, dict(build_heads(cfg, encoder, kept_only=True))


def _modules(encoder: torch.nn.Module, heads: dict[str, torch.nn.Module]) -> list[tuple[str, torch.nn.Module]]:
    """(state-dict prefix, module) of everything a trained model keeps."""
    return [("encoder", encoder), *((f"heads.{name}", head) for name, head in heads.items())]


def _load_trained(cfg: DictConfig, state: dict,
                  source: str | Path) -> tuple[torch.nn.Module, dict[str, torch.nn.Module]]:
    """The encoder and kept heads of ``cfg`` with their weights from ``state`` (keys as in ``state_dict``;
    a checkpoint or export from before ``heads`` has its head keys renamed first)."""
    from ssl_music.checkpoint import heads_renamed

    state = heads_renamed(state)
    encoder, heads = _build(cfg)
    for prefix, module in _modules(encoder, heads):
        try:
            module.load_state_dict(_sub_state(state, f"{prefix}."))
        except RuntimeError as exc:
            raise SSLMusicError(f"{source}: the weights of '{prefix}' do not fit the recorded config: {exc}") from None
    return encoder, heads


def load_encoder(checkpoint: str | Path, device: str = "cpu", random_init: bool = False) -> EmbeddingModel:
    """Rebuild the encoder (and tempo head) a pretraining checkpoint (``.ckpt``) or an export folder
    (``ssl-music export``) holds. Neither runs code from the file: checkpoints are read weights-only,
    exports are safetensors + JSON.

    random_init=True gives the same architecture untrained, initialised with the run's own pretraining seed
    (``trainer.seed``): the report's random-init twin, one init per pretraining seed.
    """
    state, cfg, identity = read_weights(checkpoint)
    if random_init:
        return EmbeddingModel.from_config(cfg, seed=int(OmegaConf.select(cfg, "trainer.seed", default=0) or 0),
                                          device=device)
    encoder, heads = _load_trained(cfg, state, checkpoint)
    model = EmbeddingModel(cfg, encoder, heads, identity=identity, device=device)
    model.translator_source = checkpoint
    return model


def export_encoder(checkpoint: str | Path, out_dir: str | Path) -> Path:
    """Write what ``load_encoder`` needs from a pretraining checkpoint into ``out_dir``, for sharing:
    ``model.safetensors`` (the encoder and the kept heads, ``Objective.keep_head``; not the projector or
    the optimizer state) and ``config.json`` (the run's config and the embedding's layout: each subspace's
    name, dimensions and what it is sensitive to). Returns ``out_dir``."""
    from omegaconf import OmegaConf

    from ssl_music.data.files import file_sha256

    path = Path(checkpoint)
    ckpt, cfg = read_checkpoint(path)
    encoder, heads = _load_trained(cfg, ckpt["state_dict"], path)
    from ssl_music.objectives import embedding_layout

    state = {f"{prefix}.{k}": v for prefix, module in _modules(encoder, heads) for k, v in module.state_dict().items()}
    source = {"checkpoint": path.name, "sha256": file_sha256(path), "format": ckpt["ssl_music"]["format"],
              "global_step": ckpt.get("global_step")}
    layout = [part.as_dict() for part in embedding_layout(cfg, encoder)]
    return write_export(out_dir, state, OmegaConf.to_container(cfg, resolve=True), source, layout=layout)
