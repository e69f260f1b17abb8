"""What every evaluation task type shares: the dataset as its tasks see it (:class:`TaskContext`) and the
spec a task type registers (:class:`EvalTask`), found through ``ssl_music_eval.tasks.TASKS``."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

NON_METRIC_KEYS = ("per_seed", "confusion", "classes", "protocol")


@dataclass
class TaskContext:
    """One dataset as its tasks see it: the items every feature set embedded, their features, the models."""
    cfg: Any
    spec: Any
    items: list
    feats: dict[str, np.ndarray]
    model: Any
    random_model: Any
    cache: Path | None
    progress: bool
    skipped: list = field(default_factory=list)   # [path, reason]; a task that reads audio itself adds to it
    memo: dict = field(default_factory=dict)       # work tasks of one dataset share (robustness: degraded copies)


@dataclass(frozen=True)
class EvalTask:
    name: str
    run: Callable[[TaskContext, Any], dict]
    column: str                # how a csv dataset reads the task's column (datasets.TASK_KINDS)
    where: bool = False        # takes a ``where: COLUMN=VALUE`` filter
    embeddings: bool = True    # needs track embeddings (segmentation scores frames of its own)
    attribute: bool = False    # its column is a default locality attribute and labels the projection
    bpm: bool = False          # its column holds tempi: locality matches them within locality.tolerance
    # what it needs of a loaded dataset, checked before any embedding: (suite cfg, dataset spec, dataset, task)
    # -> None, or a ConfigError naming the suite key at fault
    check: Optional[Callable[[Any, Any, Any, Any], None]] = None
    # its own section of a report, after the parts every task's results share (probe and k-NN tables):
    # (doc, task name, the task's results) -> None
    render: Optional[Callable[[Any, str, dict], None]] = None
    # its rows in a comparison of runs: (the task's results, feature set) -> {label under the task: value},
    # every value higher-is-better
    comparison: Optional[Callable[[dict, str], dict]] = None
    # its rows in a report's first-screen summary: the task's results -> [(probe, metric, {column: score})], a
    # score a number or {mean, ci_low, ci_high}; columns are feature sets or librosa
    summary: Optional[Callable[[dict], list]] = None
    # its settings in a suite's protocol, recorded as ``protocol[<name>]`` when a dataset of the suite has a task
    # of this type: (suite cfg) -> dict; and that entry as one line of the report's protocol section
    protocol: Optional[Callable[[Any], dict]] = None
    protocol_line: Optional[Callable[[dict], str]] = None
    # its rows in the terminal summary (``report.summary_rows``, the demo's table): (task name, the task's
    # results) -> [{task, metric, model, random_init, mfcc_chroma}]
    terminal_rows: Optional[Callable[[str, dict], list]] = None
