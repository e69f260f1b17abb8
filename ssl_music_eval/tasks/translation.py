"""The ``translation`` task type: the checkpoint's tempo translator (ssl_music_eval.translation); its column is
the BPM."""
from __future__ import annotations

from ssl_music_eval.tasks.base import EvalTask, TaskContext


def run(ctx: TaskContext, task) -> dict:
    from ssl_music_eval.translation import translation_task

    return translation_task(ctx.cfg, ctx.spec, task, ctx.items, ctx.model, ctx.feats["model"], ctx.cache, ctx.progress)


SPEC = EvalTask("translation", run, "tempo", bpm=True)
