"""Classification metrics for probes: accuracy, balanced accuracy, macro ROC-AUC and macro PR-AUC.

Scores are probabilities: ``[N, C]`` for multi-class (one-vs-rest for the AUCs) and ``[N, T]`` for
multi-label, with ``y_true`` an int array ``[N]`` or a 0/1 matrix ``[N, T]``. The AUCs are computed here
with vectorised ranks instead of looping over sklearn, because the bootstrap calls them a thousand times
per report; tests check they equal sklearn's. Classes / tags whose column is all-positive or all-negative
in ``y_true`` have no AUC and are left out of the macro mean (sklearn raises instead, which breaks on the
small folds of a 5-fold split).

:func:`cv_summary` is the one place where a cross-validated score and its interval are computed: the
estimate is the mean over runs (seeds) × folds of each fold's test metric, and the interval is a
bootstrap of that same mean (test items resampled within each fold), so the interval is of the number
the report prints. The batched forms in ``BATCHED`` score many resamples at once for it.
"""
from __future__ import annotations

from statistics import NormalDist
from typing import Callable, Sequence

import numpy as np
from scipy.stats import rankdata

MULTICLASS = "multiclass"
MULTILABEL = "multilabel"


def _one_hot(y_true: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.zeros((len(y_true), n_classes), dtype=np.int8)
    out[np.arange(len(y_true)), y_true] = 1
    return out


def _as_binary(y_true: np.ndarray, n_cols: int) -> np.ndarray:
    """Int labels [N] -> one-hot [N, n_cols]; a 0/1 matrix [N, T] -> int8."""
    y_true = np.asarray(y_true)
    if y_true.ndim == 1:
        return _one_hot(y_true.astype(np.int64), n_cols)
    return (y_true > 0).astype(np.int8)


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


# Column-wise cores on binary labels ``Y`` and scores ``S`` shaped ``[..., n, C]`` (items on axis -2, any
# leading batch axes, e.g. bootstrap resamples); they return ``[..., C]`` with NaN for unscorable columns.
def _roc_auc_cols(Y: np.ndarray, S: np.ndarray) -> np.ndarray:
    ranks = rankdata(S, axis=-2)  # average ranks handle ties exactly like sklearn's trapezoids
    n_pos = Y.sum(axis=-2, dtype=np.float64)
    n_neg = Y.shape[-2] - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((ranks * Y).sum(axis=-2) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def _average_precision_cols(Y: np.ndarray, S: np.ndarray) -> np.ndarray:
    # Step-wise AP as in sklearn: sum over distinct thresholds of (R_n - R_{n-1}) * P_n.
    order = np.argsort(-S, axis=-2, kind="stable")
    s = np.take_along_axis(S, order, axis=-2)
    tp = np.cumsum(np.take_along_axis(Y, order, axis=-2), axis=-2, dtype=np.float64)
    last_of_tie = np.ones(s.shape, dtype=bool)
    last_of_tie[..., :-1, :] = s[..., :-1, :] != s[..., 1:, :]
    # true positives at the previous threshold: tp is non-decreasing, so a running max over threshold ends
    at_ends = np.maximum.accumulate(np.where(last_of_tie, tp, 0.0), axis=-2)
    prev = np.concatenate([np.zeros_like(at_ends[..., :1, :]), at_ends[..., :-1, :]], axis=-2)
    rank = np.arange(1, S.shape[-2] + 1, dtype=np.float64)[:, None]
    n_pos = tp[..., -1, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = np.where(last_of_tie, (tp - prev) * tp / rank, 0.0).sum(axis=-2) / n_pos
    return np.where((n_pos > 0) & (n_pos < S.shape[-2]), ap, np.nan)


def _nanmean_last(values: np.ndarray) -> np.ndarray:
    ok = np.isfinite(values)
    count = ok.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.where(ok, values, 0.0).sum(axis=-1) / count, np.nan)


def roc_auc_per_class(y_true: np.ndarray, y_score: np.ndarray) -> np.ndarray:
    """ROC-AUC per column (NaN where a column has one class only), via the Mann-Whitney rank statistic."""
    y_score = np.asarray(y_score, dtype=np.float64)
    return _roc_auc_cols(_as_binary(y_true, y_score.shape[1]), y_score)


def pr_auc_per_class(y_true: np.ndarray, y_score: np.ndarray) -> np.ndarray:
    """Average precision per column (NaN where a column has one class only)."""
    y_score = np.asarray(y_score, dtype=np.float64)
    return _average_precision_cols(_as_binary(y_true, y_score.shape[1]), y_score)


def roc_auc_macro(y_true: np.ndarray, y_score: np.ndarray) -> float:
    return float(_nanmean_last(roc_auc_per_class(y_true, y_score)))


def pr_auc_macro(y_true: np.ndarray, y_score: np.ndarray) -> float:
    return float(_nanmean_last(pr_auc_per_class(y_true, y_score)))


METRICS: dict[str, dict[str, Callable[[np.ndarray, np.ndarray], float]]] = {
    MULTICLASS: {"accuracy": accuracy, "balanced_accuracy": balanced_accuracy,
                 "roc_auc": roc_auc_macro, "pr_auc": pr_auc_macro},
    MULTILABEL: {"roc_auc": roc_auc_macro, "pr_auc": pr_auc_macro},
}
PRIMARY: dict[str, str] = {MULTICLASS: "accuracy", MULTILABEL: "roc_auc"}


# Batched forms of METRICS on binary labels ``Y [..., n, C]`` (one-hot for multi-class) and scores
# ``S [..., n, C]`` -> ``[...]``: one call scores a whole block of bootstrap resamples.
def _accuracy_b(Y: np.ndarray, S: np.ndarray) -> np.ndarray:
    pred = S.argmax(axis=-1)[..., None]
    return np.take_along_axis(Y, pred, axis=-1)[..., 0].mean(axis=-1)


def _balanced_accuracy_b(Y: np.ndarray, S: np.ndarray) -> np.ndarray:
    pred = S.argmax(axis=-1)[..., None]
    hits = (np.take_along_axis(Y, pred, axis=-1) * (np.arange(S.shape[-1]) == pred)).sum(axis=-2)
    support = Y.sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _nanmean_last(np.where(support > 0, hits / support, np.nan))  # classes present in y_true


def _roc_auc_b(Y: np.ndarray, S: np.ndarray) -> np.ndarray:
    return _nanmean_last(_roc_auc_cols(Y, S))


def _pr_auc_b(Y: np.ndarray, S: np.ndarray) -> np.ndarray:
    return _nanmean_last(_average_precision_cols(Y, S))


BATCHED: dict[str, dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]] = {
    MULTICLASS: {"accuracy": _accuracy_b, "balanced_accuracy": _balanced_accuracy_b,
                 "roc_auc": _roc_auc_b, "pr_auc": _pr_auc_b},
    MULTILABEL: {"roc_auc": _roc_auc_b, "pr_auc": _pr_auc_b},
}


def classification_metrics(y_true: np.ndarray, y_score: np.ndarray, task: str) -> dict[str, float]:
    """Every metric of ``METRICS[task]`` on one set of predictions."""
    return {name: fn(y_true, y_score) for name, fn in METRICS[task].items()}


def bootstrap_ci(y_true: np.ndarray, y_score: np.ndarray, metric_fn: Callable[[np.ndarray, np.ndarray], float],
                 n: int = 1000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric_fn`` over items of one set of predictions resampled with
    replacement. Probe results use :func:`cv_summary` instead (the interval of the mean over seeds × folds).

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


CI_LEVEL = 0.95


def ci_method(n_boot: int) -> str:
    """How :func:`cv_summary` intervals are computed, in words, for a report's protocol section."""
    z = NormalDist().inv_cdf(0.5 + CI_LEVEL / 2)
    return (f"{100 * CI_LEVEL:.0f} % CI = the reported mean ± {z:.2f} × its bootstrap standard error, clipped to "
            f"[0, 1]: {n_boot} resamples of the test items, drawn with replacement within each test fold (the same "
            f"draw for every seed), each scored with the already fitted probes and averaged over seeds × folds "
            f"exactly like the mean. It reflects test-set sampling, not refitting.")


def cv_summary(y_true: np.ndarray, test_folds: Sequence[np.ndarray], scores: Sequence[Sequence[np.ndarray]],
               task: str, n_boot: int = 1000, seed: int = 0, alpha: float = 1 - CI_LEVEL,
               max_block: int = 1 << 22) -> dict[str, dict[str, float]]:
    """Cross-validated estimate, spread and interval of every metric of ``METRICS[task]``.

    ``test_folds[f]`` indexes the test items of fold ``f`` in ``y_true``; ``scores[r][f]`` are the
    predictions ``[len(test_folds[f]), C]`` of run ``r`` (a seed) on them. Per metric:

    * ``mean``: mean over runs × folds of the metric on each fold's test items (folds where it is
      undefined left out), i.e. ``summarise`` of the per-fold metrics;
    * ``std``: population standard deviation of those per-fold values;
    * ``ci_low`` / ``ci_high``: bootstrap interval (estimate ± z × bootstrap SE, :func:`se_interval`) of that
      same mean. Each resample draws every fold's test items with replacement (one draw per fold, shared by
      all runs, which score the same items), scores every (run, fold) on its draw and averages exactly as
      the estimate does. Resamples on which the mean is undefined are dropped; ``n_boot=0`` gives NaN bounds.

    ``max_block`` caps the elements of one batched scoring call (memory).
    """
    folds = [np.asarray(f, dtype=np.int64) for f in test_folds]
    if not folds or not scores or any(len(run) != len(folds) for run in scores):
        raise ValueError("cv_summary: need scores[run][fold] for every run and each of the test folds")
    width = np.asarray(scores[0][0]).shape[1]
    Y = _as_binary(y_true, width)
    S = [[np.asarray(run[f], dtype=np.float64) for f in range(len(folds))] for run in scores]
    fns = BATCHED[task]
    point = {name: np.array([[fn(Y[fold], S[r][f]) for f, fold in enumerate(folds)] for r in range(len(S))],
                            dtype=np.float64) for name, fn in fns.items()}
    boot = {name: np.full((len(S), len(folds), max(0, n_boot)), np.nan) for name in fns}
    rng = np.random.default_rng(seed)
    for f, fold in enumerate(folds):
        if len(fold) == 0:
            continue
        draws = rng.integers(0, len(fold), (max(0, n_boot), len(fold)))
        step = max(1, max_block // (len(fold) * width))
        Yf = Y[fold]
        for start in range(0, max(0, n_boot), step):
            idx = draws[start:start + step]
            Yb = Yf[idx]
            for r in range(len(S)):
                Sb = S[r][f][idx]
                for name, fn in fns.items():
                    boot[name][r, f, start:start + step] = fn(Yb, Sb)
    out = {}
    for name in fns:
        stats = summarise(point[name].ravel())
        values = _nanmean_last(boot[name].reshape(len(S) * len(folds), -1).T)  # [n_boot]
        low, high = se_interval(values, stats["mean"], alpha)
        out[name] = {**stats, "ci_low": low, "ci_high": high}
    return out


def se_interval(values: np.ndarray, estimate: float, alpha: float = 1 - CI_LEVEL,
                bounds: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float]:
    """``estimate ± z(1 - alpha/2) × SE``, SE the standard deviation of its bootstrap ``values``, clipped to
    the metric's ``bounds``: the normal ("standard") bootstrap interval, which always contains the estimate.

    Percentile bounds were not used because they follow the centre of the resampled distribution, which for
    some metrics is not the estimate: average precision on small folds is lifted by the duplicated positives
    of a resample (a duplicate raises its own precision), enough to push the estimate below the 2.5 %
    quantile. NaN values are dropped; fewer than two left (or a NaN estimate) gives NaN bounds.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 2 or not np.isfinite(estimate):
        return float("nan"), float("nan")
    half = NormalDist().inv_cdf(1 - alpha / 2) * float(values.std(ddof=1))
    return float(max(bounds[0], estimate - half)), float(min(bounds[1], estimate + half))


def summarise(values: Sequence[float]) -> dict[str, float]:
    """Mean and (population) standard deviation, ignoring NaNs."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return {"mean": float("nan"), "std": float("nan")}
    return {"mean": float(arr.mean()), "std": float(arr.std())}


def mean_ci(values: np.ndarray, draws: np.ndarray, bounds: tuple[float, float] = (0.0, 1.0)) -> dict[str, float]:
    """Mean over items, population std, and the 95 % interval of that mean: ± 1.96 × the bootstrap SE over
    ``draws`` ([n_boot, n] item indices drawn with replacement; none -> NaN bounds)."""
    values = np.asarray(values, dtype=np.float64)
    stats = summarise(values)
    boot = values[draws].mean(axis=1) if draws.size else np.zeros(0)
    low, high = se_interval(boot, stats["mean"], 1 - CI_LEVEL, bounds)
    return {**stats, "ci_low": low, "ci_high": high}
