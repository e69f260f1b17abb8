"""The HEAR 2021 common API (Turian et al. 2022), so a checkpoint drops into hear-eval-kit and the harnesses
that wrap it with one line::

    hear-validator ssl_music.hear -m runs/x/checkpoints/last.ckpt      # or an `ssl-music export` folder

    import ssl_music.hear as hear
    model = hear.load_model("runs/x/checkpoints/last.ckpt")
    scene = hear.get_scene_embeddings(audio, model)            # audio [n_sounds, n_samples] at model.sample_rate
    emb, ts = hear.get_timestamp_embeddings(audio, model)      # [n, T, D], timestamps in ms [n, T]

Embeddings come from the encoder's crop-length windows (``ssl_music.api.frame``), the same windows as
``EmbeddingModel.embed``:

- scene: the mean over back-to-back crop-length windows, exactly ``load_encoder(...).embed(x, sr)`` for a
  sound at the model's rate (the tail shorter than a window is dropped; a sound shorter than one window is
  zero-padded to one).
- timestamps: one crop-length window centred on every timestamp t_k = k · hop, k = 0 … n_samples // hop,
  zero-padded beyond the sound's ends; the embedding at t_k is that window's. The hop is 50 ms
  (``HOP_MS``; ``model.hop_ms`` changes it): HEAR asks for ≤ 50 ms so that event and onset tasks, scored
  with a 50 ms tolerance, can place a boundary on the grid. It is no finer because each timestamp costs a
  whole encoder pass over a crop_s window (20 passes per second of audio at 50 ms), and the windows of
  neighbouring timestamps overlap by crop_s - 50 ms, so a finer grid mostly resamples the same view.
  The temporal resolution of what the embedding can tell apart is the window (crop_s), not the hop.

``load_model`` reads a pretraining checkpoint weights-only or an export folder (no code from the file
runs). The model is a ``torch.nn.Module``: ``.to(device)`` moves it, and audio may live on the CPU or on
any device; embeddings come back on the audio's device as float32.
"""
from __future__ import annotations

import os

import torch

from ssl_music.api import EmbeddingModel, frame, load_encoder
from ssl_music.data.audio import as_waveform
from ssl_music.errors import SSLMusicError

HOP_MS = 50.0
MODEL_ENV = "SSL_MUSIC_HEAR_MODEL"  # load_model("") reads the checkpoint path from here

__all__ = ["HOP_MS", "HearModel", "load_model", "get_scene_embeddings", "get_timestamp_embeddings"]


class HearModel(torch.nn.Module):
    """A frozen ssl_music encoder with the attributes HEAR asks for. ``forward`` gives scene embeddings."""

    def __init__(self, model: EmbeddingModel, hop_ms: float = HOP_MS, batch_size: int = 64):
        super().__init__()
        self.embedding_model = model  # not a Module: its encoder and heads are registered below, so .to moves them
        self.encoder = model.encoder
        self.heads = torch.nn.ModuleDict(model.heads)
        # the full embedding, whatever its layout: HEAR probes read every subspace
        self.subspaces = [part.as_dict() for part in model.layout]
        self.sample_rate = int(model.sample_rate)
        self.scene_embedding_size = int(model.embed_dim)
        self.timestamp_embedding_size = int(model.embed_dim)
        self.hop_ms = float(hop_ms)
        self.batch_size = int(batch_size)  # windows per encoder call
        self.eval()

    @property
    def hop_samples(self) -> int:
        """The timestamp hop in whole samples (at 22.05 kHz, 50 ms is 1102 samples = 49.98 ms)."""
        return max(1, int(round(self.hop_ms * self.sample_rate / 1000.0)))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return get_scene_embeddings(audio, self)


def load_model(model_file_path: str = "", *, hop_ms: float = HOP_MS) -> HearModel:
    """A pretraining checkpoint (``.ckpt``) or an ``ssl-music export`` folder -> HearModel on the CPU.

    ssl_music ships no weights of its own: with no path, the one named by $SSL_MUSIC_HEAR_MODEL is used.
    """
    path = model_file_path or os.environ.get(MODEL_ENV, "")
    if not path:
        raise SSLMusicError(f"ssl_music.hear.load_model needs a checkpoint or export folder (ssl_music ships no "
                            f"default weights): pass model_file_path or set ${MODEL_ENV}")
    return HearModel(load_encoder(path, device="cpu"), hop_ms=hop_ms)


def _audio(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    if not isinstance(model, HearModel):
        raise SSLMusicError(f"expected the model from ssl_music.hear.load_model, got {type(model).__name__}")
    # the package's one input contract, in HEAR's layout: integer PCM rescaled, empty or non-finite refused
    return as_waveform(torch.as_tensor(audio), f"HEAR audio (at {model.sample_rate} Hz)", batch=True)


def get_scene_embeddings(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    """[n_sounds, n_samples] -> float32 [n_sounds, scene_embedding_size]: mean over crop-length windows."""
    audio = _audio(audio, model)
    em = model.embedding_model
    windows = frame(audio, em.crop_len, em.crop_len)  # [n, W, L], as EmbeddingModel.embed windows a clip
    return em.encode(windows, model.batch_size).mean(dim=1).to(audio.device)


def get_timestamp_embeddings(audio: torch.Tensor, model: HearModel) -> tuple[torch.Tensor, torch.Tensor]:
    """[n_sounds, n_samples] -> (float32 [n_sounds, T, timestamp_embedding_size], float32 ms [n_sounds, T]):
    the embedding of the crop-length window centred on each timestamp k · hop, T = n_samples // hop + 1."""
    audio = _audio(audio, model)
    em, hop = model.embedding_model, model.hop_samples
    windows = frame(audio, em.crop_len, hop, centred=True)  # [n, T, L]: a strided view, encoded in batches
    emb = em.encode(windows, model.batch_size).to(audio.device)
    steps = torch.arange(windows.shape[1], dtype=torch.float64) * (hop * 1000.0 / model.sample_rate)
    timestamps = steps.to(torch.float32).repeat(audio.shape[0], 1).to(audio.device)
    return emb, timestamps
