"""The weighted k-NN classifier used as a training-free probe, on the search of :mod:`ssl_music.neighbours`.

Each query's neighbours vote with weight ``exp(sim / temperature)`` (Wu et al. 2018, as in solo-learn).
Leave-one-out and leave-same-track-out come from the search: window-level embeddings of one track are
near-duplicates, and without leave-same-track-out they make k-NN look perfect.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

# the search engine's names, where the evaluation has always imported them
from ssl_music.neighbours import (EXACT_MAX_PAIRS, RERANK_MARGIN, SEARCHES, choose_search,  # noqa: F401
                                  describe_search, recall_at, search, search_rule)

DEFAULT_TEMPERATURE = 0.07


def vote(sims: np.ndarray, neighbour_labels: np.ndarray, n_classes: int, k: int,
         temperature: float = DEFAULT_TEMPERATURE) -> np.ndarray:
    """Weighted class scores ``[Q, n_classes]`` from the first ``k`` neighbours (labels -1 = no neighbour)."""
    s = torch.from_numpy(np.ascontiguousarray(sims[:, :k], dtype=np.float32))
    lab = torch.from_numpy(np.ascontiguousarray(neighbour_labels[:, :k], dtype=np.int64))
    valid = lab >= 0
    # Subtracting the row maximum keeps exp() finite; it scales a row's weights, not their ranking.
    top = torch.where(valid, s, torch.full_like(s, -torch.inf)).amax(dim=1, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    w = torch.where(valid, torch.exp((s - top) / temperature), torch.zeros_like(s))
    scores = torch.zeros(s.shape[0], n_classes, dtype=torch.float32)
    scores.scatter_add_(1, lab.clamp(min=0), w)
    return scores.numpy()


def _encode(y: Sequence) -> tuple[np.ndarray, np.ndarray]:
    classes, codes = np.unique(np.asarray(y), return_inverse=True)
    return codes.astype(np.int64), classes


def knn_accuracy(X: np.ndarray, y: Sequence, ks: Sequence[int] = (1, 5, 20), track_ids: Sequence | None = None,
                 chunk: int = 4096, temperature: float = DEFAULT_TEMPERATURE, method: str = "auto",
                 device: str = "cpu", info: dict | None = None) -> dict[int, float]:
    """Leave-one-out weighted k-NN accuracy for each ``k`` (one neighbour search for all of them).

    With ``track_ids``, neighbours from the query's own track are excluded (leave-same-track-out).
    ``method``, ``device`` and ``info`` are :func:`search`'s.
    """
    sims, idx = search(X, max(ks), bank_track_ids=track_ids, chunk=chunk, method=method, device=device, info=info)
    return accuracy_from_neighbours(sims, idx, y, ks, temperature)


def accuracy_from_neighbours(sims: np.ndarray, idx: np.ndarray, y: Sequence, ks: Sequence[int],
                             temperature: float = DEFAULT_TEMPERATURE) -> dict[int, float]:
    """Weighted k-NN accuracy for each ``k`` from a self-search's ``(sims, idx)`` (best first)."""
    codes, classes = _encode(y)
    nb = np.where(idx >= 0, codes[np.clip(idx, 0, None)], -1)
    out = {}
    for k in ks:
        pred = vote(sims, nb, len(classes), k, temperature).argmax(axis=1)
        out[int(k)] = float(np.mean(pred == codes))
    return out


def knn_predict(X_train: np.ndarray, y_train: Sequence, X_query: np.ndarray, k: int,
                train_track_ids: Sequence | None = None, query_track_ids: Sequence | None = None,
                chunk: int = 4096, temperature: float = DEFAULT_TEMPERATURE, method: str = "auto",
                device: str = "cpu", info: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Weighted k-NN prediction of ``X_query`` from a labelled bank: ``(predicted labels [Q], scores [Q, C])``.

    Score columns follow the sorted unique training labels. ``method``, ``device``, ``info``: :func:`search`'s.
    """
    codes, classes = _encode(y_train)
    sims, idx = search(X_train, k, queries=X_query, bank_track_ids=train_track_ids,
                       query_track_ids=query_track_ids, chunk=chunk, method=method, device=device, info=info)
    nb = np.where(idx >= 0, codes[np.clip(idx, 0, None)], -1)
    scores = vote(sims, nb, len(classes), k, temperature)
    return classes[scores.argmax(axis=1)], scores
