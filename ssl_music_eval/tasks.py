"""Evaluation tasks: what a suite's ``tasks[].type`` names, found through the :data:`TASKS` registry (as
objectives are through ``OBJECTIVES``). Each entry says how a csv dataset reads its column, which suite
features apply to it (a ``where`` filter, locality, BPM tolerance, track embeddings) and how it runs on
one dataset: ``runner.evaluate_dataset`` calls ``TASKS[task.type].run(ctx, task)`` for every task, and the
suite's checks read the same entries. A new task type is one function and one entry here, or a
:func:`register` call from outside.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

NON_METRIC_KEYS = ("per_seed", "confusion", "classes", "protocol")


@dataclass
class TaskContext:
    """One dataset as its tasks see it: the items every feature set embedded, their features, the models."""
    cfg: Any
    spec: Any
    items: list
    feats: dict[str, np.ndarray]
    model: Any
    random_model: Any
    cache: Path | None
    progress: bool
    skipped: list = field(default_factory=list)   # [path, reason]; a task that reads audio itself adds to it
    memo: dict = field(default_factory=dict)       # work tasks of one dataset share (robustness: degraded copies)


@dataclass(frozen=True)
class EvalTask:
    name: str
    run: Callable[[TaskContext, Any], dict]
    column: str                # how a csv dataset reads the task's column (datasets.TASK_KINDS)
    where: bool = False        # takes a ``where: COLUMN=VALUE`` filter
    embeddings: bool = True    # needs track embeddings (segmentation scores frames of its own)
    attribute: bool = False    # its column is a default locality attribute and labels the projection
    bpm: bool = False          # its column holds tempi: locality matches them within locality.tolerance


def _probe(ctx: TaskContext, task) -> dict:
    """Linear / MLP probes (and k-NN for multiclass) on the track embeddings of every feature set."""
    cfg, items, feats = ctx.cfg, ctx.items, ctx.feats
    from ssl_music_eval.datasets import probe_items
    from ssl_music_eval.linear_probe import run_probe

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
        from ssl_music_eval.knn import knn_accuracy

        tids = [items[i].track_id for i in idx]
        ks = [k for k in cfg.knn.ks if k < len(idx)]
        out["knn"] = {name: {str(k): v for k, v in knn_accuracy(X[idx], labels, ks=ks, track_ids=tids).items()}
                      for name, X in feats.items()}
        out["n_classes"] = len(set(labels))
    return out


def _tempo(ctx: TaskContext, task) -> dict:
    """BPM estimates of the model's tempo head (and librosa's) against the column's tempi."""
    cfg, items, model = ctx.cfg, ctx.items, ctx.model
    from ssl_music_eval.datasets import matches_where
    from ssl_music_eval.tempo import TempoEstimator, evaluate_tempo

    rows = [(str(it.path), float(it.labels[task.column])) for it in items
            if matches_where(it, task.where) and it.labels.get(task.column) not in (None, "")]
    if cfg.tempo.max_items:
        rows = rows[: cfg.tempo.max_items]
    t = cfg.tempo
    estimator, error = None, None
    if getattr(model, "has_tempo_head", False):
        estimator = TempoEstimator(model, lo=t.min_bpm, hi=t.max_bpm, step=t.step, kind=t.reference,
                                   n_windows=t.windows, octave_correction=t.octave_correction)
    else:
        error = "checkpoint has no tempo head (trained without objectives.tempo)"
    res = evaluate_tempo(estimator, [r[0] for r in rows], [r[1] for r in rows], with_librosa=t.librosa)
    out = {"type": "tempo", "column": task.column, "n": res["n"],
           "tempo": {k: res[k] for k in ("model", "librosa") if k in res} | {"n": res["n"]}}
    if error:
        out["tempo"]["model_error"] = error
    return out


def _segmentation(ctx: TaskContext, task) -> dict:
    """Boundary detection from frame features; the files it cannot read join the dataset's skip list."""
    from ssl_music_eval.segmentation import FrameFeatures, segmentation_task

    cfg, model = ctx.cfg, ctx.model
    sets = {"model": model, **({"random_init": ctx.random_model} if ctx.random_model is not None else {})}
    if cfg.baselines.mfcc_chroma:
        sets.update({k: FrameFeatures(k, model.sample_rate, model.crop_s) for k in ("mfcc", "chroma")})
    out, skips = segmentation_task(cfg, task, ctx.spec.name, ctx.items, sets, ctx.cache, ctx.progress)
    known = {p for p, _ in ctx.skipped}
    ctx.skipped += [s for s in skips if s[0] not in known]
    if not ctx.feats:   # frames only: the items left are those segmentation could read
        gone = {p for p, _ in ctx.skipped}
        ctx.items = [it for it in ctx.items if str(it.path) not in gone]
    return out


def _translation(ctx: TaskContext, task) -> dict:
    from ssl_music_eval.translation import translation_task

    return translation_task(ctx.cfg, ctx.spec, task, ctx.items, ctx.model, ctx.feats["model"], ctx.cache, ctx.progress)


def _robustness(ctx: TaskContext, task) -> dict:
    from ssl_music_eval.robustness import robustness_task

    return robustness_task(ctx, task)


TASKS: dict[str, EvalTask] = {t.name: t for t in (
    EvalTask("multiclass", _probe, "multiclass", where=True, attribute=True),
    EvalTask("multilabel", _probe, "multilabel", where=True),
    EvalTask("tempo", _tempo, "tempo", where=True, attribute=True, bpm=True),
    EvalTask("segmentation", _segmentation, "segmentation", embeddings=False),
    EvalTask("translation", _translation, "tempo", bpm=True),   # reads the BPM column
    EvalTask("robustness", _robustness, "multiclass", where=True),   # probes on degraded copies of the clips
)}


def register(task: EvalTask) -> EvalTask:
    """Add a task type (a plug-in, a test); suites may name it from the next ``load_suite`` on."""
    TASKS[task.name] = task
    return task


