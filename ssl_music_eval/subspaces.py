"""Evaluation of an embedding with named subspaces (issue 24): one feature set per subspace beside the
whole embedding, and weighted retrieval.

Per subspace: the model's embedding sliced to that subspace (``model/<name>``) is one more feature set,
so every probe, k-NN and locality column the suite computes for the model it computes per subspace too.

Weighted retrieval: neighbours ranked by ``EmbeddingModel.similarity`` with weights — the first subspace
(content) at 1, one other subspace at w, the rest at 0 — as w goes 0 → 1; locality@k of every attribute at
each w, with a bootstrap interval over queries. The weighted cosine is an ordinary cosine on the
concatenation of each subspace scaled to length sqrt(w_k) (sum_k w_k cos_k / sum_k w_k), so the suite's own
neighbour search serves.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
PREFIX = "model/"
TWIN_PREFIX = "random_init/"   # the same part of the run's own random-init twin: trained - twin is what training added


def layout_of(model: Any) -> list:
    """The model's subspaces (``EmbeddingModel.layout``); none for a baseline or a one-part model."""
    layout = list(getattr(model, "layout", None) or [])
    return layout if len(layout) > 1 else []


def subspace_features(model: Any, X: np.ndarray, prefix: str = PREFIX) -> dict[str, np.ndarray]:
    """``{"model/<name>": X[:, part]}`` for a model with more than one subspace, else {}. When the last part
    also holds the periodicity block (the encoder's dimensions past ``content_dim``), its other dimensions
    alone are one more set, ``model/<name> (learned)``: what the dense layers added beside the block.
    ``prefix`` ``random_init/``: the same sets of the random-init twin (``model`` its ``load_encoder(...,
    random_init=True)``), so each part is scored beside the same part untrained."""
    layout = layout_of(model)
    out = {f"{prefix}{p.name}": np.ascontiguousarray(X[:, p.start:p.stop]) for p in layout}
    learned = getattr(getattr(model, "encoder", None), "content_dim", None)
    if layout and isinstance(learned, int) and layout[-1].start < learned < layout[-1].stop:
        out[f"{prefix}{layout[-1].name} (learned)"] = np.ascontiguousarray(X[:, layout[-1].start:learned])
    return out


def weighted(X: np.ndarray, layout: Sequence, weights: Mapping[str, float]) -> np.ndarray:
    """Each subspace to unit length, times sqrt(its weight), concatenated: cosine on the result is the
    weighted similarity of ``EmbeddingModel.similarity``."""
    parts = []
    for p in layout:
        w = float(weights.get(p.name, 0.0))
        if w > 0:
            x = X[:, p.start:p.stop].astype(np.float64)
            parts.append(np.sqrt(w) * x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12))
    return np.concatenate(parts, axis=1).astype(np.float32)


def bootstrap_mean(values: np.ndarray, n_boot: int, seed: int = 0) -> dict[str, float]:
    """{mean, ci_low, ci_high}: the mean of the finite values and its 95 % percentile bootstrap interval."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return {"mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
    out = {"mean": float(v.mean())}
    if n_boot > 1 and v.size > 1:
        idx = np.random.default_rng(seed).integers(0, v.size, size=(n_boot, v.size))
        means = v[idx].mean(axis=1)
        out.update(ci_low=float(np.percentile(means, 2.5)), ci_high=float(np.percentile(means, 97.5)))
    return out


def weighted_locality(X: np.ndarray, layout: Sequence, labels: Mapping[str, Sequence], k: int,
                      track_ids: Sequence | None = None, tolerances: Mapping[str, float] | None = None,
                      weights: Sequence[float] = WEIGHTS, n_boot: int = 1000) -> dict:
    """``{"base": first subspace, "weights": [...], "parts": {part: {attr: [{mean, ci_low, ci_high} per w]}}}``."""
    from ssl_music_eval.probes.locality import locality

    base = layout[0].name
    table = {}
    for part in layout[1:]:
        rows: dict[str, list] = {a: [] for a in labels}
        for w in weights:
            per_query: dict = {}
            locality(weighted(X, layout, {base: 1.0, part.name: w}), labels, k=k, track_ids=track_ids,
                     tolerances=tolerances, per_query=per_query)
            for a in labels:
                rows[a].append(bootstrap_mean(per_query[a], n_boot))
        table[part.name] = rows
    return {"base": base, "weights": [float(w) for w in weights], "k": int(k), "parts": table}
