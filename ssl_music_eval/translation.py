"""Tempo translation task (McCallum, Henkel et al., ICASSP 2024): how well ``model.translate_tempo`` predicts the
embedding of a track played r times faster, and what it is good for.

Per dataset (track embedding = mean of window embeddings, as everywhere; the checkpoint's translator, see
:mod:`ssl_music.translation`):

* **fidelity**: every clip is really time-stretched by each ratio r (``augment.vocoder.stretch`` on the whole
  clip, output length = input / r) and embedded. Per ratio: mean over clips of cos(T(e, log r), e_r) against
  the identity baseline cos(e, e_r), each with a 95 % interval of the mean, and the paired gain; and the rank
  of the true stretched clip among all stretched clips when searched with T(e, log r) or with e.
* **property preservation**: weighted k-NN accuracy (cosine, other tracks only) of each attribute (style,
  instrument...) for queries e (untranslated), T(e, log r) (translated) and e_r (the real stretch), all
  against the bank of untranslated embeddings; translated is the mean over ratios != 1.
* **tempo-probe augmentation** (the paper's use): log-spaced tempo classes; a linear probe trained on the
  training embeddings alone vs with their translated copies T(e, log r), labelled with the class of
  r x BPM (a copy whose tempo leaves the class range is not added), on the same folds, seeds and validation
  carve; the same with copies from the really stretched clips as a reference. Test items are untranslated.
* **"same track, faster" retrieval**: nearest other tracks of T(e, log demo_ratio) for a few queries, with
  their tempi; over all queries, the mean log2 tempo ratio neighbour / query of the top k.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ssl_music_eval.metrics import CI_LEVEL, cv_summary, mean_ci

TARGET_KNN_DROP = 0.02   # property k-NN of translated embeddings within this of untranslated


def _unit(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def _cos(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    return np.sum(_unit(A) * _unit(B), axis=1)


# ------------------------------------------------------------------------------ stretched embeddings
def stretched_embeddings(model: Any, paths: Sequence[str], ratios: Sequence[float], hop_s: float | None = None,
                         cache_file: Path | None = None, progress: bool = False) -> np.ndarray:
    """[R, N, D]: embedding of each clip time-stretched by each ratio (r > 1 faster: N/r samples out)."""
    import torch

    from ssl_music_eval.embed import load_audio
    from ssl_music.augment.vocoder import stretch

    if cache_file is not None and cache_file.is_file():
        with np.load(cache_file) as z:
            return z["S"]
    sr = int(model.sample_rate)
    device = getattr(model, "device", "cpu")
    out = np.zeros((len(ratios), len(paths), int(model.embed_dim)), dtype=np.float32)
    bar = None
    if progress:
        import sys

        from tqdm import tqdm

        bar = tqdm(total=len(paths), desc="stretch + embed", unit="file", file=sys.stderr)
    for i, path in enumerate(paths):
        x = torch.from_numpy(load_audio(path, sr)).to(device)[None]
        for j, r in enumerate(ratios):
            y = stretch(x, torch.tensor([float(r)], device=device), max(1, int(round(x.shape[1] / float(r)))))
            out[j, i] = np.asarray(model.embed_windows(y[0].cpu().numpy(), sr, hop_s=hop_s)).mean(axis=0)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(cache_file.name + ".tmp.npz")
        np.savez(tmp, S=out)
        tmp.replace(cache_file)
    return out


# ------------------------------------------------------------------------------------------- parts
def fidelity(E: np.ndarray, S: np.ndarray, T: np.ndarray, ratios: Sequence[float], n_boot: int,
             seed: int = 0) -> list[dict]:
    """Per ratio: cosine to the real stretch (translated, identity, paired gain) and the true clip's rank."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(E), (n_boot, len(E)))  # none (probes.bootstrap = 0): NaN bounds, no interval
    rows = []
    for j, r in enumerate(ratios):
        ct, ci = _cos(T[j], S[j]), _cos(E, S[j])
        row = {"ratio": float(r), "translated": mean_ci(ct, draws), "identity": mean_ci(ci, draws),
               "gain": mean_ci(ct - ci, draws, bounds=(-2.0, 2.0))}
        for name, Q in (("translated", T[j]), ("identity", E)):
            sims = _unit(Q) @ _unit(S[j]).T
            rank = 1 + np.sum(sims > np.diag(sims)[:, None], axis=1)
            row[f"rank_{name}"] = {"top1": float(np.mean(rank == 1)), "mean": float(rank.mean()),
                                   "median": float(np.median(rank)), "mrr": float(np.mean(1.0 / rank))}
        row["separated"] = bool(row["translated"]["ci_low"] > row["identity"]["ci_high"])
        rows.append(row)
    return rows


def property_knn(E, S, T, ratios, labels: dict[str, list], track_ids: Sequence, k: int) -> dict:
    """Weighted k-NN accuracy (other tracks only) per attribute, mean over ratios != 1 (and per ratio):

    * ``untranslated``: leave-one-out within {e};
    * ``translated``: leave-one-out within {T(e, log r)}, the whole set translated (what the target is on:
      a translated collection keeps its style / instrument structure);
    * ``translated_queries``: T(e, log r) queried against the untranslated bank {e} (a tempo-heavy embedding
      drops here however good T is: the query moved in tempo, its neighbours did not);
    * ``stretched`` / ``stretched_queries``: the same two with the real stretch e_r, for reference.
    """
    from ssl_music_eval.probes.knn import knn_predict

    moving = [j for j, r in enumerate(ratios) if not math.isclose(r, 1.0)]
    tids = np.asarray(track_ids)
    out = {}
    for attr, values in labels.items():
        ok = np.array([v not in (None, "") for v in values])
        y = np.asarray(values, dtype=object)[ok].astype(str)
        if len(set(y)) < 2 or ok.sum() <= k:
            continue
        kk = min(k, int(ok.sum()) - 1)

        def acc(bank, Q):
            pred, _ = knn_predict(bank[ok], y, Q[ok], kk, tids[ok], tids[ok])
            return float(np.mean(pred == y))

        runs = {"translated": lambda j: acc(T[j], T[j]), "translated_queries": lambda j: acc(E, T[j]),
                "stretched": lambda j: acc(S[j], S[j]), "stretched_queries": lambda j: acc(E, S[j])}
        per = {name: {f"{ratios[j]:g}": fn(j) for j in moving} for name, fn in runs.items()}
        base = acc(E, E)
        row = {"untranslated": base, **{name: float(np.mean(list(v.values()))) for name, v in per.items()},
               "per_ratio": per, "k": kk}
        row["within_target"] = bool(row["translated"] >= base - TARGET_KNN_DROP)
        out[attr] = row
    return out


def tempo_classes(bpm: np.ndarray, lo: float, hi: float, n: int) -> tuple[np.ndarray, list[str]]:
    """Class index of each BPM on ``n`` log-spaced classes over [lo, hi) (-1 outside), and the class names."""
    edges = np.geomspace(lo, hi, n + 1)
    idx = np.searchsorted(edges, np.asarray(bpm, dtype=np.float64), side="right") - 1
    idx = np.where((idx >= 0) & (idx < n), idx, -1)
    return idx, [f"{a:03.0f}-{b:03.0f}" for a, b in zip(edges[:-1], edges[1:])]


def tempo_probe(E, S, T, ratios, bpm: np.ndarray, cfg, n_classes: int) -> dict:
    """Linear tempo-class probe: plain vs + translated copies vs + really stretched copies, same folds."""
    from ssl_music_eval.datasets import make_splits
    from ssl_music_eval.probes.linear_probe import carve_validation, linear_probe

    lo, hi = float(cfg.tempo.min_bpm), float(cfg.tempo.max_bpm)
    cls, names = tempo_classes(bpm, lo, hi, n_classes)
    counts = np.bincount(cls[cls >= 0], minlength=n_classes)
    kept = [c for c in range(n_classes) if counts[c] >= cfg.folds]
    dropped = {names[c]: int(counts[c]) for c in range(n_classes) if 0 < counts[c] < cfg.folds}
    remap = np.full(n_classes + 1, -1)
    remap[kept] = np.arange(len(kept))
    y = remap[cls]                                         # -1: outside the range or a dropped class
    idx = np.flatnonzero(y >= 0)
    if len(kept) < 2:
        return {"error": f"fewer than two tempo classes with >= {cfg.folds} items", "dropped_classes": dropped}
    splits = make_splits(y[idx].astype(str), cfg.folds, int(cfg.seeds[0]), task="tempo classes")
    moving = [j for j, r in enumerate(ratios) if not math.isclose(r, 1.0)]
    copy_y = {j: remap[tempo_classes(bpm * ratios[j], lo, hi, n_classes)[0]] for j in moving}
    arms = {"plain": None, "translated": T, "stretched": S}
    scores = {a: [] for a in arms}
    added = {a: 0 for a in arms}
    for seed in cfg.seeds:
        per_arm = {a: [] for a in arms}
        for split in splits:
            tr, va = carve_validation(idx[split["train"]], y, "multiclass", int(seed))
            te = idx[split["test"]]
            for arm, copies in arms.items():
                X_tr, y_tr = [E[tr]], [y[tr]]
                if copies is not None:
                    for j in moving:
                        keep = tr[copy_y[j][tr] >= 0]
                        X_tr.append(copies[j][keep])
                        y_tr.append(copy_y[j][keep])
                X_tr, y_tr = np.concatenate(X_tr), np.concatenate(y_tr)
                if seed == cfg.seeds[0]:
                    added[arm] += len(y_tr) - len(tr)
                res = linear_probe(X_tr, y_tr, E[va], y[va], E[te], y[te], seed=int(seed))
                proba = res["proba"]
                per_arm[arm].append(np.pad(proba, ((0, 0), (0, len(kept) - proba.shape[1]))))
        for arm in arms:
            scores[arm].append(per_arm[arm])
    tests = [idx[s["test"]] for s in splits]
    out = {"classes": [names[c] for c in kept], "n": int(len(idx)), "dropped_classes": dropped,
           "copies_added": {a: int(v) for a, v in added.items() if a != "plain"}, "arms": {}}
    for arm in arms:
        res = cv_summary(y, tests, scores[arm], "multiclass", n_boot=int(cfg.probes.bootstrap), seed=int(cfg.seeds[0]))
        out["arms"][arm] = {m: res[m] for m in ("accuracy", "balanced_accuracy")}
    out["gain"] = {a: out["arms"][a]["accuracy"]["mean"] - out["arms"]["plain"]["accuracy"]["mean"]
                   for a in ("translated", "stretched")}
    return out


def retrieval_demo(E: np.ndarray, Tq: np.ndarray, bpm: np.ndarray, labels: dict[str, list], paths: Sequence[str],
                   track_ids: Sequence, ratio: float, n_queries: int, k: int = 5, tol: float = 0.04) -> dict:
    """Neighbours (other tracks) of T(e, log ratio) vs of e. Over the queries whose target tempo (ratio x BPM)
    some other clip has within ``tol``: the share of the top k within ``tol`` of the target tempo and of
    the query's own tempo, and the mean log2 tempo ratio neighbour / query."""
    tids = np.asarray(track_ids).astype(str)
    sims_t, sims_e = _unit(Tq) @ _unit(E).T, _unit(E) @ _unit(E).T
    same = tids[:, None] == tids[None, :]
    sims_t[same], sims_e[same] = -np.inf, -np.inf
    kk = max(1, min(k, len(E) - 1))
    top_t, top_e = np.argsort(-sims_t, axis=1)[:, :kk], np.argsort(-sims_e, axis=1)[:, :kk]
    near = lambda a, b: np.abs(np.log(a / b)) <= np.log1p(tol)  # noqa: E731
    target = bpm * ratio
    reachable = np.array([np.any(near(bpm[~same[i]], target[i])) for i in range(len(E))])
    summary = {}
    for name, top in (("translated", top_t), ("untranslated", top_e)):
        q = top[reachable]
        if not len(q):
            summary[name] = {"near_target": float("nan"), "near_query": float("nan"), "mean_log2": float("nan")}
            continue
        summary[name] = {"near_target": float(np.mean(near(bpm[q], target[reachable, None]))),
                         "near_query": float(np.mean(near(bpm[q], bpm[reachable, None]))),
                         "mean_log2": float(np.log2(bpm[q] / bpm[reachable, None]).mean())}
    pool = np.flatnonzero(reachable) if reachable.any() else np.arange(len(E))   # queries a faster clip exists for
    order = pool[np.argsort(bpm[pool])]
    picks = order[np.linspace(0, len(order) - 1, min(n_queries, len(order))).round().astype(int)] if n_queries else []

    def entry(j, s):
        return {"path": Path(str(paths[j])).name, "tempo": float(bpm[j]), "cos": float(s),
                **{a: str(v[j]) for a, v in labels.items()}}

    queries = [{"path": Path(str(paths[i])).name, "tempo": float(bpm[i]), "target_tempo": float(target[i]),
                **{a: str(v[i]) for a, v in labels.items()},
                "translated": [entry(j, sims_t[i, j]) for j in top_t[i]],
                "untranslated": [entry(j, sims_e[i, j]) for j in top_e[i]]} for i in picks]
    return {"ratio": float(ratio), "k": kk, "tolerance": float(tol), "target_log2": float(np.log2(ratio)),
            "queries_scored": int(reachable.sum()), **summary, "queries": queries}


# ----------------------------------------------------------------------------------------- the task
def attributes(cfg, spec) -> list[str]:
    """Property columns: ``translation.attributes``, else the dataset's multiclass columns not about tempo."""
    if cfg.translation.attributes:
        return list(cfg.translation.attributes)
    return [t.column for t in spec.tasks if t.type == "multiclass" and "tempo" not in t.column.lower()]


def protocol(tc, cfg) -> dict:
    return {"ratios": [float(r) for r in tc.ratios], "k": int(tc.k), "tempo_classes": int(tc.tempo_classes),
            "bpm_range": [float(cfg.tempo.min_bpm), float(cfg.tempo.max_bpm)], "demo_ratio": float(tc.demo_ratio),
            "interval": f"mean over clips; {100 * CI_LEVEL:.0f} % CI = mean ± 1.96 × bootstrap SE of that mean "
                        f"({int(cfg.probes.bootstrap)} clip resamples, shared by translated, identity and their "
                        "paired gain)" if cfg.probes.bootstrap > 0 else "mean over clips; no CI (probes.bootstrap = 0)",
            "stretch": "ssl_music.augment.vocoder.stretch (phase vocoder, onset phase reset) on the whole clip"}


def translation_task(cfg, spec, task, items, model, E: np.ndarray, cache: Path | None, progress: bool = False) -> dict:
    """Every part above for one dataset; ``E`` the model's track embeddings of ``items`` (the suite's)."""
    from ssl_music.errors import SSLMusicError

    tc = cfg.translation
    out: dict = {"type": "translation", "column": task.column, "n": 0, "translation": {"protocol": protocol(tc, cfg)}}
    res = out["translation"]
    if not callable(getattr(model, "translate_tempo", None)):
        res["model_error"] = f"model '{getattr(model, 'identity', model)}' has no tempo translator (no translate_tempo)"
        return out
    try:  # only the reader's own refusal means "no translator"; any other exception is a bug to show
        model.translate_tempo(np.zeros((1, int(E.shape[1])), np.float32), 1.0)
    except SSLMusicError as exc:
        res["model_error"] = str(exc)
        return out
    rows = [i for i, it in enumerate(items) if it.labels.get(task.column) not in (None, "")]
    if tc.max_items:
        rows = rows[: int(tc.max_items)]
    if len(rows) < 3:
        res["model_error"] = f"fewer than 3 clips with a '{task.column}' label"
        return out
    items = [items[i] for i in rows]
    E = np.asarray(E, dtype=np.float32)[rows]
    paths = [str(it.path) for it in items]
    bpm = np.array([float(it.labels[task.column]) for it in items])
    tids = [it.track_id for it in items]
    ratios = [float(r) for r in tc.ratios]
    cache_file = None
    if cache is not None:
        from ssl_music_eval.embed import cache_key

        key = cache_key(model, paths, {"stretched": ratios, "hop_s": cfg.embed.hop_s, "stretch": "vocoder/1"})
        cache_file = Path(cache) / f"{spec.name}-stretched-{key[:24]}.npz"
    S = stretched_embeddings(model, paths, ratios, cfg.embed.hop_s, cache_file, progress)
    T = np.stack([model.translate_tempo(E, r) for r in ratios])
    attrs = attributes(cfg, spec)
    labels = {a: [it.labels.get(a) for it in items] for a in attrs}
    out["n"] = len(items)
    res["fidelity"] = fidelity(E, S, T, ratios, int(cfg.probes.bootstrap), int(cfg.seeds[0]))
    res["properties"] = property_knn(E, S, T, ratios, labels, tids, int(tc.k))
    res["tempo_probe"] = tempo_probe(E, S, T, ratios, bpm, cfg, int(tc.tempo_classes))
    Tq = model.translate_tempo(E, float(tc.demo_ratio))
    res["retrieval"] = retrieval_demo(E, Tq, bpm, labels, paths, tids, float(tc.demo_ratio), int(tc.demo_queries))
    moving = [f for f in res["fidelity"] if not math.isclose(f["ratio"], 1.0)]
    res["targets"] = {
        "fidelity_separated_at_every_ratio": all(f["separated"] for f in moving),
        "properties_within_0.02": all(p["within_target"] for p in res["properties"].values()),
        "tempo_probe_gains": bool(res["tempo_probe"].get("gain", {}).get("translated", -1) > 0)}
    res["headline"] = {"fidelity gain (mean over r != 1)": float(np.mean([f["gain"]["mean"] for f in moving])),
                       "tempo probe gain (translated copies)":
                           res["tempo_probe"].get("gain", {}).get("translated", float("nan"))}
    return out
