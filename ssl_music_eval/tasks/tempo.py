"""The ``tempo`` task type: BPM estimates of the model's tempo head (and librosa's) against a column's tempi."""
from __future__ import annotations

from ssl_music_eval.tasks.base import EvalTask, TaskContext


def run(ctx: TaskContext, task) -> dict:
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


def render(doc, task: str, t: dict) -> None:
    """Acc1 / Acc2 of the tempo head and librosa, as a table and bars; why the head was not evaluated if so."""
    from ssl_music_eval.reports.report_doc import bars

    tempo = t.get("tempo", {})
    systems = [s for s in ("model", "librosa") if s in tempo]
    doc.table(["system", "Acc1", "Acc2", "n"],
              [[s, f"{tempo[s]['acc1']:.3f}", f"{tempo[s]['acc2']:.3f}", str(tempo.get("n", ""))] for s in systems])
    if "model_error" in tempo:
        doc.para(f"Tempo head not evaluated: {tempo['model_error']}")
    if systems:
        doc.figure(bars(["Acc1", "Acc2"], {s: [tempo[s]["acc1"], tempo[s]["acc2"]] for s in systems},
                        f"{task}: tempo accuracy", "accuracy"), f"{task} tempo accuracy")


def protocol(cfg) -> dict:
    t = cfg.tempo
    return {"reference": t.reference, "grid": f"{t.min_bpm:g}–{t.max_bpm:g} BPM in {100 * t.step:g} % steps",
            "windows": int(t.windows), "octave_correction": bool(t.octave_correction)}


def protocol_line(p: dict) -> str:
    return (f"Tempo: same-vs-different head against {p.get('reference', 'click')} reference clips on a BPM grid "
            f"({p.get('grid', '')}); Acc1 ±4 %, Acc2 also ×2, ×3, ½, ⅓; librosa baseline.")


def terminal_rows(task: str, t: dict) -> list[dict]:
    """The head's Acc1 / Acc2, librosa's in the classical-baseline column (no random-init head exists)."""
    tempo = t.get("tempo", {})
    if "model" not in tempo:
        return []
    return [{"task": task, "metric": f"head {m} (librosa)", "model": tempo["model"][m], "random_init": float("nan"),
             "mfcc_chroma": tempo.get("librosa", {}).get(m, float("nan"))} for m in ("acc1", "acc2")]


def comparison(t: dict, feature_set: str) -> dict[str, float]:
    tempo = t.get("tempo", {})
    return {f"tempo {m}": tempo[feature_set][m] for m in ("acc1", "acc2")} if feature_set in tempo else {}


def summary(t: dict) -> list:
    """Acc1 and Acc2 of the head, librosa's beside it."""
    tempo = t.get("tempo", {})
    systems = {s: v for s, v in tempo.items() if isinstance(v, dict)}   # model, librosa (n and errors are not)
    return [("tempo head", m.capitalize(), {s: v.get(m) for s, v in systems.items()})
            for m in ("acc1", "acc2") if any(m in v for v in systems.values())]


SPEC = EvalTask("tempo", run, "tempo", where=True, attribute=True, bpm=True, render=render, comparison=comparison,
                summary=summary, protocol=protocol, protocol_line=protocol_line, terminal_rows=terminal_rows)
