"""One dataset of a suite: embed with the model and the baselines, then probes, k-NN, locality, tempo,
segmentation (:mod:`ssl_music_eval.segmentation`) and a 2-D projection, into the results dict that
:mod:`ssl_music_eval.reports.report` renders. Checks happened before
(:mod:`ssl_music_eval.suite`); this module only computes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ssl_music_eval.attention import listen_clips
from ssl_music_eval.baselines.features import MfccChromaFeatures  # noqa: F401 (also imported from here)
from ssl_music_eval.embed import embed_dataset
from ssl_music_eval.probes.knn import choose_search, search_rule
from ssl_music_eval.metrics import ci_method
from ssl_music_eval.subspaces import TWIN_PREFIX, layout_of, subspace_features, weighted_locality
from ssl_music_eval.tasks import TASKS, TaskContext


def protocol(cfg, model: Any) -> dict:
    used = {t.type for d in cfg.datasets for t in d.tasks}
    return {
        "probes": [p for p in ("linear", "mlp") if cfg.probes[p]], "seeds": list(cfg.seeds), "folds": int(cfg.folds),
        "bootstrap": int(cfg.probes.bootstrap), "interval": ci_method(int(cfg.probes.bootstrap)),
        "knn_ks": list(cfg.knn.ks), "locality_k": int(cfg.locality.k),
        "locality_tolerance": float(cfg.locality.tolerance), "crop_s": float(model.crop_s),
        "sample_rate": int(model.sample_rate), "hop_s": cfg.embed.hop_s,
        "baselines": [b for b in ("random_init", "mfcc_chroma") if cfg.baselines[b]],
        "projection": cfg.projection, "rare_classes": cfg.rare_classes,
        "knn_search": search_rule(),
        # each task type in the suite records its own settings (tasks/<type>.py)
        **{name: spec.protocol(cfg) for name, spec in TASKS.items() if spec.protocol is not None and name in used},
    }


def needs_embeddings(spec) -> bool:
    return any(TASKS[t.type].embeddings for t in spec.tasks)


def locality_attributes(cfg, spec) -> list[str]:
    if not needs_embeddings(spec):
        return []  # locality is over track embeddings, which a frames-only dataset does not make
    if cfg.locality.attributes:
        return list(cfg.locality.attributes)
    return list(dict.fromkeys(t.column for t in spec.tasks if TASKS[t.type].attribute and not t.where))


def tempo_columns(spec) -> list[str]:
    """Columns holding BPM values: locality matches them within ``locality.tolerance``."""
    return [t.column for t in spec.tasks if TASKS[t.type].bpm]


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


def evaluate_dataset(cfg, spec, ds, model, random_model, cache: Path, progress: bool = True) -> dict:
    if not needs_embeddings(spec):  # frames only
        feats, items = {}, list(ds.items)
        skipped = [[m["path"], m["reason"]] for m in getattr(ds, "missing", [])]
    else:
        feats, items, skipped = _embed_all(cfg, ds, model, random_model, cache, progress)
        if items:  # one more feature set per named subspace: every probe, k-NN and locality column per part
            feats.update(subspace_features(model, feats["model"]))
            if "random_init" in feats:   # each part beside the same part of the random-init twin
                feats.update(subspace_features(random_model, feats["random_init"], TWIN_PREFIX))
    ctx = TaskContext(cfg, spec, items, feats, model, random_model, cache, progress, skipped)
    tasks = {task.name: TASKS[task.type].run(ctx, task) for task in spec.tasks}
    items, skipped = ctx.items, ctx.skipped
    attrs = locality_attributes(cfg, spec)
    bpm_columns = tempo_columns(spec)
    tolerances = {a: float(cfg.locality.tolerance) for a in attrs if a in bpm_columns}
    result = {"kind": spec.kind, "path": spec.path, "n_items": len(ds.items) + len(getattr(ds, "missing", [])),
              "n_embedded": len(items), "skipped": skipped, "tasks": tasks}
    if feats and attrs and len(items) > cfg.locality.k:
        from ssl_music_eval.probes.locality import locality

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
        if layout_of(model):
            result["locality"]["weighted"] = weighted_locality(
                feats["model"], layout_of(model), labels, int(cfg.locality.k), track_ids=tids, tolerances=tolerances,
                n_boot=max(1, int(cfg.probes.bootstrap)))
    listened = listen_clips(model, items, cfg.attention)
    if listened:
        result["attention"] = listened
    result.setdefault("knn_search", {"search": choose_search(len(items), len(items)), "device": "cpu"})
    if feats and len(items) >= 3:
        proj_attrs = [t.column for t in spec.tasks if TASKS[t.type].attribute]
        result["projection"] = {"method": cfg.projection, "xy": _project(feats["model"], cfg.projection).round(4).tolist(),
                                "labels": {a: [it.labels.get(a) for it in items] for a in proj_attrs}}
    return result
