"""Cosine k-nearest-neighbour search and the weighted k-NN classifier used as a training-free probe.

The search is exact: query chunks are multiplied with the whole (L2-normalised, float32) bank and
``torch.topk`` keeps the best ``k`` per row, so memory stays at ``chunk x N`` floats. Leave-one-out and
leave-same-track-out are applied by writing ``-inf`` into the excluded (row, column) pairs of each chunk
before top-k, so an excluded neighbour can never be picked, whatever its similarity. Window-level
embeddings of one track are near-duplicates; without leave-same-track-out they make k-NN look perfect.
The vote weights each neighbour by ``exp(sim / temperature)`` (Wu et al. 2018, as in solo-learn).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

DEFAULT_TEMPERATURE = 0.07


def _normalised(X: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(X, dtype=np.float32))
    return torch.nn.functional.normalize(t, dim=1)


class _Groups:
    """Column indices grouped by integer code, to list a row's excluded columns without an N x N mask."""

    def __init__(self, codes: np.ndarray, n_codes: int):
        self.order = np.argsort(codes, kind="stable")
        self.size = np.bincount(codes, minlength=n_codes)
        self.start = np.r_[0, np.cumsum(self.size)[:-1]]

    def pairs(self, row_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row position, column) for every column sharing the row's code."""
        counts = self.size[row_codes]
        rows = np.repeat(np.arange(len(row_codes)), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        cols = self.order[np.repeat(self.start[row_codes], counts) + offsets]
        return rows, cols


def _codes(*id_arrays: Sequence) -> tuple[list[np.ndarray], int]:
    joined = np.concatenate([np.asarray(a).astype(str) for a in id_arrays])
    _, codes = np.unique(joined, return_inverse=True)
    out, pos = [], 0
    for a in id_arrays:
        out.append(codes[pos:pos + len(a)])
        pos += len(a)
    return out, int(codes.max()) + 1 if len(codes) else 0


def search(bank: np.ndarray, k: int, queries: np.ndarray | None = None, bank_track_ids: Sequence | None = None,
           query_track_ids: Sequence | None = None, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine top-``k`` neighbours of each query in ``bank``.

    With ``queries=None`` the bank is queried against itself, leaving each item out (a query never
    matches itself). With track ids, every bank item sharing the query's track id is left out too
    (for self-search pass ``bank_track_ids`` only). Returns ``(sims [Q, k] float32, idx [Q, k] int64)``
    best first; slots that could not be filled (fewer than ``k`` admissible items) have idx -1, sim -inf.
    """
    B = _normalised(bank)
    self_search = queries is None
    Q = B if self_search else _normalised(queries)
    if self_search:
        query_track_ids = bank_track_ids
    groups, q_codes = None, None
    if bank_track_ids is not None and query_track_ids is not None:
        (b_codes, q_codes), n_codes = _codes(bank_track_ids, query_track_ids)
        groups = _Groups(b_codes, n_codes)
    k_eff = min(k, B.shape[0])
    sims = np.full((Q.shape[0], k), -np.inf, dtype=np.float32)
    idx = np.full((Q.shape[0], k), -1, dtype=np.int64)
    for s in range(0, Q.shape[0], chunk):
        e = min(s + chunk, Q.shape[0])
        block = Q[s:e] @ B.T
        if groups is not None:
            rows, cols = groups.pairs(q_codes[s:e])
            block[torch.from_numpy(rows), torch.from_numpy(cols)] = -torch.inf
        if self_search:
            r = torch.arange(e - s)
            block[r, r + s] = -torch.inf
        v, i = torch.topk(block, k_eff, dim=1)
        sims[s:e, :k_eff] = v.numpy()
        idx[s:e, :k_eff] = i.numpy()
    idx[~np.isfinite(sims)] = -1
    return sims, idx


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
                 chunk: int = 4096, temperature: float = DEFAULT_TEMPERATURE) -> dict[int, float]:
    """Leave-one-out weighted k-NN accuracy for each ``k`` (one neighbour search for all of them).

    With ``track_ids``, neighbours from the query's own track are excluded (leave-same-track-out).
    """
    codes, classes = _encode(y)
    sims, idx = search(X, max(ks), bank_track_ids=track_ids, chunk=chunk)
    nb = np.where(idx >= 0, codes[np.clip(idx, 0, None)], -1)
    out = {}
    for k in ks:
        pred = vote(sims, nb, len(classes), k, temperature).argmax(axis=1)
        out[int(k)] = float(np.mean(pred == codes))
    return out


def knn_predict(X_train: np.ndarray, y_train: Sequence, X_query: np.ndarray, k: int,
                train_track_ids: Sequence | None = None, query_track_ids: Sequence | None = None,
                chunk: int = 4096, temperature: float = DEFAULT_TEMPERATURE) -> tuple[np.ndarray, np.ndarray]:
    """Weighted k-NN prediction of ``X_query`` from a labelled bank: ``(predicted labels [Q], scores [Q, C])``.

    Score columns follow the sorted unique training labels.
    """
    codes, classes = _encode(y_train)
    sims, idx = search(X_train, k, queries=X_query, bank_track_ids=train_track_ids,
                       query_track_ids=query_track_ids, chunk=chunk)
    nb = np.where(idx >= 0, codes[np.clip(idx, 0, None)], -1)
    scores = vote(sims, nb, len(classes), k, temperature)
    return classes[scores.argmax(axis=1)], scores
