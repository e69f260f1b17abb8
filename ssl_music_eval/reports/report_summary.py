"""The first screen of a report: one table and one plot with a row per (dataset, task, probe).

A reader opens a report to learn whether the pretrained model beats its random-init twin and the classical
features; the detailed sections below answer how and why. Every number here is one the detailed sections
already show (a probe's row uses the task's primary metric, :data:`ssl_music_eval.metrics.PRIMARY`, the one its
regularisation was chosen on), so the summary cannot disagree with them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ssl_music_eval.metrics import PRIMARY
from ssl_music_eval.reports.report_doc import FEATURE_SETS, SET_NAMES, Doc, best_keys, finite, pyplot
from ssl_music_eval.tasks import TASKS

COLUMNS = (*FEATURE_SETS, "librosa")
COLUMN_NAMES = {**SET_NAMES, "librosa": "librosa"}


def column_name(col: str) -> str:
    """A column's heading: a feature set's name, or ``model: <subspace>`` for one part of the model (``random
    init: <subspace>`` for the same part of its random-init twin)."""
    if col.startswith("random_init/"):
        return "random init: " + col[len("random_init/"):]
    return COLUMN_NAMES.get(col, col.replace("/", ": ", 1))


def subspace_columns(rows) -> list[str]:
    """The model's per-subspace feature sets (``model/<name>``) the rows hold, in order of appearance, each
    followed by the same part of the random-init twin (``random_init/<name>``) where the rows hold it."""
    cells = list(dict.fromkeys(c for r in rows for c in r.cells))
    out = []
    for c in cells:
        if c.startswith("model/"):
            out += [c] + [t for t in ("random_init/" + c[len("model/"):],) if t in cells]
    return out
MISSING = "–"
KNN_TARGET = 10  # one k-NN row per task: the k run closest to this, the smaller on a tie
PROBE_NAMES = {"linear": "linear", "mlp": "MLP"}


@dataclass
class Row:
    """One summary row; ``cells`` maps a column (feature set, or librosa) to (mean, 95 % low, 95 % high),
    the bounds None for a single value over all items (k-NN, locality, tempo)."""
    dataset: str
    task: str
    probe: str
    metric: str
    cells: dict[str, tuple] = field(default_factory=dict)
    chance: float | None = None

    def mean(self, col: str) -> float:
        return self.cells[col][0] if col in self.cells else float("nan")

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.dataset, self.task, self.probe, self.metric

    @property
    def shown(self) -> list[str]:
        """The row's name as the table shows it; chance beside the metric, not in the key, so runs on corpora
        of different class balance still share their locality rows in a comparison."""
        chance = f" (chance {self.chance:.3f})" if finite(self.chance) else ""
        return [self.dataset, self.task, self.probe, self.metric + chance]


def _cell(s) -> tuple | None:
    """A results.json score ({mean, ci_low, ci_high, ...} or a bare number) as a cell; None when not finite."""
    if isinstance(s, dict):
        lo, hi = s.get("ci_low"), s.get("ci_high")
        bounds = (lo, hi) if finite(lo) and finite(hi) else (None, None)
        return (s["mean"], *bounds) if finite(s.get("mean")) else None
    return (float(s), None, None) if finite(s) else None


def _row(dataset: str, task: str, probe: str, metric: str, scores: dict, chance: float | None = None) -> Row:
    cells = {col: c for col, s in scores.items() if (c := _cell(s)) is not None}
    return Row(dataset, task, probe, metric, cells, chance)


def knn_k(ks: Sequence[str]) -> str | None:
    return min(ks, key=lambda k: (abs(int(k) - KNN_TARGET), int(k)), default=None)


def headline_metric(task: dict, sets: dict) -> str | None:
    """The task type's primary metric (accuracy / macro ROC-AUC); the first one recorded if the type has none."""
    metrics = next(iter(sets.values()), {})
    primary = PRIMARY.get(task.get("type"))
    return primary if primary in metrics else next(iter(metrics), None)


def _task_rows(ds_name: str, task: str, t: dict, locality: list[tuple[str, dict, float]]) -> list[Row]:
    rows = []
    for probe, sets in t.get("probes", {}).items():
        metric = headline_metric(t, sets)
        if metric:
            rows.append(_row(ds_name, task, PROBE_NAMES.get(probe, probe), metric,
                             {fs: sets[fs].get(metric) for fs in sets}))
    knn = t.get("knn", {})
    k = knn_k(list(dict.fromkeys(k for accs in knn.values() for k in accs)))
    if k is not None:
        rows.append(_row(ds_name, task, f"k-NN@{k}", "accuracy", {fs: accs.get(k) for fs, accs in knn.items()}))
    for lab, scores, chance in locality:
        rows.append(_row(ds_name, task, lab, "neighbour share", scores, chance))
    spec = TASKS.get(t.get("type"))   # the task type's own rows: tempo head, Foote novelty, translation, ...
    if spec is not None and spec.summary is not None:
        rows += [_row(ds_name, task, probe, metric, scores) for probe, metric, scores in spec.summary(t)]
    return rows


def summary_table_rows(results: dict) -> list[Row]:
    """Every task's rows in report order; a locality attribute sits under the task probing that column."""
    rows = []
    for ds_name, ds in results.get("datasets", {}).items():
        loc = ds.get("locality", {})
        by_attr = {}
        for attr, chance in loc.get("chance", {}).items():
            scores = {fs: s.get(attr) for fs, s in loc.get("scores", {}).items()}
            by_attr[attr] = (f"locality@{loc.get('k')}", scores, chance)
        tasks = ds.get("tasks", {})
        for task, t in tasks.items():
            rows += _task_rows(ds_name, task, t, [by_attr.pop(t["column"])] if t.get("column") in by_attr else [])
        for attr, entry in by_attr.items():  # an attribute no task probes
            rows += _task_rows(ds_name, attr, {}, [entry])
    return rows


def _fmt(c: tuple | None) -> str:
    return f"{c[0]:.3f}" if c else MISSING


def _caption(rows: list[Row]) -> str:
    probes = list(dict.fromkeys("tempo head (Acc1, Acc2) vs librosa" if r.probe == "tempo head" else r.probe
                                for r in rows))
    metrics = sorted({r.metric for r in rows if r.probe in PROBE_NAMES.values()})
    seg = any(r.probe == "Foote novelty" for r in rows)
    return (f"Δ = model − random init (> 0: pretraining helped); ★ = best in the row; – = not run. Rows per task: "
            f"{', '.join(probes)}" + (f"; probes score {' / '.join(metrics)}, mean over seeds × folds" if metrics else "")
            + ("; segmentation's MFCC+chroma = the better of MFCC and chroma frames" if seg else "") + ".")


def add_summary(doc: Doc, results: dict) -> list[Row]:
    """The report's first screen: caption, table (model, baselines, Δ vs random init) and the same as a plot."""
    rows = summary_table_rows(results)
    if not rows:
        return rows
    cols = [c for c in COLUMNS if c in FEATURE_SETS or any(c in r.cells for r in rows)]
    cols += subspace_columns(rows)   # one column per named subspace of the model (issue 24)
    doc.heading("Summary")
    doc.para(_caption(rows))
    table, best = [], set()
    for i, r in enumerate(rows):
        delta = r.mean("model") - r.mean("random_init")
        table.append(r.shown + [_fmt(r.cells.get(c)) for c in cols]
                     + [f"{delta:+.3f}" if finite(delta) else MISSING])
        best |= {(i, 4 + cols.index(c)) for c in best_keys({c: r.mean(c) for c in cols})}
    doc.table(["dataset", "task", "probe", "metric"] + [column_name(c) for c in cols] + ["Δ vs random init"],
              table, best=best)
    labels = _labels(rows)
    doc.figure(summary_figure(labels, {column_name(c): [r.cells.get(c) for r in rows] for c in cols},
                              [r.chance for r in rows], [r.task for r in rows]),
               "summary: model, random init and classical baselines per task and probe, 95 % CI bars")
    return rows


def add_comparison_summary(doc: Doc, names: Sequence[str], results: Sequence[dict]) -> None:
    """Compare's first screen: the model's summary rows, one column per run, best run per row ★."""
    per_run = [{r.key: r for r in summary_table_rows(res)} for res in results]
    keys = list(dict.fromkeys(k for run in per_run for k in run))
    if not keys:
        return
    doc.heading("Summary")
    doc.para("Model features of each run, the rows of each run's report summary; ★ = best run in the row; "
             "– = not in that run.")
    series = {n: [run[k].cells.get("model") if k in run else None for k in keys] for n, run in zip(names, per_run)}
    rows = [next(run[k] for run in per_run if k in run) for k in keys]
    table, best = [], set()
    for i, row in enumerate(rows):
        cells = [series[n][i] for n in names]
        table.append(row.shown + [_fmt(c) for c in cells])
        best |= {(i, 4 + j) for j in best_keys({j: c[0] if c else float("nan") for j, c in enumerate(cells)})}
    doc.table(["dataset", "task", "probe", "metric", *names], table, best=best)
    doc.figure(summary_figure(_labels(rows), series, [r.chance for r in rows], [r.task for r in rows]),
               "summary: each run's model features per task and probe, 95 % CI bars")


def _labels(rows: list[Row]) -> list[str]:
    several = len({r.dataset for r in rows}) > 1
    return [(f"{r.dataset}/" if several else "") + f"{r.task} · {r.probe} · {r.metric}" for r in rows]


def summary_figure(labels: list[str], series: dict[str, list], chance: list, groups: list[str]):
    """Horizontal bars, a band per row; the series present in a row share its band (tempo rows have librosa
    where probe rows have MFCC+chroma), so no band holds empty slots. Error bars: 95 % CI where recorded."""
    plt = pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    n = len(labels)
    fig, ax = plt.subplots(figsize=(11.0, 1.1 + 0.34 * n))
    colours = {name: f"C{i}" for i, name in enumerate(series)}
    band, with_chance = 0.8, False
    lo_x, hi_x = 0.0, 1.0
    for r in range(n):
        present = [name for name, cells in series.items() if cells[r] is not None]
        h = band / max(1, len(present))
        for j, name in enumerate(present):
            mean, low, high = series[name][r]
            err = [[mean - low], [high - mean]] if low is not None else None
            ax.barh(r - band / 2 + h * (j + 0.5), mean, h, xerr=err, color=colours[name], capsize=2,
                    error_kw={"lw": 0.8})
            lo_x, hi_x = min(lo_x, mean if low is None else low), max(hi_x, mean if high is None else high)
        if chance[r] is not None and finite(chance[r]):
            ax.plot([chance[r]] * 2, [r - band / 2, r + band / 2], color="k", lw=1.5)
            with_chance = True
    for r in range(1, n):
        if groups[r] != groups[r - 1]:
            ax.axhline(r - 0.5, color="#bbb", lw=0.6)
    ax.set_yticks(np.arange(n), labels, fontsize=9)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlim(lo_x * 1.05, hi_x * 1.02)
    ax.grid(axis="x", color="#eee")
    ax.set_axisbelow(True)
    ax.set_xlabel("score (higher is better); whiskers: 95 % CI where the row has one", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    # handles drawn here, not taken from the bars: rows meet the series in another order than the table's
    handles = [Patch(color=colours[name], label=name) for name, cells in series.items() if any(cells)]
    handles += [Line2D([], [], color="k", lw=1.5, label="chance")] if with_chance else []
    ax.legend(handles=handles, fontsize=9, ncol=len(handles), loc="lower left", bbox_to_anchor=(0, 1.0),
              frameon=False)
    return fig


def comparison_rows(results: dict, feature_set: str = "model") -> dict[str, float]:
    """Flatten one run's headline numbers of one feature set (default: the model's) into {row label: value}."""
    fs = feature_set
    rows: dict[str, float] = {}
    for ds_name, ds in results.get("datasets", {}).items():
        for task, t in ds.get("tasks", {}).items():
            for probe, sets in t.get("probes", {}).items():
                for metric, s in sets.get(fs, {}).items():
                    rows[f"{ds_name}/{task}/{probe} {metric}"] = s["mean"]
            for k, acc in t.get("knn", {}).get(fs, {}).items():
                rows[f"{ds_name}/{task}/knn@{k}"] = acc
            spec = TASKS.get(t.get("type"))   # the task type's own rows: tempo, segmentation, translation, ...
            if spec is not None and spec.comparison is not None:
                rows.update({f"{ds_name}/{task}/{label}": v for label, v in spec.comparison(t, fs).items()})
        for attr, share in ds.get("locality", {}).get("scores", {}).get(fs, {}).items():
            rows[f"{ds_name}/locality/{attr}"] = share
    return rows
