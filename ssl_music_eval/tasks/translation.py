"""The ``translation`` task type: the checkpoint's tempo translator (ssl_music_eval.translation); its column is
the BPM."""
from __future__ import annotations

from ssl_music_eval.tasks.base import EvalTask, TaskContext


def run(ctx: TaskContext, task) -> dict:
    from ssl_music_eval.translation import translation_task

    return translation_task(ctx.cfg, ctx.spec, task, ctx.items, ctx.model, ctx.feats["model"], ctx.cache, ctx.progress)


def check(cfg, spec, ds, task) -> None:
    """The property columns the translation's k-NN reads exist in the dataset."""
    from ssl_music.errors import ConfigError
    from ssl_music_eval.translation import attributes

    columns = set().union(*(it.labels.keys() for it in ds.items))
    for a in attributes(cfg, spec):
        if a not in columns:
            raise ConfigError(f"invalid value for suite key 'translation.attributes': dataset '{spec.name}' has no "
                              f"label column '{a}' (columns: {sorted(columns)}); a csv dataset reads only the "
                              "columns its tasks name")


def render(doc, task: str, t: dict) -> None:
    from ssl_music_eval.reports.translation_report import render as render_translation

    render_translation(doc, task, t["translation"])


def comparison(t: dict, feature_set: str) -> dict[str, float]:
    """The headline figures, of the model only (the translator is the checkpoint's)."""
    return dict(t.get("translation", {}).get("headline", {})) if feature_set == "model" else {}


def summary(t: dict) -> list:
    return [("translation", label, {"model": v}) for label, v in t.get("translation", {}).get("headline", {}).items()]


SPEC = EvalTask("translation", run, "tempo", bpm=True, check=check, render=render, comparison=comparison,
                summary=summary)
