import numpy as np
import pytest

from ssl_music_eval.datasets import make_splits
from ssl_music_eval.probes.linear_probe import carve_validation, linear_probe, mlp_probe, run_probe

FAST_MLP = {"max_epochs": 60, "patience": 5}
FAST_LINEAR = {"Cs": (0.01, 1.0)}  # two candidates keep the C selection path while halving the fits


def _separable(seed=0, n=240, d=16, c=4):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    X = np.eye(c, d)[y] * 4 + rng.standard_normal((n, d)) * 0.5
    return X, np.array([f"class{v}" for v in y])


def _multilabel(seed=0, n=300, d=16, t=5, informative=True):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = (X[:, :t] > 0.3).astype(int) if informative else (rng.random((n, t)) < 0.4).astype(int)
    return X, Y


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_multiclass_probe_separable_and_random(kind):
    X, y = _separable()
    splits = make_splits(y, n_folds=3, seed=0)
    kw = FAST_MLP if kind == "mlp" else FAST_LINEAR
    res = run_probe(X, y, splits, "multiclass", kind=kind, seeds=(0,), n_boot=100, **kw)
    assert res["accuracy"]["mean"] >= 0.98 and res["roc_auc"]["mean"] >= 0.99
    assert res["classes"] == ["class0", "class1", "class2", "class3"]
    assert np.trace(res["confusion"]) >= 0.98 * len(y) and np.sum(res["confusion"]) == len(y)
    Xr = np.random.default_rng(9).standard_normal(X.shape)
    rand = run_probe(Xr, y, splits, "multiclass", kind=kind, seeds=(0,), n_boot=100, **kw)
    # Chance is 0.25 accuracy / 0.5 AUC; at n=240 one binomial sigma of accuracy is ~0.028.
    assert rand["accuracy"]["mean"] == pytest.approx(0.25, abs=0.1)
    assert rand["roc_auc"]["mean"] == pytest.approx(0.5, abs=0.08)
    assert rand["accuracy"]["ci_low"] <= rand["accuracy"]["mean"] <= rand["accuracy"]["ci_high"]


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_multilabel_probe_informative_and_random(kind):
    X, Y = _multilabel()
    splits = make_splits(Y, n_folds=3, seed=0)
    kw = FAST_MLP if kind == "mlp" else FAST_LINEAR
    res = run_probe(X, Y, splits, "multilabel", kind=kind, seeds=(0,), n_boot=50, **kw)
    assert res["roc_auc"]["mean"] >= 0.95 and res["pr_auc"]["mean"] >= 0.9
    assert "confusion" not in res
    Xr, Yr = _multilabel(1, informative=False)
    rand = run_probe(Xr, Yr, splits, "multilabel", kind=kind, seeds=(0,), n_boot=50, **kw)
    assert rand["roc_auc"]["mean"] == pytest.approx(0.5, abs=0.07)


def test_tag_lists_are_encoded_and_seeds_reported():
    X, Y = _multilabel(2, n=150)
    tags = [[f"tag{j}" for j in np.flatnonzero(row)] for row in Y]
    splits = make_splits(tags, n_folds=3, seed=0)
    res = run_probe(X, tags, splits, "multilabel", seeds=(0, 1), n_boot=20, **FAST_LINEAR)
    assert res["classes"] == [f"tag{j}" for j in range(5)]
    assert [s["seed"] for s in res["per_seed"]] == [0, 1]
    assert len(res["per_seed"][0]["folds"]) == 3


def test_linear_probe_chooses_c_on_validation():
    X, y = _separable(3)
    y = np.unique(y, return_inverse=True)[1]
    res = linear_probe(X[:150], y[:150], X[150:190], y[150:190], X[190:], y[190:], Cs=(1e-6, 1.0))
    assert res["C"] == 1.0 and res["val_scores"][1e-6] <= res["val_scores"][1.0]
    assert res["proba"].shape == (50, 4)


def test_mlp_probe_is_deterministic_per_seed():
    X, y = _separable(4)
    y = np.unique(y, return_inverse=True)[1]
    args = (X[:150], y[:150], X[150:190], y[150:190], X[190:], y[190:])
    a, b = mlp_probe(*args, seed=1, **FAST_MLP), mlp_probe(*args, seed=1, **FAST_MLP)
    np.testing.assert_array_equal(a["proba"], b["proba"])


def test_validation_is_carved_from_training_only():
    y = np.repeat(np.arange(3), 20)
    train = np.arange(0, 60, 2)
    tr, va = carve_validation(train, y, "multiclass", seed=0, fraction=0.2)
    assert set(tr) | set(va) == set(train) and not set(tr) & set(va)
    assert len(set(y[va])) == 3


def _weak(seed=0, n=240, d=16, c=6, signal=0.6):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    X = np.eye(c, d)[y] * signal + rng.standard_normal((n, d))
    return X, np.array([f"k{v}" for v in y])


def _assert_intervals_contain_means(res, metrics):
    for m in metrics:
        r = res[m]
        assert np.isfinite([r["ci_low"], r["ci_high"]]).all(), m
        assert r["ci_low"] <= r["mean"] <= r["ci_high"], (m, r)
        per_fold = [f["metrics"][m] for s in res["per_seed"] for f in s["folds"]]
        assert r["mean"] == pytest.approx(np.mean(per_fold), abs=1e-12)  # the interval is of the reported mean


def test_every_interval_contains_its_mean_when_fold_models_are_calibrated_differently(monkeypatch):
    """Fold models that rank their own test items well but on different score scales (as separately fitted
    probes do), and seeds of different quality: the reported mean is over seeds x folds, so its interval must
    be too (a bootstrap of one seed's pooled out-of-fold scores ranks across folds and misses it)."""
    import ssl_music_eval.probes.linear_probe as lp
    from ssl_music_eval.metrics import classification_metrics

    calls = []

    def calibrated_per_fold(X_tr, y_tr, X_va, y_va, X_te, y_te, task="multiclass", seed=0):
        rng = np.random.default_rng(100 * seed + len(calls))
        noise = 1.0 if seed == 0 else 0.3  # seed 0 is the worst seed
        proba = np.eye(4)[y_te] + noise * rng.random((len(y_te), 4)) + 3.0 * (len(calls) % 3)
        calls.append(seed)
        return {"metrics": classification_metrics(y_te, proba, task), "proba": proba}

    monkeypatch.setitem(lp.PROBES, "calibrated_per_fold", calibrated_per_fold)
    X, y = _separable(5)
    res = run_probe(X, y, make_splits(y, n_folds=3, seed=0), "multiclass", kind="calibrated_per_fold",
                    seeds=(0, 1, 2), n_boot=200)
    _assert_intervals_contain_means(res, ("accuracy", "balanced_accuracy", "roc_auc", "pr_auc"))
    assert "bootstrap" in res["protocol"]["interval"] and "seeds × folds" in res["protocol"]["interval"]


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_linear_probe_intervals_contain_their_means_over_seeds_and_folds(task):
    if task == "multiclass":
        X, y = _weak(1)
        metrics = ("accuracy", "balanced_accuracy", "roc_auc", "pr_auc")
    else:
        X, y = _multilabel(3, n=180, informative=True)
        X = X + np.random.default_rng(3).standard_normal(X.shape) * 2.0  # a weak probe: AUCs well below 1
        metrics = ("roc_auc", "pr_auc")
    res = run_probe(X, y, make_splits(y, n_folds=3, seed=0), task, seeds=(0, 1, 2), n_boot=200, **FAST_LINEAR)
    _assert_intervals_contain_means(res, metrics)
