"""Encoder throughput on CPU: forward+backward clips/s for 3 s crops, batch 32, 2 torch threads.

Prints parameter counts and clips/s per encoder, and each encoder's speed relative to the tiny CNN measured
in the same run. ``--all`` adds SampleCNN and the harmonic CNN (slower; not part of the default < 60 s run).

    .venv/bin/python benchmarks/encoders.py [--batch 32] [--steps 2] [--threads 2] [--width 64] [--all]
"""
from __future__ import annotations

import argparse
import time

import torch
from omegaconf import OmegaConf

from ssl_music.config import ModelConfig
from ssl_music.models import build_encoder

SR = 16000


def clips_per_second(model: torch.nn.Module, batch: int, crop_s: float, steps: int) -> float:
    wave = torch.randn(batch, round(crop_s * SR))
    model.train()
    model(wave).sum().backward()  # warm-up: allocator and one-off kernel choices
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    for _ in range(steps):
        model(wave).sum().backward()
        model.zero_grad(set_to_none=True)
    return steps * batch / (time.perf_counter() - start)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--crop-s", type=float, default=3.0)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--width", type=int, default=64, help="model.width (config default 64)")
    p.add_argument("--all", action="store_true", help="also SampleCNN and the harmonic CNN")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    encoders = ["tiny", "short_chunk_resnet"] + (["samplecnn", "harmonic_cnn"] if args.all else [])
    print(f"CPU, {args.threads} threads, batch {args.batch}, {args.crop_s:g} s crops at {SR} Hz, "
          f"width {args.width}, embed_dim 512, forward+backward")
    print(f"{'encoder':<20}{'frontend':<10}{'params':>12}{'clips/s':>10}{'vs tiny':>9}")
    baseline = None
    for name in encoders:
        cfg = OmegaConf.structured(ModelConfig(encoder=name, frontend="auto", width=args.width))
        model = build_encoder(cfg, SR)
        n_params = sum(p.numel() for p in model.parameters())
        rate = clips_per_second(model, args.batch, args.crop_s, args.steps)
        baseline = baseline or rate
        print(f"{name:<20}{model.frontend_name:<10}{n_params:>12,}{rate:>10.1f}{rate / baseline:>8.2f}x")


if __name__ == "__main__":
    main()
