"""Which settings change what a pretraining run computes? Same code, config, data and seed, one setting varied.

    python benchmarks/determinism.py                       # a tiny synthetic corpus, 20 steps of the real-music recipe
    python benchmarks/determinism.py --shards runs/real_music/shards --steps 50

Each case pretrains in its own process (`ssl-music pretrain`, the user's path) and the final weights are
compared with the reference case's: bit-identical, or the largest absolute difference of any weight and the
relative L2 distance of all weights. Cases: the reference twice (is a rerun identical?), torch on 1 thread,
another BLAS thread count, a loader worker more, another data seed, another trainer seed. Prints one table.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# name -> (environment additions, config overrides)
CASES = {
    "reference": ({}, []),
    "reference again": ({}, []),
    "torch 1 thread": ({"OMP_NUM_THREADS": "1"}, []),
    "BLAS 2 threads": ({"SSL_MUSIC_BLAS_THREADS": "2"}, []),
    "loader workers 0": ({}, ["data.num_workers=0"]),
    "data.seed=1": ({}, ["data.seed=1"]),
    "trainer.seed=1": ({}, ["trainer.seed=1"]),
}


def _weights(run: Path) -> dict:
    import torch

    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    return {k: v.double() for k, v in state.items() if v.is_floating_point()}


def compare(a: dict, b: dict) -> tuple[bool, float, float]:
    """(bit-identical, max |a - b|, ||a - b|| / ||a||) over every floating-point weight."""
    import torch

    if a.keys() != b.keys():   # another checkpoint layout: nothing to compare weight by weight
        return False, float("nan"), float("nan")
    same = all(torch.equal(a[k], b[k]) for k in a)
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    num = sum(float((a[k] - b[k]).pow(2).sum()) for k in a) ** 0.5
    den = sum(float(a[k].pow(2).sum()) for k in a) ** 0.5
    return same, diff, num / max(den, 1e-30)


def _shards(tmp: Path) -> Path:
    from ssl_music.data.shards import build_shards
    from ssl_music.data.synth import generate_corpus

    corpus = generate_corpus(tmp / "corpus", n_tracks=12, seconds=20.0, seed=3)
    build_shards(corpus, tmp / "shards", sample_rate=16000, segment_seconds=60, shard_size_mb=1, workers=1,
                 progress=False)
    return tmp / "shards"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shards", default="", help="shards to train on (default: a tiny synthetic corpus)")
    ap.add_argument("--config", default=str(REPO / "configs" / "pretrain" / "real_music.yaml"))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--out", default="", help="folder for the runs (default: a temporary folder)")
    a = ap.parse_args()
    out = Path(a.out or tempfile.mkdtemp(prefix="determinism-"))
    shards = Path(a.shards) if a.shards else _shards(out)
    common = [f"data.shards={shards}", f"trainer.max_steps={a.steps}", "trainer.progress_bar=false",
              "trainer.logger=none", "monitor.every_n_steps=0", f"trainer.ckpt_every_n_steps={a.steps}",
              "data.batches_per_epoch=10"]
    print(f"{a.steps} steps of {Path(a.config).name} on {shards}; every case against 'reference'", flush=True)
    print(f"{'case':<18} {'identical':>9} {'max |Δw|':>10} {'rel. L2':>10} {'seconds':>8}", flush=True)
    ref = None
    for i, (name, (env, overrides)) in enumerate(CASES.items()):
        run = out / f"case{i}"
        if not (run / "checkpoints" / "last.ckpt").is_file():   # a re-run with --out continues
            cmd = [sys.executable, "-m", "ssl_music.cli", "pretrain", "--config", a.config, *common,
                   f"trainer.root_dir={run}", *overrides]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, cwd=REPO)
            if proc.returncode:
                sys.exit(f"{name}: pretraining failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
            took = f"{time.perf_counter() - t0:>8.1f}"
        else:
            took = f"{'reused':>8}"
        w = _weights(run)
        if ref is None:
            ref = w
            continue
        same, diff, rel = compare(ref, w)   # printed as each case ends: a long run still shows what it has
        print(f"{name:<18} {'yes' if same else 'no':>9} {diff:>10.3g} {rel:>10.3g} {took}", flush=True)


if __name__ == "__main__":
    main()
