"""Agreement of the augmentation backends, preset by preset, on synthetic music with one draw.

    python benchmarks/spectral_agreement.py [--crop-s 3] [--tracks 16] [--frontend logmel] [--seed 0]

Each track's crop is augmented twice per preset (two views, different draws) by the spectral backend and
by the gpu backend from the same seed (so with the same parameters), and by the cpu backend's transforms
replayed with the draws the gpu backend recorded. The front-end turns every view into its log spectrogram;
per pair of backends the table gives the median over views of the Pearson correlation (min in brackets)
and of the mean absolute difference (log10 units of MULE's compression). tests/augment/test_spectral_agreement.py
holds the same measure at a test's size.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from ssl_music.augment import ViewAugmenter
from ssl_music.augment.chain import TRANSFORMS
from ssl_music.augment.signal import fit
from ssl_music.config import CONFIG_DIR, load_config
from ssl_music.data.synth import render_track
from ssl_music.models import build_encoder
from ssl_music.objectives import view_treatments

SR = 16000


def replay_on_cpu(aug, rows: np.ndarray, record) -> np.ndarray:
    """The cpu backend's transforms with the draws the gpu backend recorded."""
    rng = np.random.default_rng(0)
    sets_length = any(TRANSFORMS[name].sets_length for name, _, _ in record)
    out = []
    for i, y in enumerate(rows):
        y = y if sets_length else fit(y, aug.out_len)
        for name, applied, prm in record:
            drawn = {k: float(v[i]) for k, v in prm.items()}
            y = np.asarray(TRANSFORMS[name]().cpu_apply(y, bool(applied[i]), drawn, aug.chain[name]["params"],
                                                        SR, aug.out_len, rng), np.float32)
        out.append(y)
    return np.stack(out)


def log_views(preset: str, music, crop_s: float, frontend_name: str = "logmel", seed: int = 0):
    """The front-end's log spectrograms [2 * tracks, ...] of two views per track (a crop from 0.5 s) after
    ``preset`` on the spectral backend, the gpu backend (same seed, same draws) and the cpu backend's
    transforms replayed with those draws."""
    cfg = load_config(overrides=[f"augment.preset={preset}", "augment.backend=spectral", f"data.crop_s={crop_s}",
                                 f"model.frontend={frontend_name}"])
    aug = ViewAugmenter(cfg.augment, cfg.data, view_treatments(cfg.data))
    frontend = build_encoder(cfg.model, SR).frontend
    s = aug.source_len("contrastive")
    x = torch.from_numpy(np.stack([y[SR // 2: SR // 2 + s] for y in music])[:, None].repeat(2, 1).astype(np.float32))
    record = []
    spectral = aug.apply_batch({"contrastive": x}, torch.Generator().manual_seed(seed), frontend=frontend)["contrastive"]
    gpu = aug.apply_batch({"contrastive": x}, torch.Generator().manual_seed(seed), record)["contrastive"]
    cpu = torch.from_numpy(replay_on_cpu(aug, x.reshape(-1, s).numpy(), record))
    with torch.no_grad():
        return (frontend(spectral.reshape(-1, *spectral.shape[2:])), frontend(gpu.reshape(-1, aug.out_len)),
                frontend(cpu))


def _corr(a, b) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm() + 1e-12))


def measures(a, b) -> tuple:
    """Views [N, ...] of two backends -> (median correlation, min correlation, median mean |difference|)."""
    corr = [_corr(a[i], b[i]) for i in range(len(a))]
    diff = (a - b).abs().mean(tuple(range(1, a.dim())))
    return float(np.median(corr)), min(corr), float(diff.median())


def agreement(a, b) -> str:
    med, low, diff = measures(a, b)
    return f"{med:.3f} [{low:.3f}] / {diff:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crop-s", type=float, default=3.0)
    ap.add_argument("--tracks", type=int, default=16)
    ap.add_argument("--frontend", default="logmel", choices=["logmel", "logfreq", "harmonic"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    music = [render_track(i, 2 + 2 * args.crop_s, seed=args.seed, sample_rate=SR)[0] for i in range(args.tracks)]
    print(f"{args.tracks} synthetic tracks x 2 views, {args.crop_s:g} s crops, front-end {args.frontend}, seed "
          f"{args.seed}; median correlation [min] / median mean absolute difference of the log spectrograms")
    print(f"{'preset':<20}{'spectral ~ gpu':>24}{'spectral ~ cpu':>24}{'gpu ~ cpu':>24}")
    for preset in sorted(p.stem for p in (CONFIG_DIR / "augment").glob("*.yaml")):
        if preset == "none":
            continue
        spec, wave, am = log_views(preset, music, args.crop_s, args.frontend, args.seed)
        print(f"{preset:<20}{agreement(spec, wave):>24}{agreement(spec, am):>24}{agreement(wave, am):>24}", flush=True)


if __name__ == "__main__":
    main()
