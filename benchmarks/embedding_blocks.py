"""Which block of an embedding decides its nearest neighbours: the learned block vs the periodicity block.

Reads the embeddings an evaluation cached (``RUN/cache/*.npz`` from ``ssl-music evaluate``; no audio, no model)
and prints 10-NN accuracy and linear-probe accuracy per label column for: the whole embedding, the learned
block alone, and the per-block normalisation ``model.block_norm`` applies (each block to unit length, the
periodicity block then to ``--weight``). This is the measurement behind block_norm (README "Real music").

    python benchmarks/embedding_blocks.py runs/real_music/demo_recipe/run --labels ../shared/devset/labels.csv \
        --columns style instrument
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ssl_music_eval.datasets import load_csv_manifest, make_splits  # noqa: E402
from ssl_music_eval.probes.knn import knn_accuracy  # noqa: E402
from ssl_music_eval.probes.linear_probe import run_probe  # noqa: E402
from ssl_music.data.files import resolve  # noqa: E402


def _unit(a: np.ndarray) -> np.ndarray:
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)


def variants(X: np.ndarray, period_dims: int, weight: float) -> dict[str, np.ndarray]:
    c, p = X[:, :-period_dims], X[:, -period_dims:]
    return {"whole": X, "learned block": c,
            f"block_norm w={weight:g}": np.hstack([_unit(c) * np.sqrt(1 - weight ** 2), weight * _unit(p)])}


def cached_labels(cache: Path, labels_csv: str, columns: list[str]) -> tuple[np.ndarray, dict[str, list]]:
    """The cached embeddings and, row for row, their labels. ``kept`` indexes the suite's dataset items, not
    the CSV's rows (rows whose file is missing or label empty are not items), so rows are matched by path; a
    cache older than its ``paths`` array is matched through the dataset rebuilt the way the suite loads it."""
    with np.load(cache) as z:  # plain arrays only: nothing in a cache needs unpickling
        X, kept = z["X"], z["kept"].tolist()
        paths = z["paths"].tolist() if "paths" in z else None
    if paths is None:
        print(f"  {cache.name}: no paths recorded (an older cache); rows matched through {labels_csv} loaded "
              f"with columns {columns}, as the suite loads it", file=sys.stderr)
        items = load_csv_manifest(labels_csv, columns).items
        return X, {c: [items[i].labels[c] for i in kept] for c in columns}
    by_path = {str(resolve(r["path"], Path(labels_csv).parent)): r for r in csv.DictReader(open(labels_csv, newline=""))}
    missing = [p for p in paths if p not in by_path]
    if missing:
        sys.exit(f"{cache}: {len(missing)} cached file(s) not in {labels_csv}, e.g. {missing[0]}")
    return X, {c: [by_path[p][c] for p in paths] for c in columns}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="an evaluated run folder (holds cache/*.npz)")
    ap.add_argument("--labels", required=True, help="the labels CSV the suite read (rows in the cached order)")
    ap.add_argument("--columns", nargs="+", default=["style", "instrument"])
    ap.add_argument("--period-dims", type=int, default=16, help="trailing periodicity dimensions (tiny, 128-d: 16)")
    ap.add_argument("--weight", type=float, default=0.1)
    ap.add_argument("--dim", type=int, default=128, help="only caches of this width (the model and its twin)")
    a = ap.parse_args()
    for f in sorted(Path(a.run, "cache").glob("*.npz")):
        X, labels = cached_labels(f, a.labels, a.columns)
        if X.shape[1] != a.dim:
            continue
        print(f"== {f.name} ({len(X)} items)")
        for name, V in variants(X, a.period_dims, a.weight).items():
            out = []
            for c in a.columns:
                knn = knn_accuracy(V, labels[c], ks=[10])[10]
                lin = run_probe(V, labels[c], make_splits(labels[c], 5, 0), "multiclass", kind="linear", seeds=[0],
                                n_boot=10)["accuracy"]["mean"]
                out.append(f"{c} 10-NN {knn:.3f} linear {lin:.3f}")
            print(f"  {name:16s} " + " | ".join(out))


if __name__ == "__main__":
    main()
