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


SPEC = EvalTask("segmentation", run, "segmentation", embeddings=False)
