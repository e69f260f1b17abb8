"""The ``segmentation`` task type: boundary detection from frame features (ssl_music_eval.segmentation)."""
from __future__ import annotations

from ssl_music_eval.tasks.base import EvalTask, TaskContext


def run(ctx: TaskContext, task) -> dict:
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


def seg_rows(t: dict) -> list[tuple[str, dict]]:
    """[(tolerance, {feature set: {"f", "p", "r"}})] of a segmentation task's results."""
    scores = t.get("segmentation", {}).get("scores", {})
    keys = list(dict.fromkeys(k for s in scores.values() for k in s))
    return [(k[3:], {fs: s[k] for fs, s in scores.items() if k in s}) for k in keys]


def seg_classical(s: dict) -> dict | None:
    """Segmentation's classical baseline: the better of the MFCC and chroma frames (its F score dict)."""
    return max((s[b]["f"] for b in ("mfcc", "chroma") if b in s), key=lambda f: f["mean"], default=None)


def summary(t: dict) -> list:
    return [("Foote novelty", f"HR@{w} F", {"model": s.get("model", {}).get("f"),
                                             "random_init": s.get("random_init", {}).get("f"),
                                             "mfcc_chroma": seg_classical(s)}) for w, s in seg_rows(t)]


def terminal_rows(task: str, t: dict) -> list[dict]:
    """HR@w F per tolerance; the classical column is the better of MFCC and chroma frames."""
    return [{"task": task, "metric": f"HR@{w} F (classical: best)",
             **{fs: s.get(fs, {}).get("f", {}).get("mean", float("nan")) for fs in ("model", "random_init")},
             "mfcc_chroma": (seg_classical(s) or {}).get("mean", float("nan"))} for w, s in seg_rows(t)]


def _protocol(cfg) -> dict:
    from ssl_music_eval.segmentation import protocol

    return protocol(cfg.segmentation)


def _protocol_line(p: dict) -> str:
    from ssl_music_eval.segmentation import protocol_line

    return protocol_line(p)


def render(doc, task: str, t: dict) -> None:
    from ssl_music_eval import segmentation  # lazy: its report part draws the self-similarity figure
    from ssl_music_eval.reports.report_doc import fmt_score

    segmentation.report_part(doc, task, t["segmentation"], fmt_score)


def comparison(t: dict, feature_set: str) -> dict[str, float]:
    return {f"HR@{w} F": s[feature_set]["f"]["mean"] for w, s in seg_rows(t) if feature_set in s}


SPEC = EvalTask("segmentation", run, "segmentation", embeddings=False, render=render, comparison=comparison,
                summary=summary, protocol=_protocol, protocol_line=_protocol_line, terminal_rows=terminal_rows)
