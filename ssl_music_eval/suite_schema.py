"""The evaluation suite's schema: the YAML's sections as dataclasses, loading (the project's one config
system, ssl_music.config) and the checks that need no data. What runs a suite is :mod:`ssl_music_eval.suite`."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

from omegaconf import DictConfig, OmegaConf

from ssl_music_eval.tasks import TASKS
from ssl_music_eval.tempo import GRID_STEP, MAX_BPM, MIN_BPM
from ssl_music.config import apply_overrides, find_config, merge, read_yaml
from ssl_music.errors import ConfigError, did_you_mean, require


# ------------------------------------------------------------------------------------ dataset kinds
def _ds():
    from ssl_music_eval import datasets  # lazy: sklearn and friends load only when a suite runs

    return datasets


def _seg():
    from ssl_music_eval import segment_data

    return segment_data


def _csv_columns(spec: DictConfig) -> dict[str, str]:
    """Label columns a csv dataset reads: the tasks' own, plus the columns their ``where`` filters name."""
    cols = {_ds().split_where(t.where)[0]: "multiclass" for t in spec.tasks if t.where}
    return cols | {t.column: TASKS[t.type].column for t in spec.tasks}


# dataset kind -> (suite dataset entry -> EvalDataset): the one registry of formats evaluation reads
DATASET_LOADERS = {
    "synthetic": lambda spec: _ds().load_synthetic(spec.path),
    "csv": lambda spec: _ds().load_csv_manifest(spec.path, _csv_columns(spec), audio_root=spec.audio_root or None),
    "folder": lambda spec: _ds().load_folder_per_class(spec.path, task=spec.tasks[0].column),
    "tags": lambda spec: _ds().load_tag_csv(spec.path, audio_root=spec.audio_root or None,
                                            tags_col=spec.tags_col or None, top_n=spec.top_n or None,
                                            task=spec.tasks[0].column),
    "giantsteps": lambda spec: _ds().load_giantsteps(spec.path, spec.annotations or spec.path),
    "salami": lambda spec: _seg().load_salami(spec.path, spec.annotations or spec.path, level=spec.level),
    "harmonix": lambda spec: _seg().load_harmonix(spec.path, spec.annotations or spec.path),
    "concat": lambda spec: _seg().load_concatenated(
        spec.path, spec.concat.dir, clips_per_track=spec.concat.clips_per_track, tracks=spec.concat.tracks,
        min_clip_s=spec.concat.min_clip_s, sample_rate=spec.concat.sample_rate, seed=spec.concat.seed,
        audio_root=spec.audio_root or None, name=spec.name),
}


@dataclass
class TaskSpec:
    name: str = ""
    column: str = ""            # label column (tempo tasks: the BPM column)
    type: str = "multiclass"    # multiclass | multilabel | tempo | segmentation (column: the boundaries)
                                # | translation (column: the BPM; ssl_music_eval.translation)
    where: str = ""             # "COLUMN=VALUE": only items with that label, e.g. tempo on drums=true clips


@dataclass
class ConcatSpec:               # kind concat: clips of a labelled folder joined into tracks with known joins
    clips_per_track: int = 4
    tracks: int = 0             # 0 = as many as the clips give
    min_clip_s: float = 6.0     # each clip: a random excerpt of min_clip_s up to its whole length
    sample_rate: int = 22050
    seed: int = 0
    dir: str = ""               # where the joined tracks are written; "" = <out>/concat/<dataset name>


@dataclass
class DatasetSpec:
    name: str = ""
    kind: str = "synthetic"     # synthetic | csv | folder | tags | giantsteps | salami | harmonix | concat
    path: str = ""              # labels.csv | manifest CSV | class-folder root | tags CSV | GiantSteps, SALAMI or
                                # Harmonix audio folder | concat: the CSV manifest of the clips to join
    audio_root: str = ""        # where relative audio paths resolve (default: beside the CSV)
    annotations: str = ""       # giantsteps: <id>.LOFI.bpm / .key files (default: path); salami: the annotations
                                # folder (<id>/parsed/...); harmonix: the segments folder (or its parent)
    level: str = "uppercase"    # salami: uppercase | lowercase | functions
    tags_col: str = ""          # tags: one column of joined tags instead of one 0/1 column per tag
    top_n: int = 0              # tags: keep the N most frequent tags (MagnaTagATune: 50); 0 = all
    concat: ConcatSpec = field(default_factory=ConcatSpec)
    tasks: List[TaskSpec] = field(default_factory=list)


@dataclass
class ProbesSpec:
    linear: bool = True
    mlp: bool = False
    bootstrap: int = 1000     # resamples for the 95 % CIs


@dataclass
class KnnSpec:
    ks: List[int] = field(default_factory=lambda: [1, 5, 20])


@dataclass
class LocalitySpec:
    k: int = 10
    attributes: List[str] = field(default_factory=list)   # empty: every multiclass and tempo task's column
    tolerance: float = 0.04     # tempo columns: a neighbour agrees within ±4 % (MIREX Acc1), not exactly


@dataclass
class TempoSpec:
    reference: str = "click"    # click | drums reference clips
    min_bpm: float = MIN_BPM    # ssl_music_eval.tempo's grid defaults
    max_bpm: float = MAX_BPM
    step: float = GRID_STEP     # relative grid step
    windows: int = 4            # target windows averaged per file
    octave_correction: bool = True
    librosa: bool = True
    max_items: int = 0          # 0 = all


@dataclass
class SegmentationSpec:         # ssl_music_eval.segmentation: Foote novelty on timestamp embeddings, mir_eval hit rates
    hop_s: float = 0.5          # timestamp grid: one crop-length window every hop_s
    kernel_s: float = 12.0      # checkerboard kernel, full width
    peak_s: float = 3.0         # a boundary: the novelty maximum within +- peak_s (and >= peak_s after the last) ...
    mean_s: float = 6.0         # ... above its moving mean over +- mean_s ...
    delta: float = 0.1          # ... by delta (novelty scaled to max 1)
    windows: List[float] = field(default_factory=lambda: [0.5, 3.0])   # hit-rate tolerances (s)
    bootstrap: int = 1000       # track resamples for the 95 % intervals
    max_items: int = 0          # 0 = every track


@dataclass
class TranslationSpec:          # ssl_music_eval.translation: the checkpoint's tempo translator (ssl_music.translation)
    ratios: List[float] = field(default_factory=lambda: [0.8, 0.862, 0.928, 1.0, 1.077, 1.16, 1.25])
    attributes: List[str] = field(default_factory=list)   # property k-NN columns; empty: multiclass, not tempo
    k: int = 5                  # property k-NN neighbours
    tempo_classes: int = 6      # log-spaced over tempo.min_bpm .. tempo.max_bpm, for the augmentation probe
    demo_ratio: float = 1.2     # "same track, faster" retrieval demo
    demo_queries: int = 4
    max_items: int = 0          # 0 = every clip


@dataclass
class RobustnessSpec:           # ssl_music_eval.tasks.robustness: probes fitted on clean clips, scored on degraded copies
    degradations: List[str] = field(default_factory=lambda: [
        "white@20", "white@10", "white@0", "pink@20", "pink@10", "pink@0", "mp3@0.9", "reverb@1.0", "lowpass@3000"])
    seed: int = 0               # the degraded copies: identical for every compared model under one seed
    probe: str = "linear"       # linear | mlp


@dataclass
class AttentionSpec:            # ssl_music_eval.attention: where a self-attention model listens, drawn in the report
    clips: int = 2              # the dataset's first N clips (0 = none); models without attention draw nothing
    paths: List[str] = field(default_factory=list)   # or these clips, as the dataset lists them (a suffix will do)
    start_s: float = 0.0        # window start within each clip


@dataclass
class BaselinesSpec:
    random_init: bool = True
    mfcc_chroma: bool = True


@dataclass
class EmbedSpec:
    hop_s: Optional[float] = None   # window hop; None = crop length (non-overlapping)
    batch_size: int = 8
    cache_dir: str = ""             # "" = <out>/cache


@dataclass
class SuiteConfig:
    name: str = "suite"
    datasets: List[DatasetSpec] = field(default_factory=list)
    probes: ProbesSpec = field(default_factory=ProbesSpec)
    seeds: List[int] = field(default_factory=lambda: [0, 1, 2])
    folds: int = 5
    knn: KnnSpec = field(default_factory=KnnSpec)
    locality: LocalitySpec = field(default_factory=LocalitySpec)
    tempo: TempoSpec = field(default_factory=TempoSpec)
    segmentation: SegmentationSpec = field(default_factory=SegmentationSpec)
    translation: TranslationSpec = field(default_factory=TranslationSpec)
    robustness: RobustnessSpec = field(default_factory=RobustnessSpec)
    attention: AttentionSpec = field(default_factory=AttentionSpec)
    baselines: BaselinesSpec = field(default_factory=BaselinesSpec)
    embed: EmbedSpec = field(default_factory=EmbedSpec)
    projection: str = "pca"         # pca | tsne
    rare_classes: str = "error"     # a class with fewer items than folds: error | drop (from that task, noted)
    device: str = "cpu"


# ------------------------------------------------------------------------------------------- config
def load_suite(path: str | Path, overrides: Sequence[str] = (), data: Sequence[str] = ()) -> DictConfig:
    """Suite YAML <- ``key=value`` overrides (list items by index: ``datasets.0.path=...``) <- ``data``
    entries (``PATH`` for the first dataset or ``NAME=PATH``), then validated. The project's one config
    system (ssl_music.config) does the loading; keys are named 'suite key' in its errors. ``configs/eval/...``
    names the packaged suite when the working directory has no such file (find_config)."""
    path = find_config(path)
    cfg = merge(OmegaConf.structured(SuiteConfig), read_yaml(path, "suite file"), f"in {path}", "suite")
    cfg = apply_overrides(cfg, overrides, "suite")
    for entry in data:
        name, sep, p = entry.rpartition("=") if "=" in entry else ("", "", entry)
        idx = next((i for i, d in enumerate(cfg.datasets) if d.name == name), None) if name else 0
        if idx is None or not cfg.datasets:
            raise ConfigError(f"--data {entry}: suite has no dataset named '{name or '(first)'}'")
        cfg.datasets[idx].path = p
    validate_suite(cfg)
    return cfg


def _check(cond: bool, key: str, msg: str) -> None:
    require(cond, key, msg, "suite")


def validate_suite(cfg: DictConfig) -> None:
    from ssl_music_eval.degrade import parse

    for i, spec in enumerate(cfg.robustness.degradations):
        parse(spec, f"robustness.degradations.{i}")
    _check(cfg.robustness.probe in ("linear", "mlp"), "robustness.probe",
           f"must be linear or mlp, got '{cfg.robustness.probe}'")
    _check(len(cfg.datasets) > 0, "datasets", "the suite names no dataset")
    names = [d.name for d in cfg.datasets]
    _check(len(set(names)) == len(names), "datasets", f"dataset names must be unique, got {names}")
    for i, d in enumerate(cfg.datasets):
        key = f"datasets.{i}"
        _check(bool(d.name), f"{key}.name", "required")
        _check(d.kind in DATASET_LOADERS, f"{key}.kind", f"must be one of {tuple(DATASET_LOADERS)}, got '{d.kind}'")
        _check(bool(d.path), f"{key}.path", "required (or pass --data PATH)")
        _check(len(d.tasks) > 0, f"{key}.tasks", "list at least one task")
        for j, t in enumerate(d.tasks):
            _check(bool(t.name) and bool(t.column), f"{key}.tasks.{j}", "needs name and column")
            _check(t.type in TASKS, f"{key}.tasks.{j}.type",
                   f"must be one of {', '.join(TASKS)}, got '{t.type}'{did_you_mean(t.type, TASKS)}")
            _check(not t.where or (t.where.count("=") == 1 and all(p.strip() for p in t.where.split("="))),
                   f"{key}.tasks.{j}.where", f"must be COLUMN=VALUE, got '{t.where}'")
            takes = [n for n, spec in TASKS.items() if spec.where]
            _check(not t.where or TASKS[t.type].where, f"{key}.tasks.{j}.where",
                   f"applies to {', '.join(takes)} tasks, not {t.type}")
    _check(cfg.folds >= 2, "folds", f"must be >= 2, got {cfg.folds}")
    _check(len(cfg.seeds) > 0, "seeds", "list at least one seed")
    _check(all(k >= 1 for k in cfg.knn.ks) and len(cfg.knn.ks) > 0, "knn.ks", f"need ks >= 1, got {list(cfg.knn.ks)}")
    _check(cfg.locality.k >= 1, "locality.k", f"must be >= 1, got {cfg.locality.k}")
    _check(0 < cfg.locality.tolerance < 1, "locality.tolerance", f"must be in (0, 1), got {cfg.locality.tolerance}")
    _check(cfg.probes.linear or cfg.probes.mlp, "probes", "enable linear and/or mlp")
    _check(cfg.probes.bootstrap >= 0, "probes.bootstrap", f"must be >= 0 (0: no intervals), got {cfg.probes.bootstrap}")
    _check(cfg.tempo.reference in ("click", "drums"), "tempo.reference", f"must be click or drums, got '{cfg.tempo.reference}'")
    _check(0 < cfg.tempo.min_bpm < cfg.tempo.max_bpm, "tempo.min_bpm", "need 0 < min_bpm < max_bpm")
    _check(0 < cfg.tempo.step < 0.04, "tempo.step", f"must be in (0, 0.04) to resolve the 4 % tolerance, got {cfg.tempo.step}")
    _check(cfg.tempo.windows >= 1, "tempo.windows", "must be >= 1")
    _check(cfg.projection in ("pca", "tsne"), "projection", f"must be pca or tsne, got '{cfg.projection}'")
    _check(cfg.rare_classes in ("error", "drop"), "rare_classes", f"must be error or drop, got '{cfg.rare_classes}'")
    _check(cfg.embed.batch_size >= 1, "embed.batch_size", "must be >= 1")
    sg = cfg.segmentation
    _check(sg.bootstrap >= 0, "segmentation.bootstrap", f"must be >= 0 (0: no intervals), got {sg.bootstrap}")
    for k in ("hop_s", "kernel_s", "peak_s", "mean_s"):
        _check(sg[k] > 0, f"segmentation.{k}", f"must be > 0, got {sg[k]}")
    _check(sg.kernel_s >= 2 * sg.hop_s, "segmentation.kernel_s", "must span at least two frames (>= 2 x hop_s)")
    _check(len(sg.windows) > 0 and all(w > 0 for w in sg.windows), "segmentation.windows",
           f"need tolerances > 0, got {list(sg.windows)}")
    for i, d in enumerate(cfg.datasets):
        if d.kind == "salami":
            _check(d.level in ("uppercase", "lowercase", "functions"), f"datasets.{i}.level",
                   f"must be uppercase, lowercase or functions, got '{d.level}'")
        if d.kind == "concat":
            _check(d.concat.clips_per_track >= 2, f"datasets.{i}.concat.clips_per_track", "must be >= 2")
            _check(d.concat.min_clip_s > 0, f"datasets.{i}.concat.min_clip_s", "must be > 0")
    _check(cfg.attention.clips >= 0, "attention.clips", f"must be >= 0, got {cfg.attention.clips}")
    _check(cfg.attention.start_s >= 0, "attention.start_s", f"must be >= 0, got {cfg.attention.start_s}")
    _check(cfg.embed.hop_s is None or cfg.embed.hop_s > 0, "embed.hop_s", "must be > 0")
    tr = cfg.translation
    _check(len(tr.ratios) > 0 and all(r > 0 for r in tr.ratios) and any(r != 1 for r in tr.ratios),
           "translation.ratios", f"need ratios > 0, at least one != 1, got {list(tr.ratios)}")
    _check(tr.k >= 1 and tr.demo_queries >= 0 and tr.demo_ratio > 0, "translation.k",
           "need k >= 1, demo_queries >= 0 and demo_ratio > 0")
    _check(tr.tempo_classes >= 2, "translation.tempo_classes", f"must be >= 2, got {tr.tempo_classes}")
