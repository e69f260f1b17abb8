import numpy as np
import pytest
from sklearn.metrics import average_precision_score, balanced_accuracy_score, roc_auc_score

from ssl_music_eval.metrics import (BATCHED, METRICS, accuracy, balanced_accuracy, bootstrap_ci, classification_metrics,
                                cv_summary, pr_auc_macro, roc_auc_macro, se_interval, summarise)


def _multilabel(seed=0, n=200, t=7):
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, t)) < 0.3).astype(int)
    S = np.round(Y * 0.4 + rng.random((n, t)), 2)  # rounding creates ties, which must be handled like sklearn
    return Y, S


def test_multilabel_metrics_equal_sklearn():
    Y, S = _multilabel()
    assert roc_auc_macro(Y, S) == pytest.approx(roc_auc_score(Y, S, average="macro"), abs=1e-12)
    assert pr_auc_macro(Y, S) == pytest.approx(average_precision_score(Y, S, average="macro"), abs=1e-12)


def test_multiclass_metrics_equal_sklearn_one_vs_rest():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 300)
    P = rng.random((300, 4)) + np.eye(4)[y] * 0.5
    P /= P.sum(axis=1, keepdims=True)
    onehot = np.eye(4)[y]
    assert roc_auc_macro(y, P) == pytest.approx(roc_auc_score(y, P, multi_class="ovr", average="macro"), abs=1e-12)
    assert pr_auc_macro(y, P) == pytest.approx(average_precision_score(onehot, P, average="macro"), abs=1e-12)
    assert accuracy(y, P) == pytest.approx(np.mean(P.argmax(1) == y))
    assert balanced_accuracy(y, P) == pytest.approx(balanced_accuracy_score(y, P.argmax(1)))
    assert set(classification_metrics(y, P, "multiclass")) == {"accuracy", "balanced_accuracy", "roc_auc", "pr_auc"}


def test_single_class_columns_are_left_out_of_the_macro_mean():
    Y, S = _multilabel(2)
    Y[:, 0] = 1  # no negatives: AUC undefined for this tag
    expected = roc_auc_score(Y[:, 1:], S[:, 1:], average="macro")
    assert roc_auc_macro(Y, S) == pytest.approx(expected, abs=1e-12)


def test_bootstrap_ci_brackets_the_estimate_and_narrows_with_more_data():
    Y, S = _multilabel(3, n=100)
    lo, hi = bootstrap_ci(Y, S, roc_auc_macro, n=200, seed=0)
    assert lo < roc_auc_macro(Y, S) < hi
    Y2, S2 = _multilabel(3, n=1600)
    lo2, hi2 = bootstrap_ci(Y2, S2, roc_auc_macro, n=200, seed=0)
    assert hi2 - lo2 < (hi - lo) / 2
    assert bootstrap_ci(Y, S, roc_auc_macro, n=50, seed=5) == bootstrap_ci(Y, S, roc_auc_macro, n=50, seed=5)


def test_summarise():
    assert summarise([1.0, 3.0, float("nan")]) == {"mean": 2.0, "std": 1.0}


# ------------------------------------------------------------------------ cross-validated score + interval
def _multiclass(seed=0, n=120, c=5, signal=0.6):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    P = np.round(rng.random((n, c)) + signal * np.eye(c)[y], 1)  # rounding: ties
    return y, P


def test_batched_metrics_equal_the_scalar_ones_on_every_resample():
    rng = np.random.default_rng(4)
    y, P = _multiclass(4, n=60, c=6)
    y[y == 5] = 4  # class 5 absent: unscorable column, left out of the macro means
    Y, S = _multilabel(5, n=60, t=6)
    Y[:, 2] = 0
    for task, yt, sc in (("multiclass", y, P), ("multilabel", Y, S)):
        idx = rng.integers(0, len(yt), (40, len(yt)))
        Yb = np.eye(sc.shape[1], dtype=np.int8)[yt] if task == "multiclass" else (yt > 0).astype(np.int8)
        assert set(BATCHED[task]) == set(METRICS[task])
        for name, fn in BATCHED[task].items():
            got = fn(Yb[idx], sc[idx])
            want = [METRICS[task][name](yt[i], sc[i]) for i in idx]
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, err_msg=f"{task} {name}")


def _fold_runs(y, P, n_folds=3, offsets=(0.0,), seed=0):
    """Folds of y / P and per-run scores; run r adds offsets[r] * fold index to its scores, the way
    separately fitted fold models differ in calibration (harmless within a fold, not across folds)."""
    folds = np.array_split(np.random.default_rng(seed).permutation(len(y)), n_folds)
    scores = [[P[f] + off * k for k, f in enumerate(folds)] for off in offsets]
    return folds, scores


def test_cv_summary_estimate_is_the_mean_over_runs_and_folds_and_its_interval_contains_it():
    y, P = _multiclass(0)
    folds, scores = _fold_runs(y, P, offsets=(0.0, 5.0, -3.0))
    res = cv_summary(y, folds, scores, "multiclass", n_boot=200, seed=0)
    for name, fn in METRICS["multiclass"].items():
        per_fold = [fn(y[f], s) for run in scores for f, s in zip(folds, run)]
        assert res[name]["mean"] == pytest.approx(summarise(per_fold)["mean"], abs=1e-12)
        assert res[name]["std"] == pytest.approx(summarise(per_fold)["std"], abs=1e-12)
        assert res[name]["ci_low"] <= res[name]["mean"] <= res[name]["ci_high"], name
        assert res[name]["ci_high"] - res[name]["ci_low"] > 0
    # The statistic the old code bootstrapped instead: one run's pooled out-of-fold predictions. With fold
    # models calibrated differently, its macro ROC-AUC lies far below the per-fold mean the report prints.
    pooled_auc = roc_auc_macro(y[np.concatenate(folds)], np.concatenate(scores[1]))
    assert pooled_auc < res["roc_auc"]["ci_low"]
    assert cv_summary(y, folds, scores, "multiclass", n_boot=50, seed=3) == \
        cv_summary(y, folds, scores, "multiclass", n_boot=50, seed=3)


def test_cv_summary_interval_narrows_with_more_test_items_and_handles_multilabel():
    Y, S = _multilabel(6, n=120)
    folds, scores = _fold_runs(Y, S, offsets=(0.0, 2.0))
    small = cv_summary(Y, folds, scores, "multilabel", n_boot=200)
    Y2, S2 = _multilabel(6, n=1920)
    folds2, scores2 = _fold_runs(Y2, S2, offsets=(0.0, 2.0))
    large = cv_summary(Y2, folds2, scores2, "multilabel", n_boot=200)
    for name in ("roc_auc", "pr_auc"):
        for r in (small, large):
            assert r[name]["ci_low"] <= r[name]["mean"] <= r[name]["ci_high"]
        assert large[name]["ci_high"] - large[name]["ci_low"] < (small[name]["ci_high"] - small[name]["ci_low"]) / 2


def test_cv_summary_small_folds_every_interval_brackets_its_estimate():
    """Small folds, few positives per class: resampled average precision sits well above the estimate
    (a duplicated positive lifts its own precision), which pushes percentile bounds past the estimate."""
    for seed in range(6):
        y, P = _multiclass(seed, n=48, c=6, signal=0.2)
        folds, scores = _fold_runs(y, P, n_folds=4, offsets=(0.0, 1.0, 2.0), seed=seed)
        res = cv_summary(y, folds, scores, "multiclass", n_boot=300, seed=seed)
        for name, r in res.items():
            assert r["ci_low"] <= r["mean"] <= r["ci_high"], (seed, name, r)


def test_cv_summary_degenerate_and_empty_cases():
    y = np.array([0, 1] * 10)
    P = np.eye(2)[y].astype(float)
    folds, scores = _fold_runs(y, P, n_folds=2)
    res = cv_summary(y, folds, scores, "multiclass", n_boot=50)
    assert res["accuracy"] == {"mean": 1.0, "std": 0.0, "ci_low": 1.0, "ci_high": 1.0}
    none = cv_summary(y, folds, scores, "multiclass", n_boot=0)
    assert none["accuracy"]["mean"] == 1.0 and np.isnan(none["accuracy"]["ci_low"])
    with pytest.raises(ValueError):
        cv_summary(y, folds, [scores[0][:1]], "multiclass")


def test_se_interval_contains_the_estimate_and_stays_in_range():
    values = np.r_[np.full(90, 0.9), np.full(10, 1.0)]
    lo, hi = se_interval(values, 0.97)
    assert lo <= 0.97 <= hi == 1.0
    lo, hi = se_interval(np.array([0.30, 0.35, 0.40, np.nan]), 0.2)  # estimate below every resample
    assert lo < 0.2 < hi and hi - 0.2 == pytest.approx(0.2 - lo)
    assert all(np.isnan(se_interval(np.array([0.5]), 0.5)))
