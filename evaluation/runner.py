"""One dataset of a suite: embed with the model and the baselines, then probes, k-NN, locality, tempo,
segmentation (:mod:`evaluation.segmentation`) and a 2-D projection, into the results dict that
:mod:`evaluation.report` renders. Checks happened before
(:mod:`evaluation.suite`); this module only computes.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.embed import embed_dataset
from evaluation.knn import choose_search, search_rule
from evaluation.metrics import ci_method
from evaluation.segmentation import protocol as segmentation_protocol

NON_METRIC_KEYS = ("per_seed", "confusion", "classes", "protocol")


class MfccChromaFeatures:
    """The hand-crafted baseline behind the embedding-model interface, so it is cached like the others."""

    identity = "mfcc_chroma/1"
    has_tempo_head = False
    embeds_on_threads = True  # librosa releases the GIL in its FFTs: 1.8x on 2 cores, the same features

    def __init__(self, sample_rate: int, crop_s: float):
        self.sample_rate, self.crop_s = int(sample_rate), float(crop_s)

    def embed_windows(self, wave: np.ndarray, sample_rate: int, hop_s: float | None = None) -> np.ndarray:
        from evaluation.baselines import mfcc_chroma_features

        # Statistics over the whole clip: one "window" per file.
        return np.asarray(mfcc_chroma_features(wave, sample_rate), dtype=np.float32)[None]


def protocol(cfg, model: Any) -> dict:
    t = cfg.tempo
    return {
        "probes": [p for p in ("linear", "mlp") if cfg.probes[p]], "seeds": list(cfg.seeds), "folds": int(cfg.folds),
        "bootstrap": int(cfg.probes.bootstrap), "interval": ci_method(int(cfg.probes.bootstrap)),
        "knn_ks": list(cfg.knn.ks), "locality_k": int(cfg.locality.k),
        "locality_tolerance": float(cfg.locality.tolerance), "crop_s": float(model.crop_s),
        "sample_rate": int(model.sample_rate), "hop_s": cfg.embed.hop_s,
        "baselines": [b for b in ("random_init", "mfcc_chroma") if cfg.baselines[b]],
        "tempo": {"reference": t.reference, "grid": f"{t.min_bpm:g}–{t.max_bpm:g} BPM in {100 * t.step:g} % steps",
                  "windows": int(t.windows), "octave_correction": bool(t.octave_correction)},
        "projection": cfg.projection, "rare_classes": cfg.rare_classes,
        "knn_search": search_rule(),
        **({"segmentation": segmentation_protocol(cfg.segmentation)}
           if any(t.type == "segmentation" for d in cfg.datasets for t in d.tasks) else {}),
    }


def locality_attributes(cfg, spec) -> list[str]:
    if all(t.type == "segmentation" for t in spec.tasks):
        return []  # locality is over track embeddings, which a segmentation-only dataset does not make
    if cfg.locality.attributes:
        return list(cfg.locality.attributes)
    return list(dict.fromkeys(t.column for t in spec.tasks if t.type in ("multiclass", "tempo") and not t.where))


def tempo_columns(spec) -> list[str]:
    """Columns holding BPM values: locality matches them within ``locality.tolerance``."""
    return [t.column for t in spec.tasks if t.type in ("tempo", "translation")]


def _project(X: np.ndarray, method: str, seed: int = 0) -> np.ndarray:
    Z = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-8)
    if method == "tsne" and len(Z) > 5:
        from sklearn.manifold import TSNE

        return TSNE(n_components=2, perplexity=min(30.0, (len(Z) - 1) / 3), random_state=seed,
                    init="pca").fit_transform(Z)
    _, _, vt = np.linalg.svd(Z, full_matrices=False)
    xy = Z @ vt[:2].T
    return np.pad(xy, ((0, 0), (0, 2 - xy.shape[1]))) if xy.shape[1] < 2 else xy


def _embed_all(cfg, ds, model, random_model, cache: Path, progress: bool):
    """{feature set: X} over the files every feature set could read, plus those items and the skip list."""
    sets = {"model": model}
    if random_model is not None:
        sets["random_init"] = random_model
    if cfg.baselines.mfcc_chroma:
        sets["mfcc_chroma"] = MfccChromaFeatures(model.sample_rate, model.crop_s)
    embedded, skipped = {}, {}
    for name, m in sets.items():
        X, kept, sk = embed_dataset(m, ds, cache_dir=cache, batch_size=cfg.embed.batch_size,
                                    progress=progress, hop_s=cfg.embed.hop_s)
        embedded[name] = {str(it.path): x for it, x in zip(kept, X)}
        skipped.update({p: r for p, r in sk})
    common = [it for it in ds.items if all(str(it.path) in e for e in embedded.values())]
    feats = {name: np.stack([e[str(it.path)] for it in common]) if common else np.zeros((0, 1)) for name, e in embedded.items()}
    skip_list = [[m["path"], m["reason"]] for m in getattr(ds, "missing", [])] + [[p, r] for p, r in skipped.items()]
    return feats, common, skip_list


def _probe_task(cfg, task, items, feats) -> dict:
    from evaluation.datasets import make_splits, matches_where
    from evaluation.linear_probe import run_probe

    idx = [i for i, it in enumerate(items) if matches_where(it, task.where)
           and (task.type != "multiclass" or it.labels.get(task.column) not in (None, ""))]
    fixed = [getattr(items[i], "split", None) for i in idx]
    dropped = {}
    if task.type == "multiclass" and not any(fixed) and cfg.rare_classes == "drop":
        counts = Counter(str(items[i].labels[task.column]) for i in idx)
        dropped = {c: n for c, n in sorted(counts.items()) if n < cfg.folds}
        idx = [i for i in idx if str(items[i].labels[task.column]) not in dropped]
        fixed = [None] * len(idx)
    labels = [items[i].labels[task.column] for i in idx]
    splits = make_splits(labels, cfg.folds, int(cfg.seeds[0]), fixed if any(fixed) else None, task=task.name)
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
        from evaluation.knn import knn_accuracy

        tids = [items[i].track_id for i in idx]
        ks = [k for k in cfg.knn.ks if k < len(idx)]
        out["knn"] = {name: {str(k): v for k, v in knn_accuracy(X[idx], labels, ks=ks, track_ids=tids).items()}
                      for name, X in feats.items()}
        out["n_classes"] = len(set(labels))
    return out


def _tempo_task(cfg, task, items, model) -> dict:
    from evaluation.datasets import matches_where
    from evaluation.tempo import TempoEstimator, evaluate_tempo

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


def _segmentation_task(cfg, spec, task, items, model, random_model, cache, progress):
    from evaluation.segmentation import FrameFeatures, segmentation_task

    sets = {"model": model, **({"random_init": random_model} if random_model is not None else {})}
    if cfg.baselines.mfcc_chroma:
        sets.update({k: FrameFeatures(k, model.sample_rate, model.crop_s) for k in ("mfcc", "chroma")})
    return segmentation_task(cfg, task, spec.name, items, sets, cache, progress)


def evaluate_dataset(cfg, spec, ds, model, random_model, cache: Path, progress: bool = True) -> dict:
    if all(t.type == "segmentation" for t in spec.tasks):  # no track embeddings needed: frames only
        feats, items = {}, list(ds.items)
        skipped = [[m["path"], m["reason"]] for m in getattr(ds, "missing", [])]
    else:
        feats, items, skipped = _embed_all(cfg, ds, model, random_model, cache, progress)
    tasks = {}
    for task in spec.tasks:
        if task.type == "segmentation":
            tasks[task.name], seg_skips = _segmentation_task(cfg, spec, task, items, model, random_model, cache, progress)
            skipped += [s for s in seg_skips if s[0] not in {p for p, _ in skipped}]
            if not feats:
                items = [it for it in items if str(it.path) not in {p for p, _ in skipped}]
        elif task.type == "translation":
            from evaluation.translation import translation_task

            tasks[task.name] = translation_task(cfg, spec, task, items, model, feats["model"], cache, progress)
        else:
            tasks[task.name] = _tempo_task(cfg, task, items, model) if task.type == "tempo" else _probe_task(cfg, task, items, feats)
    attrs = locality_attributes(cfg, spec)
    bpm_columns = tempo_columns(spec)
    tolerances = {a: float(cfg.locality.tolerance) for a in attrs if a in bpm_columns}
    result = {"kind": spec.kind, "path": spec.path, "n_items": len(ds.items) + len(getattr(ds, "missing", [])),
              "n_embedded": len(items), "skipped": skipped, "tasks": tasks}
    if feats and attrs and len(items) > cfg.locality.k:
        from evaluation.locality import locality

        labels = {a: [it.labels.get(a) for it in items] for a in attrs}
        tids = [it.track_id for it in items]
        searched: dict = {}
        raw = {name: locality(X, labels, k=cfg.locality.k, track_ids=tids, info=searched if name == "model" else None,
                              tolerances=tolerances)
               for name, X in feats.items()}
        result["knn_search"] = searched
        result["locality"] = {"k": int(cfg.locality.k), "tolerance": tolerances,
                              "scores": {name: {a: r[a]["share"] for a in attrs} for name, r in raw.items()},
                              "chance": {a: raw["model"][a]["chance"] for a in attrs}}
    result.setdefault("knn_search", {"search": choose_search(len(items), len(items)), "device": "cpu"})
    if feats and len(items) >= 3:
        proj_attrs = [t.column for t in spec.tasks if t.type in ("multiclass", "tempo")]
        result["projection"] = {"method": cfg.projection, "xy": _project(feats["model"], cfg.projection).round(4).tolist(),
                                "labels": {a: [it.labels.get(a) for it in items] for a in proj_attrs}}
    return result
