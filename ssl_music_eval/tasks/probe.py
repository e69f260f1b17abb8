"""Probe task types (``multiclass``, ``multilabel``): linear / MLP probes, and k-NN for multi-class, on the track
embeddings of every feature set."""
from __future__ import annotations

from collections import Counter

import numpy as np

from ssl_music_eval.tasks.base import NON_METRIC_KEYS, EvalTask, TaskContext


def run(ctx: TaskContext, task) -> dict:
    """Linear / MLP probes (and k-NN for multiclass) on the track embeddings of every feature set."""
    cfg, items, feats = ctx.cfg, ctx.items, ctx.feats
    from ssl_music_eval.datasets import probe_items
    from ssl_music_eval.probes.linear_probe import run_probe

    idx, labels, splits, dropped = probe_items(items, task, cfg, multiclass=task.type == "multiclass")
    out: dict = {"type": task.type, "column": task.column, "n": len(idx), "probes": {}}
    if dropped:
        out["dropped_classes"] = dropped
    for kind in ("linear", "mlp"):
        if not cfg.probes[kind]:
            continue
        out["probes"][kind] = {}
        for name, X in feats.items():
            res = run_probe(X[idx], labels, splits, task.type, kind=kind, seeds=list(cfg.seeds),
                            n_boot=cfg.probes.bootstrap)
            out["probes"][kind][name] = {k: v for k, v in res.items() if k not in NON_METRIC_KEYS}
            if name == "model" and kind == "linear" and task.type == "multiclass" and res.get("confusion") is not None:
                out["confusion"] = {"classes": [str(c) for c in res["classes"]],
                                    "matrix": np.asarray(res["confusion"]).tolist()}
    if task.type == "multiclass":
        from ssl_music_eval.probes.knn import knn_accuracy

        tids = [items[i].track_id for i in idx]
        ks = [k for k in cfg.knn.ks if k < len(idx)]
        out["knn"] = {name: {str(k): v for k, v in knn_accuracy(X[idx], labels, ks=ks, track_ids=tids).items()}
                      for name, X in feats.items()}
        out["n_classes"] = len(set(labels))
    return out


def check_classes(cfg, spec, ds, task) -> None:
    """Every class of a multiclass column can be split into ``folds`` folds, unless the dataset brings its own
    splits or the suite drops rare classes (``rare_classes: drop``)."""
    from ssl_music.errors import ConfigError

    if any(getattr(it, "split", None) for it in ds.items) or cfg.rare_classes != "error":
        return
    counts = Counter(v for v in (it.labels.get(task.column) for it in ds.items) if v not in (None, ""))
    small = {c: n for c, n in counts.items() if n < cfg.folds}
    if small:
        raise ConfigError(f"invalid value for suite key 'folds': dataset '{spec.name}' task '{task.name}' has "
                          f"classes with fewer than folds={cfg.folds} items: {dict(sorted(small.items())[:8])}; "
                          f"lower folds, set rare_classes=drop or give the dataset a split column")


SPECS = (EvalTask("multiclass", run, "multiclass", where=True, attribute=True, check=check_classes),
         EvalTask("multilabel", run, "multilabel", where=True))
