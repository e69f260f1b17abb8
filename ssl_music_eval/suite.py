"""Evaluation suites: one YAML names the datasets, tasks and protocol; ``run_suite`` runs it on a checkpoint.

Order of work (every check a user can act on comes before the first embedding):
  1. suite YAML + overrides -> structured config (unknown keys / bad values -> ConfigError naming the key;
     the schema and these checks: ssl_music_eval.suite_schema)
  2. checkpoint -> encoder (not an ssl_music checkpoint -> SSLMusicError naming the file)
  3. datasets loaded; label columns, locality attributes and class counts vs folds checked
  4. embeddings (cached) for the model and the baselines -> probes, k-NN, locality, tempo, projection,
     segmentation (timestamp embeddings -> self-similarity -> boundaries, ssl_music_eval.segmentation)
  5. results.json + report.md + report.html
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Sequence

from omegaconf import DictConfig, OmegaConf

from ssl_music_eval.suite_schema import DATASET_LOADERS, SuiteConfig, load_suite, validate_suite  # noqa: F401
from ssl_music.errors import ConfigError, SSLMusicError
from ssl_music.threads import blas_limited

SKIPS_SHOWN = 10  # skipped files `ssl-music evaluate` names on the terminal (the report lists them all)


# ------------------------------------------------------------------------------------------- datasets
def load_dataset(spec: DictConfig):
    """Suite dataset entry -> EvalDataset, through the loaders of ssl_music_eval.datasets."""
    try:
        ds = DATASET_LOADERS[spec.kind](spec)
    except SSLMusicError as exc:
        raise ConfigError(f"dataset '{spec.name}' (kind {spec.kind}, path {spec.path}): {exc}") from None
    ds.name = spec.name
    return ds


def _labels(items, column: str) -> list:
    return [it.labels.get(column) for it in items]


def check_dataset(cfg: DictConfig, spec: DictConfig, index: int, ds, locality_attrs: Sequence[str]) -> None:
    """Label columns exist, ``where`` filters match, locality attributes exist; then each task type's own
    check (``TASKS[type].check``: a multiclass task's classes split into folds, a translation task's columns)."""
    from ssl_music_eval.tasks import TASKS

    key = f"datasets.{index}"
    if not ds.items:
        raise ConfigError(f"{key} ('{spec.name}'): no items found in {spec.path}")
    columns = set().union(*(it.labels.keys() for it in ds.items))
    for j, t in enumerate(spec.tasks):
        if t.column not in columns:
            raise ConfigError(f"invalid value for suite key '{key}.tasks.{j}.column': dataset '{spec.name}' "
                              f"({spec.path}) has no label column '{t.column}' (columns: {sorted(columns)})")
    from ssl_music_eval.datasets import matches_where, split_where  # lazy: sklearn and friends

    for j, t in enumerate(spec.tasks):
        col = split_where(t.where)[0]
        if t.where and col not in columns:
            raise ConfigError(f"invalid value for suite key '{key}.tasks.{j}.where': dataset '{spec.name}' "
                              f"({spec.path}) has no label column '{col}' (columns: {sorted(columns)})")
        if t.where and not any(matches_where(it, t.where) for it in ds.items):
            held = sorted({str(v) for v in _labels(ds.items, col) if v not in (None, "")})
            raise ConfigError(f"invalid value for suite key '{key}.tasks.{j}.where': '{t.where}' matches no item "
                              f"of dataset '{spec.name}' ({spec.path}): column '{col}' holds {', '.join(held[:8])}"
                              f"{', ...' if len(held) > 8 else ''}")
    for a in locality_attrs:
        if a not in columns:
            raise ConfigError(f"invalid value for suite key 'locality.attributes': dataset '{spec.name}' has no "
                              f"label column '{a}' (columns: {sorted(columns)})")
    for t in spec.tasks:
        if TASKS[t.type].check is not None:
            TASKS[t.type].check(cfg, spec, ds, t)


# ------------------------------------------------------------------------------------------- running
@blas_limited  # librosa and scikit-learn run between torch calls here (ssl_music.threads); lifted on return
def run_suite(checkpoint: str | Path, suite_path: str | Path, out_dir: str | Path, overrides: Sequence[str] = (),
              *, data: Sequence[str] = (), model: Any = None, random_model: Any = None, progress: bool = True) -> dict:
    """Evaluate ``checkpoint`` on every dataset of the suite; writes the report into ``out_dir``.

    ``model`` / ``random_model`` replace the encoders loaded from the checkpoint (tests, notebooks).
    """
    cfg = load_suite(suite_path, overrides, data)
    if model is None:
        from ssl_music.api import load_encoder

        model = load_encoder(checkpoint, device=cfg.device)
    from ssl_music_eval.runner import locality_attributes

    out = Path(out_dir)
    loaded = []
    for i, spec in enumerate(cfg.datasets):
        if spec.kind == "concat" and not spec.concat.dir:
            spec.concat.dir = str(out / "concat" / spec.name)
        ds = load_dataset(spec)
        check_dataset(cfg, spec, i, ds, locality_attributes(cfg, spec))
        loaded.append((spec, ds))
    if cfg.baselines.random_init and random_model is None:
        from ssl_music.api import load_encoder

        random_model = load_encoder(checkpoint, device=cfg.device, random_init=True)

    from ssl_music_eval.reports.report import write_report
    from ssl_music_eval.runner import evaluate_dataset, protocol
    from ssl_music.provenance import code_version, evaluation_fingerprint, model_inputs

    cache = Path(cfg.embed.cache_dir) if cfg.embed.cache_dir else out / "cache"
    model_cfg = getattr(model, "cfg", None)
    model_cfg = model_cfg if isinstance(model_cfg, DictConfig) else OmegaConf.create({})
    results = {
        "format": "ssl_music.eval/1", "run": out.name, "checkpoint": str(checkpoint),
        "identity": str(model.identity), "suite": str(suite_path), "overrides": list(overrides) + list(data),
        "inputs": evaluation_fingerprint(model_inputs(model_cfg, str(model.identity)), suite_path, overrides, data),
        "inputs_config": evaluation_fingerprint(model_inputs(model_cfg, str(model.identity), code=False), suite_path,
                                                overrides, data, code=False),
        "provenance": OmegaConf.to_container(model_cfg.provenance) if "provenance" in model_cfg else {},
        "evaluated_with": code_version(),
        "created": _dt.datetime.now().isoformat(timespec="seconds"), "protocol": protocol(cfg, model),
        "datasets": {spec.name: evaluate_dataset(cfg, spec, ds, model, random_model if cfg.baselines.random_init else None,
                                                 cache, progress) for spec, ds in loaded},
    }
    write_report(results, out)
    return results
