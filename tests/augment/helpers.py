"""Shared helpers for the augmentation tests: config-built augmenters, both backends, pitch/tempo meters."""
import numpy as np
import torch

from ssl_music.augment import ViewAugmenter
from ssl_music.config import load_config
from ssl_music.objectives import view_treatments

SR = 16000


def make_augmenter(chain: dict, backend: str = "cpu", crop_s: float = 2.0, **tempo) -> ViewAugmenter:
    overrides = [f"augment.backend={backend}", f"data.crop_s={crop_s}"]
    overrides += [f"data.tempo.{k}={v}" for k, v in tempo.items()]
    for name, spec in chain.items():
        overrides.append(f"augment.chain.{name}.p={spec.get('p', 1.0)}")
        overrides += [f"augment.chain.{name}.params.{k}={v}" for k, v in spec.get("params", {}).items()]
    cfg = load_config(overrides=overrides)
    return ViewAugmenter(cfg.augment, cfg.data, view_treatments(cfg.data))


def run(aug: ViewAugmenter, views: np.ndarray, backend: str, seed: int = 0, view: str = "contrastive"):
    """views [B, V, S] -> augmented [B, V, L] numpy, with either backend."""
    if backend == "cpu":
        rng = np.random.default_rng(seed)
        outs = [aug.apply_sample({view: v}, rng) for v in views]
        return np.stack([o[view] for o in outs]), outs
    out = aug.apply_batch({view: torch.from_numpy(views)}, torch.Generator().manual_seed(seed))
    return out[view].numpy(), out


def measured_f0(y: np.ndarray) -> float:
    """Peak of the zero-padded spectrum, refined by parabolic interpolation of log magnitudes."""
    w = np.hanning(len(y))
    n = 8 * len(y)
    mag = np.abs(np.fft.rfft(y * w, n)) + 1e-12
    k = int(np.argmax(mag))
    a, b, c = np.log(mag[k - 1:k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * SR / n


def inter_onset_interval(y: np.ndarray, lo_s: float, hi_s: float) -> float:
    """Period of the amplitude envelope: the autocorrelation peak between lo_s and hi_s seconds."""
    env = np.abs(y)
    hop = 8
    env = env[: len(env) // hop * hop].reshape(-1, hop).max(1)
    env = env - env.mean()
    ac = np.correlate(env, env, "full")[len(env) - 1:]
    lo, hi = int(lo_s * SR / hop), int(hi_s * SR / hop)
    k = lo + int(np.argmax(ac[lo:hi]))
    a, b, c = ac[k - 1:k + 2]
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * hop / SR


def click_track(seconds: float, interval_s: float) -> np.ndarray:
    y = np.zeros(int(seconds * SR), np.float32)
    click = (np.sin(2 * np.pi * 1000 * np.arange(160) / SR) * np.hanning(160)).astype(np.float32)
    for start in np.arange(0, seconds - 0.02, interval_s):
        i = int(round(start * SR))
        y[i:i + 160] += click
    return y
