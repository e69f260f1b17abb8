"""Duck-typed stand-ins for ssl_music.api.EmbeddingModel: cheap, deterministic, and they count calls."""
from __future__ import annotations

import numpy as np
import soundfile as sf


class SpectralModel:
    """Embedding = a few spectral statistics per window; tempo head = compares onset periods."""

    def __init__(self, identity: str = "fake-1", sample_rate: int = 16000, crop_s: float = 2.0):
        self.identity, self.sample_rate, self.crop_s = identity, sample_rate, crop_s
        self.embed_dim = 6
        self.has_tempo_head = True
        self.calls = 0

    def embed_windows(self, wave, sample_rate, hop_s=None):
        self.calls += 1
        x = np.asarray(wave, dtype=np.float32)
        L = int(round(self.crop_s * self.sample_rate))
        x = np.pad(x, (0, max(0, L - x.size)))
        hop = L if hop_s is None else int(hop_s * self.sample_rate)
        out = []
        for s in range(0, x.size - L + 1, hop):
            w = x[s:s + L]
            spec = np.abs(np.fft.rfft(w))
            f = np.arange(spec.size)
            c = (spec * f).sum() / (spec.sum() + 1e-9)
            out.append([np.sqrt((w ** 2).mean()), c / spec.size, spec[: spec.size // 8].sum() / (spec.sum() + 1e-9),
                        np.abs(np.diff(np.sign(w))).mean(), w.std(), np.abs(w).max()])
        return np.asarray(out, dtype=np.float32)

    def embed(self, wave, sample_rate):
        return self.embed_windows(wave, sample_rate).mean(axis=0)

    @staticmethod
    def onset_period(x: np.ndarray, sr: int) -> float:
        """Beat period in seconds from the autocorrelation of a 10 ms energy-flux envelope."""
        hop = sr // 200
        frames = x[: x.size // hop * hop].reshape(-1, hop)
        env = np.maximum(np.diff(np.log1p(100 * (frames ** 2).sum(axis=1))), 0)
        env = np.convolve(env, np.hanning(7), mode="same")  # broad peaks: a beat period is not a whole frame count
        env = env - env.mean()
        ac = np.correlate(env, env, mode="full")[env.size - 1:]
        lo, hi = int(0.25 * 200), min(int(1.05 * 200), ac.size - 2)
        seg = ac[lo - 1:hi + 1]
        peaks = [i for i in range(1, seg.size - 1) if seg[i] >= seg[i - 1] and seg[i] > seg[i + 1]]
        top = max(seg[i] for i in peaks)
        lag = lo - 1 + min(i for i in peaks if seg[i] >= 0.6 * top)  # shortest strong period: no octave slips
        a, b, c = ac[lag - 1], ac[lag], ac[lag + 1]
        denom = a - 2 * b + c
        return (lag + (0.5 * (a - c) / denom if denom != 0 else 0.0)) / 200

    def tempo_same_prob(self, a, b):
        pa = np.array([self.onset_period(x, self.sample_rate) for x in a])
        pb = np.array([self.onset_period(x, self.sample_rate) for x in b])
        return np.exp(-np.abs(np.log(pa / pb)) / 0.03)


def write_tone(path, seconds=1.0, freq=440.0, sr=16000):
    t = np.arange(int(seconds * sr)) / sr
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr)
    return str(path)


def tiny_checkpoint(path, tempo: bool = True, overrides=()):
    """A real (untrained) ssl_music checkpoint with a tiny encoder, for CLI tests."""
    import torch

    from ssl_music.api import EmbeddingModel
    from ssl_music.checkpoint import metadata
    from ssl_music.config import load_config, to_container

    cfg = load_config(overrides=["model.encoder=tiny", "model.width=8", "model.embed_dim=16", "data.crop_s=1.0",
                                 "model.tempo_hidden=8", f"objectives.tempo.weight={1.0 if tempo else 0.0}",
                                 *overrides])
    m = EmbeddingModel.from_config(cfg, seed=1)
    state = {f"encoder.{k}": v for k, v in m.encoder.state_dict().items()}
    for name, head in m.heads.items():
        state.update({f"heads.{name}.{k}": v for k, v in head.state_dict().items()})
    torch.save({"ssl_music": metadata(to_container(cfg)), "state_dict": state}, str(path))
    return str(path)


def write_silence(path, seconds=10.0, sr=16000, level=0.0):
    """Digital silence (``level=0``) or a constant DC level, written as float WAV so tiny levels survive."""
    sf.write(str(path), np.full(int(seconds * sr), level, dtype=np.float32), sr, subtype="FLOAT")
    return str(path)
