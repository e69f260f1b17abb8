"""Robustness as an evaluation task (``type: robustness``, issue #25): the same probe, fitted on the clean clips
of each training fold, scored on degraded copies of the test clips (white / pink noise at an SNR, MP3 coding,
room reverb, band-limiting: ssl_music_eval.degrade). Each feature set (the model, its random-init twin,
MFCC+chroma) is scored on the same degraded audio, so their drops compare.

A drop is clean accuracy − degraded accuracy over the same seeds × folds with the same fitted probes. Its
interval is a Student t interval over folds of each fold's drop averaged over the probe seeds first: the probe
seeds of one fold share its training and test items, so seeds × folds are not that many independent values
(the folds still share training items, so it is somewhat narrower than an independent-samples interval would be).
Degraded copies are embedded with the suite's ``embed.hop_s``, as the clean features are.
"""
from __future__ import annotations

import math

import numpy as np

from ssl_music_eval.degrade import degrade
from ssl_music_eval.tasks.base import EvalTask

BASE_SETS = ("model", "random_init", "mfcc_chroma")


def _fold_scores(res: dict, metric: str = "accuracy") -> np.ndarray:
    """[seeds, folds] test metric of a run_probe result."""
    return np.array([[f["metrics"][metric] for f in s["folds"]] for s in res["per_seed"]], dtype=np.float64)


def drop_summary(clean: np.ndarray, degraded: np.ndarray, level: float = 0.95) -> dict:
    """Mean of clean − degraded over paired [seeds, folds] scores (a 1-D array: one value per fold), with a t
    interval over folds of the per-fold drops averaged over seeds; ``n`` is the number of folds."""
    d = np.asarray(clean, np.float64) - np.asarray(degraded, np.float64)
    d = np.nanmean(d, axis=0) if d.ndim == 2 else d
    d = d[np.isfinite(d)]
    n = int(d.size)
    mean = float(d.mean()) if n else float("nan")
    if n < 2:
        return {"mean": mean, "ci_low": float("nan"), "ci_high": float("nan"), "n": n}
    from scipy import stats   # here: the task registry, which config validation reads, stays light

    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * float(d.std(ddof=1)) / math.sqrt(n)
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "n": n}


def _embedders(ctx) -> dict:
    from ssl_music_eval.baselines.features import MfccChromaFeatures

    sets = {"model": ctx.model, "random_init": ctx.random_model,
            "mfcc_chroma": MfccChromaFeatures(ctx.model.sample_rate, ctx.model.crop_s)}
    return {name: m for name, m in sets.items() if name in ctx.feats and m is not None}


def degraded_features(ctx, items: list, specs: list[str], seed: int) -> dict[str, dict[str, np.ndarray]]:
    """{degradation: {feature set: [len(items), D]}} of the degraded copies; each clip is decoded once for
    every degradation and set, and embedded once per dataset however many robustness tasks score it (a style
    and an instrument task over the same clips share every copy: the slow encoders' evaluation halves)."""
    from ssl_music_eval.embed import load_audio

    sets = _embedders(ctx)
    sr, hop_s = int(ctx.model.sample_rate), ctx.cfg.embed.hop_s
    memo = ctx.memo.setdefault("degraded", {})   # (path, spec, seed) -> {feature set: [D]}
    rows: dict[str, dict[str, list]] = {spec: {name: [] for name in sets} for spec in specs}
    for it in items:
        todo = [spec for spec in specs if (str(it.path), spec, seed) not in memo]
        clean = load_audio(it.path, sr) if todo else None
        for spec in todo:
            wave = degrade(clean, sr, spec, seed, item=str(it.path))
            memo[(str(it.path), spec, seed)] = {name: np.asarray(m.embed_windows(wave, sr, hop_s=hop_s),
                                                                 dtype=np.float32).mean(axis=0)
                                                for name, m in sets.items()}
        for spec in specs:
            for name in sets:
                rows[spec][name].append(memo[(str(it.path), spec, seed)][name])
    return {spec: {name: np.stack(r) for name, r in by_set.items()} for spec, by_set in rows.items()}


def robustness_task(ctx, task) -> dict:
    """Clean and degraded scores of every base feature set, and each drop with its interval."""
    from ssl_music_eval.datasets import probe_items
    from ssl_music_eval.probes.linear_probe import run_probe

    cfg = ctx.cfg
    r = cfg.robustness
    idx, labels, splits, _ = probe_items(ctx.items, task, cfg, multiclass=True)
    sets = [s for s in BASE_SETS if s in _embedders(ctx)]
    probe = dict(task="multiclass", kind=str(r.probe), seeds=list(cfg.seeds), n_boot=0)
    clean = {s: run_probe(ctx.feats[s][idx], labels, splits, **probe) for s in sets}
    out: dict = {"type": "robustness", "column": task.column, "n": len(idx), "probe": str(r.probe),
                 "seed": int(r.seed), "clean": {s: clean[s]["accuracy"]["mean"] for s in sets}, "degradations": {}}
    specs = [str(spec) for spec in r.degradations]
    degraded = degraded_features(ctx, [ctx.items[i] for i in idx], specs, int(r.seed))
    for spec in specs:
        entry = {}
        for s in sets:
            res = run_probe(ctx.feats[s][idx], labels, splits, X_test=degraded[spec][s], **probe)
            entry[s] = {"accuracy": res["accuracy"]["mean"],
                        "drop": drop_summary(_fold_scores(clean[s]), _fold_scores(res))}
        out["degradations"][spec] = entry
    return out

def render(doc, task: str, t: dict) -> None:
    """The task's table in a report: per degradation, each feature set's accuracy and drop from clean."""
    from ssl_music_eval.reports.report_doc import SET_NAMES

    sets = list(t["clean"])
    doc.para(f"{t['probe']} probe fitted on clean clips, scored on degraded copies (seed {t['seed']}; {t['n']} clips). "
             "Drop = clean − degraded accuracy, mean over seeds × folds [95 % t interval over folds, each fold's "
             "drop averaged over the probe seeds].")
    fmt = lambda d: f"{d['mean']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"  # noqa: E731
    rows = [["clean"] + [f"{t['clean'][s]:.3f}" for s in sets]]
    rows += [[spec] + [f"{e[s]['accuracy']:.3f}, drop {fmt(e[s]['drop'])}" for s in sets]
             for spec, e in t["degradations"].items()]
    doc.table(["degradation"] + [SET_NAMES.get(s, s) for s in sets], rows)


def comparison(t: dict, feature_set: str) -> dict[str, float]:
    """Degraded − clean accuracy per degradation, so that higher is better here as in every other comparison row
    (a drop is its negative)."""
    return {f"accuracy change under {spec}": -entry[feature_set]["drop"]["mean"]
            for spec, entry in t.get("degradations", {}).items() if feature_set in entry}


# probes on degraded copies of the clips; the column is read as a multiclass label
SPEC = EvalTask("robustness", robustness_task, "multiclass", where=True, render=render, comparison=comparison)
