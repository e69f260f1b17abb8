"""Classification metrics for probes: accuracy, balanced accuracy, macro ROC-AUC and macro PR-AUC.

Scores are probabilities: ``[N, C]`` for multi-class (one-vs-rest for the AUCs) and ``[N, T]`` for
multi-label, with ``y_true`` an int array ``[N]`` or a 0/1 matrix ``[N, T]``. The AUCs are computed here
with vectorised ranks instead of looping over sklearn, because the bootstrap calls them a thousand times
per report; tests check they equal sklearn's. Classes / tags whose column is all-positive or all-negative
in ``y_true`` have no AUC and are left out of the macro mean (sklearn raises instead, which breaks on the
small folds of a 5-fold split).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from scipy.stats import rankdata

MULTICLASS = "multiclass"
MULTILABEL = "multilabel"


def _one_hot(y_true: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.zeros((len(y_true), n_classes), dtype=np.int8)
    out[np.arange(len(y_true)), y_true] = 1
    return out


def _as_binary(y_true: np.ndarray, y_score: np.ndarray) -> np.ndarray:
    y_true = np.asarray(y_true)
    if y_true.ndim == 1:
        return _one_hot(y_true.astype(np.int64), y_score.shape[1])
    return (y_true > 0).astype(np.int8)


def _scorable(Y: np.ndarray) -> np.ndarray:
    pos = Y.sum(axis=0)
    return (pos > 0) & (pos < Y.shape[0])


def accuracy(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Top-1 accuracy; ``y_score`` may be probabilities ``[N, C]`` or predicted labels ``[N]``."""
    y_score = np.asarray(y_score)
    pred = y_score.argmax(axis=1) if y_score.ndim == 2 else y_score
    return float(np.mean(pred == np.asarray(y_true)))


def balanced_accuracy(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Mean per-class recall over the classes present in ``y_true``."""
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score)
    pred = y_score.argmax(axis=1) if y_score.ndim == 2 else y_score
    recalls = [np.mean(pred[y_true == c] == c) for c in np.unique(y_true)]
    return float(np.mean(recalls))


def roc_auc_per_class(y_true: np.ndarray, y_score: np.ndarray) -> np.ndarray:
    """ROC-AUC per column (NaN where a column has one class only), via the Mann-Whitney rank statistic."""
    y_score = np.asarray(y_score, dtype=np.float64)
    Y = _as_binary(y_true, y_score)
    ranks = rankdata(y_score, axis=0)  # average ranks handle ties exactly like sklearn's trapezoids
    n_pos = Y.sum(axis=0).astype(np.float64)
    n_neg = Y.shape[0] - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((ranks * Y).sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    auc[~_scorable(Y)] = np.nan
    return auc


def _average_precision(y: np.ndarray, s: np.ndarray) -> float:
    # Step-wise AP as in sklearn: sum over distinct thresholds of (R_n - R_{n-1}) * P_n.
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_tie = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tp = np.cumsum(y)[last_of_tie]
    precision = tp / (last_of_tie + 1)
    recall_step = np.diff(np.r_[0, tp]) / tp[-1]
    return float(np.sum(recall_step * precision))


def pr_auc_per_class(y_true: np.ndarray, y_score: np.ndarray) -> np.ndarray:
    """Average precision per column (NaN where a column has one class only)."""
    y_score = np.asarray(y_score, dtype=np.float64)
    Y = _as_binary(y_true, y_score)
    ok = _scorable(Y)
    return np.array([_average_precision(Y[:, j], y_score[:, j]) if ok[j] else np.nan
                     for j in range(Y.shape[1])])


def roc_auc_macro(y_true: np.ndarray, y_score: np.ndarray) -> float:
    values = roc_auc_per_class(y_true, y_score)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def pr_auc_macro(y_true: np.ndarray, y_score: np.ndarray) -> float:
    values = pr_auc_per_class(y_true, y_score)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


METRICS: dict[str, dict[str, Callable[[np.ndarray, np.ndarray], float]]] = {
    MULTICLASS: {"accuracy": accuracy, "balanced_accuracy": balanced_accuracy,
                 "roc_auc": roc_auc_macro, "pr_auc": pr_auc_macro},
    MULTILABEL: {"roc_auc": roc_auc_macro, "pr_auc": pr_auc_macro},
}
PRIMARY: dict[str, str] = {MULTICLASS: "accuracy", MULTILABEL: "roc_auc"}


def classification_metrics(y_true: np.ndarray, y_score: np.ndarray, task: str) -> dict[str, float]:
    """Every metric of ``METRICS[task]`` on one set of predictions."""
    return {name: fn(y_true, y_score) for name, fn in METRICS[task].items()}


def bootstrap_ci(y_true: np.ndarray, y_score: np.ndarray, metric_fn: Callable[[np.ndarray, np.ndarray], float],
                 n: int = 1000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric_fn`` over items resampled with replacement.

    Resamples on which the metric is undefined (NaN, e.g. a single class drawn) are dropped.
    """
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        idx = rng.integers(0, len(y_true), len(y_true))
        v = metric_fn(y_true[idx], y_score[idx])
        if np.isfinite(v):
            values.append(v)
    if not values:
        return float("nan"), float("nan")
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def summarise(values: Sequence[float]) -> dict[str, float]:
    """Mean and (population) standard deviation, ignoring NaNs."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return {"mean": float("nan"), "std": float("nan")}
    return {"mean": float(arr.mean()), "std": float(arr.std())}
