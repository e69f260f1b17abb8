"""Augmentation throughput: audiomentations per example on one core vs the batched torch backends.

    python benchmarks/augment.py [--batch 64] [--crop-s 3] [--reps 1]

Prints clips/s for every transform (p = 1, registry default params) and for the `full`, `stretch_pitch`
and `mild_stretch_pitch` presets (fastest of --reps timed runs, which damps noise from other processes),
and each batched figure as a ratio of the one-core baseline measured in the same run. The gpu backend
(waveform out; then also with the log-mel front-end's STFT of its views, what a spectrogram model pays
next) and the spectral backend (that front-end's power spectrogram out, its own STFT included) run on
CPU with torch's default thread count, then on CUDA when present; the last column compares the spectral
backend with the gpu backend plus STFT, the like-for-like pair.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from omegaconf import OmegaConf

from ssl_music.augment.chain import TRANSFORMS, resolve_chain
from ssl_music.augment.cpu import apply_chain
from ssl_music.augment.gpu import BatchChain
from ssl_music.augment.spectral import SpectralChain
from ssl_music.config import preset_path
from ssl_music.models.frontends import LogMel

SR = 16000


def _cases():
    cases = {name: resolve_chain({name: {"p": 1.0}}) for name in TRANSFORMS}
    for preset in ("stretch_pitch", "mild_stretch_pitch", "full"):
        cases[f"preset:{preset}"] = resolve_chain(OmegaConf.load(preset_path(preset)).chain)
    return cases


def _source(chain, batch: int, out_len: int) -> np.ndarray:
    factor = chain["time_stretch"]["params"]["max_rate"] if "time_stretch" in chain else 1.0
    n = int(np.ceil(out_len * factor))
    rng = np.random.default_rng(0)
    t = np.arange(n) / SR
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 2 * t) > 0)
    return (tone[None] + 0.05 * rng.standard_normal((batch, n))).astype(np.float32)


def bench_cpu(chain, x: np.ndarray, out_len: int, reps: int) -> float:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    apply_chain(x[0], chain, SR, out_len, rng)  # warm-up
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        for row in x:
            apply_chain(row, chain, SR, out_len, rng)
        best = min(best, time.perf_counter() - start)
    return len(x) / best


def bench_batched(chain, x: np.ndarray, out_len: int, reps: int, device: str, threads: int,
                  spectral: bool = False, stft: bool = False) -> float:
    """clips/s of one backend; ``stft``: the gpu backend's views then through the log-mel front-end's STFT."""
    torch.set_num_threads(threads)
    module = (SpectralChain if spectral else BatchChain)(chain, SR, out_len)
    frontend = LogMel(SR).to(device)
    kw = {"frontend": frontend} if spectral else {}
    after = frontend.stft_module() if stft else (lambda y: y)
    xt = torch.from_numpy(x).to(device)
    g = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        after(module(xt[:2], g, **kw))  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        best = float("inf")
        for _ in range(reps):
            start = time.perf_counter()
            after(module(xt, g, **kw))
            if device == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
    return len(x) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--crop-s", type=float, default=3.0)
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions; the fastest counts")
    args = ap.parse_args()
    threads = torch.get_num_threads()
    out_len = int(round(args.crop_s * SR))
    cuda = torch.cuda.is_available()
    print(f"{args.crop_s:g} s crops at {SR} Hz, batch {args.batch}, reps {args.reps}; "
          f"batched CPU uses {threads} torch threads; cuda: {'available' if cuda else 'not available'}")
    devices = ["cpu"] + (["cuda"] if cuda else [])
    header = f"{'transform':<26}{'audiomentations 1 core':>24}"
    for device in devices:
        header += (f"{'gpu backend ' + device:>20}{'ratio':>8}{'+ STFT':>10}{'spectral ' + device:>18}{'ratio':>8}"
                   f"{'vs gpu+STFT':>13}")
    print(header + "   (clips/s)")
    for name, chain in _cases().items():
        x = _source(chain, args.batch, out_len)
        base = bench_cpu(chain, x, out_len, args.reps)
        row = f"{name:<26}{base:>24.1f}"
        for device in devices:
            wave = bench_batched(chain, x, out_len, args.reps, device, threads)
            wave_stft = bench_batched(chain, x, out_len, args.reps, device, threads, stft=True)
            spec = bench_batched(chain, x, out_len, args.reps, device, threads, spectral=True)
            row += (f"{wave:>20.1f}{wave / base:>7.2f}x{wave_stft:>10.1f}{spec:>18.1f}{spec / base:>7.2f}x"
                    f"{spec / wave_stft:>12.2f}x")
        print(row, flush=True)


if __name__ == "__main__":
    main()
