"""Evaluation reports: ``results.json`` (the record), ``report.md`` and a self-contained ``report.html``.

Everything in a report is drawn from the results dict alone, so a report can be rebuilt, and runs
compared (:func:`compare_runs`), from their ``results.json`` files without touching audio or models.
The HTML embeds its figures as base64 PNG data URIs with inline CSS: one file, no network, no scripts.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ssl_music_eval.reports.report_doc import FEATURE_SETS, SET_NAMES, Doc, bars, best_keys, finite, fmt_score, json_default, pyplot
from ssl_music_eval.reports.report_seeds import add_seed_sections, run_seed
from ssl_music_eval.reports.report_summary import add_comparison_summary, add_summary, comparison_rows
from ssl_music_eval.tasks import TASKS
from ssl_music.errors import SSLMusicError

RESULTS_FORMAT = "ssl_music.eval/1"


# ------------------------------------------------------------------------------------------- figures
def _score_figure(task: str, probes: dict):
    groups, series, err = [], {}, {}
    for probe, sets in probes.items():
        metrics = next(iter(sets.values())).keys()
        for metric in metrics:
            groups.append(f"{probe} {metric}")
            for fs in FEATURE_SETS:
                s = sets.get(fs, {}).get(metric)
                name = SET_NAMES[fs]
                series.setdefault(name, []).append(s["mean"] if s else np.nan)
                err.setdefault(name, []).append([s["mean"] - s["ci_low"], s["ci_high"] - s["mean"]] if s else [0, 0])
    series = {k: v for k, v in series.items() if not all(np.isnan(v))}
    return bars(groups, series, f"{task}: mean over seeds and folds, 95 % CI bars", "score", err)


def _knn_figure(task: str, knn: dict):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.0))
    for fs, accs in knn.items():
        ks = sorted(accs, key=int)
        ax.plot([int(k) for k in ks], [accs[k] for k in ks], marker="o", label=SET_NAMES.get(fs, fs))
    ax.set_xscale("log")
    ax.set_xlabel("k")
    ax.set_ylabel("k-NN accuracy")
    ax.set_title(f"{task}: k-NN (cosine, weighted)", fontsize=10)
    ax.legend(fontsize=7)
    return fig


def _confusion_figure(task: str, conf: dict):
    plt = pyplot()
    m = np.asarray(conf["matrix"], dtype=float)
    classes = [str(c) for c in conf["classes"]]
    norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * len(classes), 0.8 + 0.45 * len(classes)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=60, fontsize=7)
    ax.set_yticks(range(len(classes)), classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{task}: confusion (linear probe, model)", fontsize=9)
    return fig


def _projection_figure(name: str, proj: dict):
    plt = pyplot()
    xy = np.asarray(proj["xy"], dtype=float)
    attrs = list(proj["labels"])
    fig, axes = plt.subplots(1, max(1, len(attrs)), figsize=(3.2 * max(1, len(attrs)), 3.0), squeeze=False)
    for ax, attr in zip(axes[0], attrs):
        labels = proj["labels"][attr]
        try:
            values = np.asarray(labels, dtype=float)
            sc = ax.scatter(xy[:, 0], xy[:, 1], c=values, s=8, cmap="viridis")
            fig.colorbar(sc, ax=ax)
        except (TypeError, ValueError):
            cats = sorted(set(map(str, labels)))
            idx = np.asarray([cats.index(str(v)) for v in labels])
            ax.scatter(xy[:, 0], xy[:, 1], c=idx, s=8, cmap="tab20", vmin=0, vmax=max(19, len(cats)))
        ax.set_title(f"{attr}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{name}: {proj.get('method', 'pca').upper()} of model embeddings", fontsize=10)
    return fig


# ------------------------------------------------------------------------------------------ reports
def protocol_lines(p: dict) -> list[str]:
    return [
        f"Embedding: mean of window embeddings over the whole clip; window = crop length {p.get('crop_s')} s "
        f"at {p.get('sample_rate')} Hz, hop {p.get('hop_s') or p.get('crop_s')} s.",
        f"Probes: {', '.join(p.get('probes', []))} on standardised frozen features (logistic regression / "
        f"MLP-512, regularisation chosen on a validation split); {p.get('folds')} folds "
        f"(or the dataset's fixed split), seeds {p.get('seeds')}; mean ± std over seeds and folds of each "
        f"fold's test score [95 % CI].",
        "Intervals: " + (p["interval"] if p.get("interval") else
                         "method not recorded in these results (written by an older version, whose intervals "
                         "were of another statistic than the mean)") +
        " k-NN, locality and tempo scores are single values over all items, without an interval.",
        f"k-NN: cosine, distance-weighted vote, k ∈ {p.get('knn_ks')}. Locality: share of the "
        f"{p.get('locality_k')} nearest neighbours (other tracks) sharing each label.",
        f"Neighbour search (k-NN, locality): {p.get('knn_search', 'exact (float32 cosine, all pairs)')}; "
        "the search each dataset used is named in its section.",
        f"Baselines on the same splits: {', '.join(SET_NAMES[b] for b in p.get('baselines', []))}.",
    ] + [spec.protocol_line(p[name]) for name, spec in TASKS.items()   # each task type's own line
         if spec.protocol_line is not None and p.get(name)]


def write_report(results: dict, out_dir: str | Path) -> Path:
    """Write results.json, report.md (+ figures/) and report.html into ``out_dir``; returns the HTML path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=json_default))
    for old in (out / "figures").glob("fig*.png"):  # a re-run may draw fewer figures
        old.unlink()
    doc = Doc(f"ssl_music evaluation — {results.get('run', out.name)}", out / "figures")
    add_summary(doc, results)
    doc.heading("Details")
    doc.para(f"Checkpoint: {results.get('checkpoint')} (identity {results.get('identity')}); "
             f"suite: {results.get('suite')}; created {results.get('created', '')}.")
    doc.heading("Protocol")
    doc.bullets(protocol_lines(results.get("protocol", {})))
    for ds_name, ds in results.get("datasets", {}).items():
        _dataset_section(doc, ds_name, ds)
    doc.write(out, "report")
    return out / "report.html"


def _dataset_section(doc: Doc, name: str, ds: dict) -> None:
    doc.heading(f"Dataset {name} ({ds.get('n_embedded', '?')} of {ds.get('n_items', '?')} files)")
    if ds.get("knn_search"):
        s = ds["knn_search"]
        recall = ", ".join(f"recall@{k} {r:.4f}" for k, r in s.get("recall", {}).items())
        doc.para(f"Neighbour search: {s.get('search')} on {s.get('device')}"
                 + (f" ({recall} against exact search, {s.get('recall_queries')} queries)" if recall else "") + ".")
    rows = []
    for task, t in ds.get("tasks", {}).items():
        for probe, sets in t.get("probes", {}).items():
            for metric in next(iter(sets.values()), {}):
                rows.append([task, probe, metric] + [fmt_score(sets[fs][metric]) if fs in sets else "—"
                                                     for fs in FEATURE_SETS])
    if rows:
        doc.heading("Probe results", 3)
        doc.table(["task", "probe", "metric"] + [SET_NAMES[f] for f in FEATURE_SETS], rows)
    for task, t in ds.get("tasks", {}).items():
        doc.heading(f"Task {task} ({t.get('type')}, column '{t.get('column')}')", 3)
        if t.get("dropped_classes"):
            doc.para(f"Classes with fewer items than folds, left out of this task: "
                     f"{', '.join(f'{c} ({n})' for c, n in t['dropped_classes'].items())}.")
        if t.get("probes"):
            doc.figure(_score_figure(task, t["probes"]), f"{task} probe scores")
        if t.get("knn"):
            doc.table(["features"] + [f"k={k}" for k in next(iter(t["knn"].values()))],
                      [[SET_NAMES.get(fs, fs)] + [f"{v:.3f}" for v in accs.values()] for fs, accs in t["knn"].items()])
            doc.figure(_knn_figure(task, t["knn"]), f"{task} k-NN accuracy vs k")
        if t.get("confusion"):
            doc.figure(_confusion_figure(task, t["confusion"]), f"{task} confusion matrix")
        spec = TASKS.get(t.get("type"))   # the task type's own section: tempo, segmentation, translation, ...
        if spec is not None and spec.render is not None:
            spec.render(doc, task, t)
    loc = ds.get("locality")
    if loc:
        doc.heading(f"Locality (k = {loc.get('k')})", 3)
        attrs = list(loc.get("chance", {}))
        doc.table(["features"] + attrs,
                  [[SET_NAMES.get(fs, fs)] + [f"{s.get(a, float('nan')):.3f}" for a in attrs]
                   for fs, s in loc["scores"].items()] + [["chance"] + [f"{loc['chance'][a]:.3f}" for a in attrs]])
        doc.figure(bars(attrs, {SET_NAMES.get(fs, fs): [s.get(a, np.nan) for a in attrs]
                                 for fs, s in loc["scores"].items()}, f"{name}: locality per attribute",
                         "share of neighbours", marks=[loc["chance"][a] for a in attrs]), "locality")
        from ssl_music_eval.reports.report_subspaces import add_subspaces

        add_subspaces(doc, loc)
    from ssl_music_eval.attention import report_part as attention_part

    attention_part(doc, ds.get("attention", []))
    if ds.get("projection"):
        doc.heading("Embedding projection", 3)
        doc.figure(_projection_figure(name, ds["projection"]), "2-D projection")
    skipped = ds.get("skipped", [])
    doc.heading(f"Skipped files: {len(skipped)}", 3)
    if skipped:
        # reasons from the decoder start with the path already ("<path>: silent (...)"): name it once
        doc.bullets([r if str(r).startswith(f"{p}: ") else f"{p}: {r}" for p, r in skipped])


def summary_rows(results: dict, knn_k: str = "5", metric: str = "accuracy") -> list[dict]:
    """Terminal summary: per task, each probe's ``metric`` and k-NN accuracy at ``knn_k``, as
    ``{task, metric, model, random_init, mfcc_chroma}`` (NaN where a feature set was not run). Tempo rows
    put librosa's classical estimate in the ``mfcc_chroma`` (classical baseline) column."""
    rows = []
    for ds in results.get("datasets", {}).values():
        for task, t in ds.get("tasks", {}).items():
            for probe, sets in t.get("probes", {}).items():
                if metric in next(iter(sets.values()), {}):
                    rows.append({"task": task, "metric": f"{probe} {metric}",
                                 **{fs: sets[fs][metric]["mean"] if fs in sets else float("nan") for fs in FEATURE_SETS}})
            knn = t.get("knn", {})
            if any(knn_k in v for v in knn.values()):
                rows.append({"task": task, "metric": f"knn@{knn_k}",
                             **{fs: knn.get(fs, {}).get(knn_k, float("nan")) for fs in FEATURE_SETS}})
            spec = TASKS.get(t.get("type"))   # rows of the task type's own (segmentation, tempo head, ...)
            if spec is not None and spec.terminal_rows is not None:
                rows += spec.terminal_rows(task, t)
    return rows


# ------------------------------------------------------------------------------------------ compare
def _or_unknown(value):
    return "?" if value is None else value


def _code(results: dict) -> str:
    """The training code a run's checkpoint recorded and the evaluation code of its results ('?' before
    provenance was recorded)."""
    trained = (results.get("provenance") or {}).get("code", {})
    evaluated = results.get("evaluated_with") or {}
    return f"{trained.get('sources', '?')} / {evaluated.get('evaluation_sources', '?')}"


def _run_chain(run_dir: Path) -> str:
    """The augmentation chain a run trained with, from the config.yaml its pretraining saved."""
    cfg = run_dir / "config.yaml"
    if not cfg.is_file():
        return "unknown (no config.yaml in the run folder)"
    from omegaconf import OmegaConf

    from ssl_music.augment.chain import describe_chain

    return describe_chain(OmegaConf.select(OmegaConf.load(cfg), "augment.chain", default=None) or {})


def compare_runs(run_dirs: Sequence[str | Path], out_dir: str | Path) -> dict:
    """One table (rows = headline numbers, columns = runs, best per row ★) and one set of plots."""
    names, per_run, chains, loaded = [], [], [], []
    for d in run_dirs:
        path = Path(d) / "results.json"
        if not path.is_file():
            raise SSLMusicError(f"{d}: no results.json (run `ssl-music evaluate` there first)")
        res = json.loads(path.read_text())
        name = str(res.get("run") or Path(d).name)
        names.append(name if name not in names else f"{name} ({Path(d)})")
        per_run.append(comparison_rows(res))
        loaded.append(res)
        chains.append(_run_chain(Path(d)))
    labels = list(dict.fromkeys(k for r in per_run for k in r))
    table = {lab: {n: r.get(lab) for n, r in zip(names, per_run)} for lab in labels}
    best = {lab: top for lab, vals in table.items() if (top := best_keys(vals))}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = Doc(f"ssl_music comparison of {len(names)} runs", out / "figures")
    seeds = add_seed_sections(doc, [Path(d) for d in run_dirs], loaded)
    add_comparison_summary(doc, names, loaded)
    doc.heading("Details")
    doc.heading("Runs")
    codes = [_code(res) for res in loaded]
    if len(set(codes)) > 1:
        doc.para("⚠ These runs were not all made with the same code (column 'code'): a difference between them "
                 "may be the code's, not the arms'.")
    doc.table(["run", "augmentation chain (as trained: transform, p, params)", "seed", "code (training / evaluation)"],
              [[n, c, str(_or_unknown(run_seed(Path(d), res))), code]
               for n, c, res, code, d in zip(names, chains, loaded, codes, run_dirs)])
    doc.heading("Results")
    doc.para("Model features only; higher is better in every row; ★ / bold = best run per row.")
    rows, marks = [], set()
    for r, lab in enumerate(labels):
        rows.append([lab] + [f"{table[lab][n]:.3f}" if finite(table[lab][n]) else "—" for n in names])
        marks |= {(r, 1 + names.index(n)) for n in best.get(lab, [])}
    doc.table(["row"] + names, rows, best=marks)
    groups: dict[str, list[str]] = {}
    for lab in labels:
        groups.setdefault(lab.rsplit("/", 1)[0], []).append(lab)
    for group, labs in groups.items():
        doc.figure(bars([lab.rsplit("/", 1)[1] for lab in labs],
                         {n: [table[lab][n] if finite(table[lab][n]) else np.nan for lab in labs] for n in names},
                         group, "score"), group)
    summary = {"runs": names, "dirs": [str(d) for d in run_dirs], "chains": dict(zip(names, chains)),
               "table": table, "best": best, "seeds": seeds}
    (out / "compare.json").write_text(json.dumps(summary, indent=1, default=json_default))
    doc.write(out, "compare")
    return summary
