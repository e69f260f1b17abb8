import numpy as np
import pytest
from sklearn.metrics import average_precision_score, balanced_accuracy_score, roc_auc_score

from evaluation.metrics import (accuracy, balanced_accuracy, bootstrap_ci, classification_metrics, pr_auc_macro,
                                roc_auc_macro, summarise)


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
