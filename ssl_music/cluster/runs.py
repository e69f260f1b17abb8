"""The state of one run folder: how far it got, and whether what it recorded still matches its inputs.

A run folder holds config.yaml, checkpoints/, DONE (pretraining reached max_steps; JSON with the step and the
fingerprint of the inputs it ran with), results.json (evaluated; with the evaluation's fingerprint) or FAILED.
Used by sweeps and by benchmarks/real_music.py, so both reuse a stage by the same rule. A run of an arm at a
pretraining seed is named ``<arm>-seed<N>`` by :func:`run_name`, and :func:`split_run_name` reads it back
(``report compare`` groups runs into arms by it).
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ssl_music.provenance import recorded

SEED_SUFFIX = re.compile(r"-seed(\d+)$")


def run_name(arm: str, seed: int | None = None) -> str:
    """The folder name of ``arm``'s run at pretraining ``seed``: ``shipped-seed2``; the arm alone without a seed."""
    return str(arm) if seed is None else f"{arm}-seed{int(seed)}"


def split_run_name(name: str, seed: int | None = None) -> tuple[str, int | None]:
    """:func:`run_name` read back: ``shipped-seed2`` -> (``shipped``, 2); a name without the suffix is its own
    arm with ``seed`` (e.g. the config's trainer.seed) or None."""
    m = SEED_SUFFIX.search(name)
    if m:
        return name[: m.start()], int(m.group(1))
    return name, seed


def run_state(run_dir: Path) -> tuple[str, int | None]:
    """(state, step): evaluated | pretrained | failed | pending, with the last step reached if known."""
    step = None
    done = run_dir / "DONE"
    if done.is_file():
        try:
            step = int(json.loads(done.read_text())["global_step"])
        except (ValueError, KeyError, TypeError):
            step = None
    else:
        steps = [int(m.group(1)) for p in (run_dir / "checkpoints").glob("step-*.ckpt")
                 if (m := re.fullmatch(r"step-(\d+)\.ckpt", p.name))]
        step = max(steps) if steps else None
    if (run_dir / "results.json").is_file():
        return "evaluated", step
    if (run_dir / "FAILED").is_file():  # removed whenever the run is started again
        return "failed", step
    if done.is_file():
        return "pretrained", step
    return "pending", step


# What an evaluation leaves in a run folder: moved aside when only the evaluation is stale.
EVALUATION_FILES = ("results.json", "report.md", "report.html", "figures", "cache", "evaluate.log")


def completed_fingerprint(run_dir: Path) -> str | None:
    """The code-free pretraining fingerprint of the run's saved config.yaml completed with this version's
    defaults (``config.saved_config``): what the run's config is today, keys added since included at their
    defaults. None without a readable config."""
    from ssl_music.config import saved_config
    from ssl_music.provenance import pretrain_fingerprint

    try:
        stored = OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"), resolve=False)
    except (OSError, ValueError, OmegaConfBaseException):
        return None
    stored.pop("provenance", None)
    return pretrain_fingerprint(saved_config(stored), code=False)


def _recorded_pretraining(run_dir: Path, key: str) -> str | None:
    """The pretraining fingerprint a run recorded under ``key``: its DONE's when finished, else the one its
    saved config was started with when it has checkpoints; None when nothing has run."""
    if (run_dir / "DONE").is_file():
        return recorded(run_dir / "DONE", key)
    saved = run_dir / "config.yaml"
    if any((run_dir / "checkpoints").glob("*.ckpt")):
        return OmegaConf.select(OmegaConf.load(saved), f"provenance.{key}", default=None) if saved.is_file() else None
    return None


def standing_for(run_dir: Path, pre: str, key: str) -> str:
    """The pretraining fingerprint that ``run_dir``'s (finished or started) pretraining stands for when it is
    reused for ``pre``: across code (``inputs_config``), the one it recorded when only keys added since tell
    them apart — a new option that changes nothing for a run that predates it must not make every run stale —
    else ``pre``. Its evaluation was fingerprinted with the recorded one, so that is what a reused evaluation
    must match."""
    if key != "inputs_config":
        return pre
    old = _recorded_pretraining(run_dir, key)
    return old if old and old != pre and completed_fingerprint(run_dir) == pre else pre


def stale_reason(run_dir: Path, inputs: tuple[str, ...]) -> str | None:
    """Why the finished or started stages in ``run_dir`` cannot be reused for ``inputs`` (pretraining and
    evaluation fingerprints, and optionally the key they are recorded under; a sweep passes the pretraining
    fingerprint through ``standing_for``); None if they can (or nothing has run)."""
    pre, ev, key = (*inputs, "inputs")[:3]
    done = run_dir / "DONE"
    matches = _recorded_pretraining(run_dir, key) == pre
    if (run_dir / "results.json").is_file() and recorded(run_dir / "results.json", key) != ev:
        if done.is_file() and matches:
            return "evaluation: its evaluation recorded other inputs (suite, its overrides or code)"
        return "its evaluation recorded other inputs (pretraining, suite, overrides or code)"
    if done.is_file() and not matches:
        return "its pretraining recorded other inputs (config, seed or code)"
    if not done.is_file() and any((run_dir / "checkpoints").glob("*.ckpt")) and not matches:
        return "its unfinished pretraining started with other inputs (config, seed or code)"
    return None


def retire(run_dir: Path, reason: str = "") -> Path:
    """Move the stale part of ``run_dir`` to ``run_dir/stale/<UTC time>/``: the evaluation's files when only
    the evaluation is stale (its pretraining is reused), else everything but earlier stale copies."""
    dest = run_dir / "stale" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest.mkdir(parents=True, exist_ok=True)
    only_eval = reason.startswith("evaluation:")
    for entry in run_dir.iterdir():
        if entry.name != "stale" and (not only_eval or entry.name in EVALUATION_FILES):
            entry.rename(dest / entry.name)
    return dest
