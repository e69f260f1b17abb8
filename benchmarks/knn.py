"""k-NN evaluation speed: exact cosine top-k with leave-one-out on random float32 embeddings.

Times ``evaluation.knn.knn_accuracy`` (k in {1, 5, 20}, one neighbour search) on N x D embeddings, and,
in the same run, sklearn's brute-force ``NearestNeighbors(metric="cosine")`` against ours on a 10k subset.
Exact search is N^2 * D multiply-adds, so the full run is bounded by the CPU's float32 matmul rate;
the script prints that rate too, to read the figure against. Usage: python benchmarks/knn.py [--n N] [--dim D]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from evaluation.knn import knn_accuracy  # noqa: E402

KS = (1, 5, 20)


def matmul_gflops(dim: int) -> float:
    a, b = torch.randn(4096, dim), torch.randn(20000, dim)
    a @ b.T
    t = time.perf_counter()
    a @ b.T
    return 2 * 4096 * 20000 * dim / (time.perf_counter() - t) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--subset", type=int, default=10_000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.n, args.dim), dtype=np.float32)
    y = rng.integers(0, 10, args.n)
    gflops = matmul_gflops(args.dim)
    print(f"torch threads {torch.get_num_threads()}, float32 matmul {gflops:.0f} GFLOP/s "
          f"-> exact-search floor for N={args.n}: {2 * args.n ** 2 * args.dim / gflops / 1e9:.1f} s")

    t = time.perf_counter()
    acc = knn_accuracy(X, y, ks=KS)
    full_s = time.perf_counter() - t
    print(f"ours      N={args.n} D={args.dim} k={KS}: {full_s:.2f} s  (acc {acc}, chance 0.1)")

    from sklearn.neighbors import NearestNeighbors

    Xs, ys = X[: args.subset], y[: args.subset]
    t = time.perf_counter()
    knn_accuracy(Xs, ys, ks=KS)
    ours_s = time.perf_counter() - t
    t = time.perf_counter()
    NearestNeighbors(n_neighbors=max(KS) + 1, metric="cosine", algorithm="brute").fit(Xs).kneighbors(Xs)
    sk_s = time.perf_counter() - t
    print(f"subset    N={args.subset}: ours {ours_s:.2f} s, sklearn brute-force neighbours only {sk_s:.2f} s, "
          f"speed-up x{sk_s / ours_s:.1f}")


if __name__ == "__main__":
    main()
