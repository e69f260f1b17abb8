"""Embedding locality (McCallum et al. 2024): how often a point's nearest neighbours share its label.

For each query, the share of its ``k`` nearest cosine neighbours (leave-one-out, and leave-same-track-out
when track ids are given) that carry the query's label, averaged over queries; one neighbour search
serves every attribute. Chance is the sum of squared class frequencies: the share expected when
neighbours are drawn at random. Missing labels (None, NaN, "") are not queried, and such neighbours are
not counted in a query's denominator.

A numeric attribute given a relative ``tolerance`` (tempo) counts a neighbour as agreeing when its value lies
within ±tolerance of the query's (4 %: the MIREX Acc1 window), so exact BPMs need no binning; its chance
is the share of other items within the query's window, averaged over queries.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ssl_music_eval.probes.knn import search


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


def _numeric(values: Sequence) -> np.ndarray:
    """Values as floats; missing labels (None, "", NaN) become NaN."""
    return np.array([np.nan if v is None or v == "" else float(v) for v in values], dtype=np.float64)


def _within(q: np.ndarray, nb: np.ndarray, tolerance: float) -> np.ndarray:
    return np.abs(nb - q) <= tolerance * np.abs(q)


def tolerance_chance(values: Sequence, tolerance: float) -> float:
    """Share of other items whose value is within ±tolerance of the query's, averaged over queries."""
    v = _numeric(values)
    v = v[~np.isnan(v)]
    if v.size < 2:
        return float("nan")
    hits = _within(v[:, None], v[None, :], tolerance)
    return float(np.mean((hits.sum(axis=1) - 1) / (v.size - 1)))


def locality(X: np.ndarray, labels: Mapping[str, Sequence], k: int = 10, track_ids: Sequence | None = None,
             chunk: int = 4096, method: str = "auto", device: str = "cpu",
             info: dict | None = None, tolerances: Mapping[str, float] | None = None,
             per_query: dict | None = None) -> dict[str, dict[str, float]]:
    """``{attribute: {"share": mean neighbour agreement, "chance": chance level, "n": queries scored}}``.

    ``tolerances``: numeric attributes (tempo) matched within a relative tolerance instead of exactly.
    ``per_query`` (a dict) receives each attribute's per-query agreement [N] (NaN where not scored), for
    intervals over queries.
    ``method`` (auto | exact | bf16), ``device`` and ``info`` are :func:`ssl_music_eval.probes.knn.search`'s.
    """
    tolerances = dict(tolerances or {})
    for name, values in labels.items():
        if len(values) != len(X):
            raise ValueError(f"locality: attribute '{name}' has {len(values)} labels for {len(X)} embeddings")
    _, idx = search(X, k, bank_track_ids=track_ids, chunk=chunk, method=method, device=device, info=info)
    has_nb = idx >= 0
    safe = np.clip(idx, 0, None)
    out = {}
    for name, values in labels.items():
        if name in tolerances:
            v = _numeric(values)
            nb = np.where(has_nb, v[safe], np.nan)
            known = ~np.isnan(nb)
            same = _within(v[:, None], nb, tolerances[name]) & known
            has_label, chance = ~np.isnan(v), tolerance_chance(values, tolerances[name])
        else:
            codes = _codes_with_missing(values)
            nb = np.where(has_nb, codes[safe], -1)
            known = nb >= 0
            same = (nb == codes[:, None]) & known
            has_label, chance = codes >= 0, chance_level(values)
        denom = known.sum(axis=1)
        ok = has_label & (denom > 0)
        share = float(np.mean(same[ok].sum(axis=1) / denom[ok])) if ok.any() else float("nan")
        if per_query is not None:
            per_query[name] = np.where(ok, same.sum(axis=1) / np.maximum(denom, 1), np.nan)
        out[name] = {"share": share, "chance": chance, "n": int(ok.sum())}
    return out
