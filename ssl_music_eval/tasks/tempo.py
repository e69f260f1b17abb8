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


SPEC = EvalTask("tempo", run, "tempo", where=True, attribute=True, bpm=True)
