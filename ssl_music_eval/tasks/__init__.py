"""Evaluation tasks: what a suite's ``tasks[].type`` names, found through the :data:`TASKS` registry (as
objectives are through ``OBJECTIVES``), one module per task type. Each spec (:class:`EvalTask`) says how a csv
dataset reads its column, which suite features apply to it (a ``where`` filter, locality, BPM tolerance, track
embeddings), how it runs on one dataset (``runner.evaluate_dataset`` calls ``TASKS[task.type].run(ctx, task)``
for every task), and, where a type has them, its own report section (``render``) and its rows in a comparison
of runs (``comparison``), which report.py and report_summary.py call by the results' ``type``. The suite's
checks read the same entries. A new task type is one module and one entry here, or a :func:`register` call
from outside.
"""
from __future__ import annotations

from ssl_music_eval.tasks import probe, robustness, segmentation, tempo, translation
from ssl_music_eval.tasks.base import NON_METRIC_KEYS, EvalTask, TaskContext

TASKS: dict[str, EvalTask] = {t.name: t for t in (*probe.SPECS, tempo.SPEC, segmentation.SPEC, translation.SPEC,
                                                 robustness.SPEC)}


def register(task: EvalTask) -> EvalTask:
    """Add a task type (a plug-in, a test); suites may name it from the next ``load_suite`` on."""
    TASKS[task.name] = task
    return task


__all__ = ["EvalTask", "NON_METRIC_KEYS", "TASKS", "TaskContext", "register"]
