"""Probes on frozen embeddings: a linear probe (logistic regression) and the MLP-512 of MULE / MARBLE.

Both standardise features with statistics of the training split only, pick their hyper-parameter on the
validation split by the task's primary metric (accuracy / macro ROC-AUC, see ``metrics.PRIMARY``), and
report every metric on the test split. ``run_probe`` repeats a probe over splits and seeds and
summarises with ``metrics.cv_summary``: mean and std over all (seed, fold) runs, and a bootstrap interval
of that same mean (test items resampled within each fold, scored by every seed's fitted probe).

Labels: ``y`` is an int array ``[N]`` (multi-class) or a 0/1 matrix ``[N, T]`` (multi-label); ``run_probe``
also takes raw strings / tag lists and encodes them with ``datasets.encode_labels``.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import StandardScaler

from ssl_music_eval.datasets import encode_labels
from ssl_music_eval.metrics import METRICS, PRIMARY, ci_method, classification_metrics, cv_summary, summarise

DEFAULT_CS = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
SMALL_MLP_ITEMS = 5000


def _standardise(X_tr, X_va, X_te):
    scaler = StandardScaler().fit(X_tr)
    return [scaler.transform(np.asarray(X, dtype=np.float64)).astype(np.float32) for X in (X_tr, X_va, X_te)]


def _n_outputs(task: str, *ys: np.ndarray) -> int:
    return ys[0].shape[1] if task == "multilabel" else int(max(int(np.max(y)) for y in ys)) + 1


def _proba(clf, X: np.ndarray, task: str, n_out: int) -> np.ndarray:
    p = clf.predict_proba(X)
    if task == "multilabel":
        return p
    # A class absent from the training fold gets probability 0 instead of shifting the columns.
    full = np.zeros((len(X), n_out), dtype=np.float64)
    full[:, clf.classes_] = p
    return full


def _log_loss(y: np.ndarray, proba: np.ndarray, task: str) -> float:
    p = np.clip(proba, 1e-7, 1 - 1e-7)
    if task == "multilabel":
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))


def _selection_key(y_va: np.ndarray, proba: np.ndarray, task: str) -> tuple[float, float]:
    """Validation ranking: the primary metric, ties (common: accuracy saturates at 1.0) broken by log-loss."""
    return METRICS[task][PRIMARY[task]](y_va, proba), -_log_loss(y_va, proba, task)


def linear_probe(X_tr, y_tr, X_va, y_va, X_te, y_te, task: str = "multiclass", seed: int = 0,
                 Cs: Sequence[float] = DEFAULT_CS, max_iter: int = 1000) -> dict:
    """Logistic regression (multinomial, or one per tag) with C chosen on validation (primary metric, then
    log-loss on ties).

    Returns ``{"metrics": {...on test}, "C": chosen C, "val_scores": {C: primary metric}, "proba": [N_te, C]}``.
    """
    X_tr, X_va, X_te = _standardise(X_tr, X_va, X_te)
    n_out = _n_outputs(task, y_tr, y_va, y_te)
    best, val_scores = None, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)  # OneVsRest: a tag constant on the training fold
        for C in Cs:
            base = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
            clf = OneVsRestClassifier(base) if task == "multilabel" else base
            clf.fit(X_tr, y_tr)
            score = _selection_key(y_va, _proba(clf, X_va, task, n_out), task)
            val_scores[float(C)] = float(score[0])
            if best is None or score > best[0]:
                best = (score, float(C), clf)
    _, C, clf = best
    proba = _proba(clf, X_te, task, n_out)
    return {"metrics": classification_metrics(y_te, proba, task), "C": C, "val_scores": val_scores,
            "proba": proba}


def mlp_probe(X_tr, y_tr, X_va, y_va, X_te, y_te, task: str = "multiclass", seed: int = 0, hidden: int = 512,
              dropout: float = 0.25, lr: float = 1e-3, weight_decay: float = 1e-4, batch_size: int = 64,
              max_epochs: int = 200, patience: int = 10) -> dict:
    """One hidden layer (``hidden``, ReLU, dropout), Adam, cross-entropy or per-tag BCE; the epoch with the
    best validation primary metric (ties: lowest log-loss) is kept; training stops ``patience`` epochs after it.

    Returns ``{"metrics": {...on test}, "epoch": best epoch, "val_score": float, "proba": [N_te, C]}``.
    """
    X_tr, X_va, X_te = (torch.from_numpy(a) for a in _standardise(X_tr, X_va, X_te))
    n_out = _n_outputs(task, y_tr, y_va, y_te)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(X_tr.shape[1], hidden), torch.nn.ReLU(), torch.nn.Dropout(dropout),
                              torch.nn.Linear(hidden, n_out))
    if task == "multilabel":
        target = torch.from_numpy(np.asarray(y_tr, dtype=np.float32))
        loss_fn, to_proba = torch.nn.BCEWithLogitsLoss(), torch.sigmoid
    else:
        target = torch.from_numpy(np.asarray(y_tr, dtype=np.int64))
        loss_fn, to_proba = torch.nn.CrossEntropyLoss(), (lambda z: torch.softmax(z, dim=1))
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)

    def predict(X: torch.Tensor) -> np.ndarray:
        net.eval()
        with torch.no_grad():
            return to_proba(net(X)).double().numpy()

    threads = torch.get_num_threads()
    if len(X_tr) < SMALL_MLP_ITEMS:
        # Tiny batches are dominated by thread hand-off; one thread is several times faster (and
        # robust to other processes on the same cores).
        torch.set_num_threads(1)
    try:
        best_state = _train_mlp(net, opt, loss_fn, X_tr, target, gen, batch_size, max_epochs, patience,
                                lambda: _selection_key(y_va, predict(X_va), task))
    finally:
        torch.set_num_threads(threads)
    net.load_state_dict(best_state["state"])
    proba = predict(X_te)
    return {"metrics": classification_metrics(y_te, proba, task), "epoch": best_state["epoch"],
            "val_score": float(best_state["score"][0]), "proba": proba}


def _train_mlp(net, opt, loss_fn, X_tr, target, gen, batch_size, max_epochs, patience, validate) -> dict:
    best = {"score": (-np.inf, -np.inf), "epoch": 0, "state": None}
    for epoch in range(max_epochs):
        net.train()
        for b in torch.randperm(len(X_tr), generator=gen).split(batch_size):
            opt.zero_grad()
            loss_fn(net(X_tr[b]), target[b]).backward()
            opt.step()
        score = validate()
        if best["state"] is None or score > best["score"]:  # NaN (undefined metric) never wins later
            best = {"score": score, "epoch": epoch, "state": {k: v.clone() for k, v in net.state_dict().items()}}
        elif epoch - best["epoch"] >= patience:
            break
    return best


PROBES = {"linear": linear_probe, "mlp": mlp_probe}


def carve_validation(train_idx: np.ndarray, y: np.ndarray, task: str, seed: int,
                     fraction: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Split training indices into (train, val), stratified for multi-class when every class allows it."""
    stratify = y[train_idx] if task == "multiclass" else None
    try:
        tr, va = train_test_split(train_idx, test_size=fraction, random_state=seed, stratify=stratify)
    except ValueError:  # a class with a single training example cannot be stratified
        tr, va = train_test_split(train_idx, test_size=fraction, random_state=seed)
    return np.sort(tr), np.sort(va)


def run_probe(X: np.ndarray, y, splits: list[dict], task: str, kind: str = "linear",
              seeds: Sequence[int] = (0, 1, 2), n_boot: int = 1000, val_fraction: float = 0.15,
              X_test: np.ndarray | None = None, **probe_kwargs) -> dict:
    """Run ``PROBES[kind]`` on every split for every seed and summarise. ``X_test`` (rows as ``X``) replaces
    the test items' features only: probes fitted on clean features, scored on degraded ones.

    Returns ``{metric: {mean, std, ci_low, ci_high}, "per_seed": [{seed, metrics, folds}], "classes": [...],
    "confusion": [[...]] (multi-class; rows true, columns predicted, first seed, all test folds),
    "protocol": {...}}``.
    """
    if kind not in PROBES:
        raise ValueError(f"unknown probe kind '{kind}' (choose from {', '.join(PROBES)})")
    X = np.asarray(X, dtype=np.float32)
    Xt = X if X_test is None else np.asarray(X_test, dtype=np.float32)
    y_enc, classes = encode_labels(y, task)
    per_seed, fold_scores, pooled = [], [], None
    for seed in seeds:
        folds, idx_all, proba_all = [], [], []
        for split in splits:
            tr, va = (split["train"], split["val"]) if split.get("val") is not None else \
                carve_validation(split["train"], y_enc, task, seed, val_fraction)
            te = split["test"]
            res = PROBES[kind](X[tr], y_enc[tr], X[va], y_enc[va], Xt[te], y_enc[te], task=task, seed=seed,
                               **probe_kwargs)
            proba = res.pop("proba")
            if task == "multiclass" and proba.shape[1] < len(classes):
                proba = np.pad(proba, ((0, 0), (0, len(classes) - proba.shape[1])))
            folds.append(res)
            idx_all.append(te)
            proba_all.append(proba)
        seed_metrics = {m: summarise([f["metrics"][m] for f in folds])["mean"] for m in METRICS[task]}
        per_seed.append({"seed": int(seed), "metrics": seed_metrics, "folds": folds})
        fold_scores.append(proba_all)
        if pooled is None:
            pooled = (np.concatenate(idx_all), np.concatenate(proba_all))
    # Estimate and interval of the same statistic: the mean over seeds x folds of each fold's test metric.
    out: dict = cv_summary(y_enc, [split["test"] for split in splits], fold_scores, task, n_boot=n_boot,
                           seed=int(seeds[0]))
    idx, proba = pooled
    out["per_seed"] = per_seed
    out["classes"] = list(classes)
    if task == "multiclass":
        conf = np.zeros((len(classes), len(classes)), dtype=np.int64)
        np.add.at(conf, (y_enc[idx], proba.argmax(axis=1)), 1)
        out["confusion"] = conf.tolist()
    out["protocol"] = {"kind": kind, "task": task, "seeds": [int(s) for s in seeds], "n_splits": len(splits),
                       "n_boot": n_boot, "val": "fixed" if splits[0].get("val") is not None
                       else f"{val_fraction:.0%} of train, per seed", "interval": ci_method(n_boot),
                       **{k: v for k, v in probe_kwargs.items()}}
    return out
