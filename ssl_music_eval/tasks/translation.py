"""The ``translation`` task type: the checkpoint's tempo translator (ssl_music_eval.translation); its column is
the BPM."""
from __future__ import annotations

from ssl_music_eval.tasks.base import EvalTask, TaskContext


def run(ctx: TaskContext, task) -> dict:
    from ssl_music_eval.translation import translation_task

    return translation_task(ctx.cfg, ctx.spec, task, ctx.items, ctx.model, ctx.feats["model"], ctx.cache, ctx.progress)


def render(doc, task: str, t: dict) -> None:
    from ssl_music_eval.translation_report import render as render_translation

    render_translation(doc, task, t["translation"])


def comparison(t: dict, feature_set: str) -> dict[str, float]:
    """The headline figures, of the model only (the translator is the checkpoint's)."""
    return dict(t.get("translation", {}).get("headline", {})) if feature_set == "model" else {}


def summary(t: dict) -> list:
    return [("translation", label, {"model": v}) for label, v in t.get("translation", {}).get("headline", {}).items()]


SPEC = EvalTask("translation", run, "tempo", bpm=True, render=render, comparison=comparison, summary=summary)
