"""Embedding locality (McCallum et al. 2024): how often a point's nearest neighbours share its label.

For each query, the share of its ``k`` nearest cosine neighbours (leave-one-out, and leave-same-track-out
when track ids are given) that carry the query's label, averaged over queries; one neighbour search
serves every attribute. Chance is the sum of squared class frequencies: the share expected when
neighbours are drawn at random. Missing labels (None, NaN, "") are not queried, and such neighbours are
not counted in a query's denominator.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from evaluation.knn import search


def _codes_with_missing(values: Sequence) -> np.ndarray:
    arr = np.asarray(values, dtype=object)
    missing = np.array([v is None or v == "" or (isinstance(v, float) and np.isnan(v)) for v in arr], dtype=bool)
    codes = np.full(len(arr), -1, dtype=np.int64)
    if (~missing).any():
        _, codes[~missing] = np.unique(arr[~missing].astype(str), return_inverse=True)
    return codes


def chance_level(values: Sequence) -> float:
    """Sum of squared class frequencies over the items that have a label."""
    codes = _codes_with_missing(values)
    codes = codes[codes >= 0]
    if codes.size == 0:
        return float("nan")
    p = np.bincount(codes) / codes.size
    return float(np.sum(p ** 2))


def locality(X: np.ndarray, labels: Mapping[str, Sequence], k: int = 10, track_ids: Sequence | None = None,
             chunk: int = 4096, method: str = "auto", device: str = "cpu",
             info: dict | None = None) -> dict[str, dict[str, float]]:
    """``{attribute: {"share": mean neighbour agreement, "chance": chance level, "n": queries scored}}``.

    ``method`` (auto | exact | bf16), ``device`` and ``info`` are :func:`evaluation.knn.search`'s.
    """
    for name, values in labels.items():
        if len(values) != len(X):
            raise ValueError(f"locality: attribute '{name}' has {len(values)} labels for {len(X)} embeddings")
    _, idx = search(X, k, bank_track_ids=track_ids, chunk=chunk, method=method, device=device, info=info)
    has_nb = idx >= 0
    safe = np.clip(idx, 0, None)
    out = {}
    for name, values in labels.items():
        codes = _codes_with_missing(values)
        nb = np.where(has_nb, codes[safe], -1)
        known = nb >= 0
        same = (nb == codes[:, None]) & known
        denom = known.sum(axis=1)
        ok = (codes >= 0) & (denom > 0)
        share = float(np.mean(same[ok].sum(axis=1) / denom[ok])) if ok.any() else float("nan")
        out[name] = {"share": share, "chance": chance_level(values), "n": int(ok.sum())}
    return out
