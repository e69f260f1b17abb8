"""Structured configs: one dataclass per part of the pipeline, mapped one-to-one onto the code it configures.

A run's config is built from (in order, later wins): the dataclass defaults, the augmentation preset named
by ``augment.preset`` (``configs/augment/<preset>.yaml``), the YAML file given by the user, and dotlist
overrides (``key=value``). Unknown keys and bad values raise :class:`ConfigError` naming the key, at
start-up, before any work is done.

Where config files are found: :mod:`ssl_music.resources`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from ssl_music.errors import ConfigError, did_you_mean, require, require_choice
# CONFIG_DIR, find_config, preset_path: named here too, where callers have always found them
from ssl_music.resources import CONFIG_DIR, find_config, not_found_note, preset_dirs, preset_names, preset_path  # noqa: F401



# ----------------------------------------------------------------------------------------------- data
@dataclass
class DataConfig:
    shards: str = ""                 # folder with manifest.json and *.tar shards
    sample_rate: int = 16000
    crop_s: float = 3.0
    batch_size: int = 32
    num_workers: int = 2
    batches_per_epoch: int = 100     # every rank yields exactly this many batches per epoch
    shuffle_buffer: int = 64         # samples; shuffling happens before decoding
    seed: int = 0
    # + one section per registered objective, data.<name>: how its views are sampled (see schema())


# ---------------------------------------------------------------------------------------- augmentation
@dataclass
class TransformConfig:
    p: float = 1.0
    params: Dict[str, Any] = field(default_factory=dict)


@dataclass
class AugmentConfig:
    preset: str = "none"      # configs/augment/<preset>.yaml supplies the chain
    # cpu: audiomentations in workers | gpu: batched torch after transfer | spectral: batched on the
    # magnitude STFT of a spectrogram front-end (ssl_music.augment.spectral)
    backend: str = "gpu"
    chain: Dict[str, TransformConfig] = field(default_factory=dict)  # YAML order = application order


# ---------------------------------------------------------------------------------------------- models
@dataclass
class ModelConfig:
    frontend: str = "logmel"          # logmel | harmonic | logfreq (semitone axis) | raw
    encoder: str = "tiny"             # tiny | short_chunk_resnet | samplecnn | harmonic_cnn
    embed_dim: int = 512
    width: int = 64                   # base channel count of the encoder
    n_mels: int = 96
    win_ms: float = 25.0
    hop_ms: float = 10.0
    proj_hidden: int = 512
    proj_dim: int = 128
    tempo_hidden: int = 256
    # tiny / short_chunk_resnet: log-lag onset autocorrelation features in the embedding's last dimensions.
    # fixed: of the input spectrogram (no gradient reaches the encoder) | learned: of learned onset channels over
    # the encoder's frames | off. Any: configs written before `learned` hold a bool (true = fixed, false = off)
    periodicity: Any = "off"
    pitch_classes: int = 0            # tiny + frontend logfreq: filters of the key-preserving pitch-class pooling
    block_norm: bool = False          # embedding = unit-length learned block + periodicity block (Encoder.normalise_blocks)
    periodicity_weight: float = 0.1   # with block_norm: the periodicity block's length in the unit-length embedding
    # each part of head_split to unit length on its own (Encoder.normalise_parts); false: one norm (block_norm)
    part_norm: bool = False
    # tiny / short_chunk_resnet: the learned block as independent dense heads of these sizes on the pooled
    # features (one per named subspace, objectives.subspaces.dims); [] = one dense head
    head_split: List[int] = field(default_factory=list)
    head_reads: List[str] = field(default_factory=list)   # per part of head_split: all | pooled | pitch_classes
    # what summarises the encoder's frames over time (ssl_music.models.backends): pool (mean + max) | attention
    # (a Transformer with a class token; train it on a longer data.crop_s, e.g. 10 s)
    backend: str = "pool"
    backend_dim: int = 128            # attention: token width
    backend_heads: int = 4
    backend_layers: int = 2
    backend_dropout: float = 0.1
    # per-example loudness normalisation before the front-end (Encoder.loudness_normalised): none | rms (every
    # clip brought to RMS_TARGET, so a gain change leaves the embedding as it is). none: as checkpoints before it
    input_norm: str = "none"


# -------------------------------------------------------------------------------------------- training
@dataclass
class OptimConfig:
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100


@dataclass
class TrainerConfig:
    root_dir: str = "runs/default"    # fixed across restarts and SLURM requeues: resume reads it
    max_steps: int = 1000
    accelerator: str = "auto"
    devices: Any = "auto"
    num_nodes: int = 1
    strategy: str = "auto"            # auto | ddp | ddp_spawn
    precision: str = "auto"           # auto: bf16-mixed on GPU, 32 on CPU
    accumulate_grad_batches: int = 1
    sync_batchnorm: bool = False
    gradient_clip_val: float = 0.0
    ckpt_every_n_steps: int = 200
    log_every_n_steps: int = 10
    logger: str = "csv"               # csv | wandb | none
    wandb_mode: str = "offline"       # offline | online | disabled
    wandb_project: str = "ssl_music"
    progress_bar: bool = True
    seed: int = 0


@dataclass
class MonitorConfig:
    every_n_steps: int = 0            # 0 = off; else embed a labelled set and log k-NN accuracy
    labels_csv: str = ""              # e.g. the synthetic corpus's labels.csv
    labels: List[str] = field(default_factory=lambda: ["tempo", "key", "timbre", "style"])
    k: int = 5
    max_items: int = 200


@dataclass
class Config:
    name: str = "run"
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objectives: Dict[str, Any] = field(default_factory=dict)   # objectives.<name> per registered objective
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    # Written by pretraining, never read back as a setting: seeds, code version, lock hash, threads
    # (ssl_music.provenance). Free-form so that a saved config.yaml loads again as it is.
    provenance: Dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------- loading
# The one config system: pretraining configs, evaluation suites and sweep files are each a structured
# schema loaded with read_yaml -> merge -> apply_overrides -> a validate function using errors.require.
# ``what`` ("config", "suite", ...) is the word error messages use for a key.
def _describe(exc: OmegaConfBaseException, source: str, what: str = "config", cfg: Any = None) -> str:
    key = getattr(exc, "full_key", None) or getattr(exc, "key", None)
    if isinstance(exc, (ConfigKeyError, ConfigAttributeError)) or "not in struct" in str(exc):
        return f"unknown {what} key '{key}' ({source}){_near_key(cfg, str(key))}"
    msg = str(exc).splitlines()[0]
    return f"invalid value for {what} key '{key}' ({source}): {msg}"


def _near_key(cfg: Any, key: str) -> str:
    """"; did you mean 'data.crop_s'?" for a misspelt key, from its siblings in ``cfg`` (the schema)."""
    parent, _, last = key.rpartition(".")
    node = OmegaConf.select(cfg, parent, default=None) if parent and isinstance(cfg, DictConfig) else cfg
    if not isinstance(node, DictConfig):
        return ""
    return did_you_mean(last, [str(k) for k in node.keys()], f"{parent}." if parent else "")


def merge(base: DictConfig, other: Any, source: str, what: str = "config") -> DictConfig:
    """``base`` with ``other`` merged in; a key or value the schema refuses -> ConfigError naming it."""
    try:
        return OmegaConf.merge(base, other)
    except OmegaConfBaseException as exc:
        raise ConfigError(_describe(exc, source, what, base)) from None


def read_yaml(path: Path, what: str) -> DictConfig:
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}{not_found_note(Path(path))}")
    try:
        cfg = OmegaConf.load(path)
    except Exception as exc:  # yaml errors come in several types
        raise ConfigError(f"cannot parse {what} {path}: {exc}") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{what} {path} must be a mapping at the top level")
    return cfg


def dotlist(overrides: Sequence[str]) -> DictConfig:
    """``key=value`` strings -> one DictConfig (values parsed as YAML, as OmegaConf does)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key=value")
    try:
        return OmegaConf.from_dotlist(list(overrides))
    except Exception as exc:
        raise ConfigError(f"cannot parse overrides {list(overrides)}: {exc}") from None


def _through_list(cfg: DictConfig, key: str) -> bool:
    node: Any = cfg
    for part in key.split("."):
        if isinstance(node, ListConfig):
            return True
        node = node.get(part) if isinstance(node, DictConfig) else None
        if node is None:
            return False
    return False


def apply_overrides(cfg: DictConfig, overrides: Sequence[str], what: str = "config",
                    source: str = "command-line override") -> DictConfig:
    """Apply ``key=value`` overrides in order. A key through a list addresses its items by index
    (``datasets.0.path=...``); any other key merges like a YAML layer, so a new entry of a free-form
    mapping (``augment.chain.gain.p=0.5``) can be added."""
    for item in overrides:
        key = item.partition("=")[0]
        layer = dotlist([item])
        try:
            if _through_list(cfg, key):
                OmegaConf.update(cfg, key, OmegaConf.select(layer, key), merge=True)
            else:
                cfg = OmegaConf.merge(cfg, layer)
        except OmegaConfBaseException as exc:
            raise ConfigError(_describe(exc, source, what, cfg)) from None
    return cfg


def _preset_name(*layers: DictConfig) -> Optional[str]:
    name = None
    for layer in layers:
        value = OmegaConf.select(layer, "augment.preset", default=None)
        if value is not None:
            name = str(value)
    return name


def _check_chain_edits(preset: str, preset_chain: set[str], layers: Sequence[tuple[str, DictConfig]]) -> None:
    """A preset defines a whole chain; a later layer may change a transform the chain has, or add one
    *with its p*. An entry without ``p`` for a transform the chain lacks is refused: it would silently
    add that transform at p=1.0 (an ablation arm named ``none`` that time-stretches every view)."""
    have = set(preset_chain)
    for where, layer in layers:
        for name, spec in (OmegaConf.select(layer, "augment.chain", default=None) or {}).items():
            if name in have:
                continue
            if not isinstance(spec, DictConfig) or "p" not in spec:
                raise ConfigError(
                    f"invalid config key 'augment.chain.{name}' ({where}): augment preset '{preset}' has no "
                    f"{name}, so this entry would add it at p=1.0; add it with its p "
                    f"(augment.chain.{name}.p=...) or choose a preset that has it")
            have.add(name)


def schema() -> DictConfig:
    """The defaults: :class:`Config` plus, for every registered objective, its ``objectives.<name>`` and
    ``data.<name>`` sections (typed, unknown keys refused like everywhere else)."""
    from ssl_music.objectives import OBJECTIVES

    cfg = OmegaConf.structured(Config)
    with open_dict(cfg.objectives), open_dict(cfg.data):
        for name, spec in OBJECTIVES.items():
            cfg.objectives[name] = OmegaConf.structured(spec.config)
            cfg.data[name] = OmegaConf.structured(spec.views)
    OmegaConf.set_struct(cfg.objectives, True)  # a section for an unregistered objective is an unknown key
    return cfg


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> DictConfig:
    """Defaults ← augment preset ← YAML file ← dotlist overrides, then validated."""
    base = schema()
    path = find_config(path) if path else None
    file_cfg = read_yaml(path, "config file") if path else OmegaConf.create({})
    dot = dotlist(overrides)

    preset = _preset_name(base, file_cfg, dot)
    cfg = base
    preset_chain: set[str] = set()
    if preset and preset != "none":
        found = preset_path(preset)
        if found is None:
            names = preset_names()
            where = ", ".join(f"{label} ({folder})" if not label.startswith("./") else label
                              for label, folder in preset_dirs())
            raise ConfigError(f"invalid value for config key 'augment.preset': no preset '{preset}.yaml' in "
                              f"{where} (presets: {', '.join(names)}){did_you_mean(preset, names)}")
        preset_cfg = read_yaml(found, f"augment preset '{preset}' (augment.preset)")
        cfg = merge(cfg, {"augment": preset_cfg}, f"augment preset {found}")
        preset_chain = set(OmegaConf.select(preset_cfg, "chain", default=None) or {})
    cfg = merge(cfg, file_cfg, f"in {path}" if path else "defaults")
    cfg = apply_overrides(cfg, overrides)
    validate(cfg)  # first, so that a bad value is named by its own key
    _check_chain_edits(preset or "none", preset_chain,
                       [(f"in {path}" if path else "defaults", file_cfg), ("command-line override", dot)])
    return cfg


def load_augment(cfg_path: str | Path, overrides: Sequence[str] = ()) -> tuple[DictConfig, DictConfig]:
    """(augment_cfg, data_cfg) from a pretrain config or a preset file (top-level ``chain:``): what
    ``ssl-music augment preview`` plays."""
    cfg_path = find_config(cfg_path)
    raw = OmegaConf.load(cfg_path) if Path(cfg_path).is_file() else None
    if raw is None:
        raise ConfigError(f"config file not found: {cfg_path}{not_found_note(Path(cfg_path))}")
    if "chain" in raw and "augment" not in raw:
        from ssl_music.augment.chain import validate_chain

        try:
            aug = OmegaConf.merge(OmegaConf.structured(AugmentConfig), raw, OmegaConf.from_dotlist(list(overrides)))
        except Exception as exc:
            raise ConfigError(f"invalid augment preset {cfg_path}: {exc}") from None
        data = schema().data
        validate_chain(aug.chain, data.sample_rate)
        return aug, data
    cfg = load_config(cfg_path, overrides)
    return cfg.augment, cfg.data


def saved_config(stored: Any) -> DictConfig:
    """A config a checkpoint or export stored, completed with this version's defaults for the sections it
    predates (an objective registered since is off: every objective's default weight but contrastive's is 0,
    and contrastive is as old as checkpoints). Keys this version no longer has are kept, not refused: the
    file is read, not validated."""
    base = schema()
    OmegaConf.set_struct(base, False)
    try:
        return OmegaConf.merge(base, stored)
    except OmegaConfBaseException:   # a value whose type changed since: the stored config as it is
        return OmegaConf.create(stored)


def to_container(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)


def save_config(cfg: DictConfig, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(OmegaConf.to_yaml(cfg, resolve=True))
    tmp.replace(path)


# ---------------------------------------------------------------------------------------- validation



def validate(cfg: DictConfig) -> None:
    d = cfg.data
    require(d.sample_rate > 0, "data.sample_rate", f"must be > 0, got {d.sample_rate}")
    require(d.crop_s > 0, "data.crop_s", f"must be > 0, got {d.crop_s}")
    require(d.batch_size > 0, "data.batch_size", f"must be > 0, got {d.batch_size}")
    require(d.num_workers >= 0, "data.num_workers", f"must be >= 0, got {d.num_workers}")
    require(d.batches_per_epoch > 0, "data.batches_per_epoch", f"must be > 0, got {d.batches_per_epoch}")

    from ssl_music.augment import BACKENDS  # lazy: keeps `--help` fast
    from ssl_music.augment.chain import validate_chain

    require_choice(cfg.augment.backend, tuple(BACKENDS), "augment.backend")

    validate_chain(cfg.augment.chain, d.sample_rate)

    if cfg.augment.backend in ("cpu", "gpu"):
        from ssl_music.augment.chain import TRANSFORMS

        for name in cfg.augment.chain:
            require(TRANSFORMS[name].has_backend(cfg.augment.backend), f"augment.chain.{name}",
                    f"transform '{name}' has no {cfg.augment.backend} apply (it acts on a spectrogram): use "
                    f"augment.backend=spectral with a spectrogram front-end, or drop it from the chain")

    from ssl_music.models import reads_spectrogram, resolve_frontend, validate_model

    validate_model(cfg.model)
    if cfg.augment.backend == "spectral":
        require(reads_spectrogram(cfg.model), "augment.backend",
                f"'spectral' augments the STFT of a spectrogram front-end, and model.frontend resolves to "
                f"'{resolve_frontend(cfg.model)}' (encoder '{cfg.model.encoder}'), which reads the waveform: "
                f"use augment.backend=gpu (the same draws on the waveform)")
        from ssl_music.augment.chain import TRANSFORMS

        for name in cfg.augment.chain:
            require(TRANSFORMS[name].has_spectral(), f"augment.chain.{name}",
                    f"transform '{name}' has no spectral apply, so augment.backend=spectral cannot run it: "
                    f"use augment.backend=gpu or drop it from the chain")

    from ssl_music.objectives import OBJECTIVES

    o = cfg.objectives
    for name, spec in OBJECTIVES.items():
        w = o[name].weight
        require(w >= 0, f"objectives.{name}.weight", f"must be >= 0, got {w}")
        spec.validate(o[name], d[name])
    require(any(o[n].weight > 0 for n in OBJECTIVES), "objectives", "at least one objective needs weight > 0")
    for name, spec in OBJECTIVES.items():
        if o[name].weight > 0:
            spec.check_config(cfg)

    require(cfg.optim.lr > 0, "optim.lr", f"must be > 0, got {cfg.optim.lr}")
    require(cfg.optim.warmup_steps >= 0, "optim.warmup_steps", "must be >= 0")
    tr = cfg.trainer
    require(tr.max_steps > 0, "trainer.max_steps", f"must be > 0, got {tr.max_steps}")
    require_choice(tr.strategy, ("auto", "ddp", "ddp_spawn"), "trainer.strategy")
    require_choice(tr.precision, ("auto", "32", "32-true", "bf16-mixed", "16-mixed"), "trainer.precision")
    require_choice(tr.logger, ("csv", "wandb", "none"), "trainer.logger")
    require_choice(tr.wandb_mode, ("offline", "online", "disabled"), "trainer.wandb_mode")
    require(tr.ckpt_every_n_steps > 0, "trainer.ckpt_every_n_steps", "must be > 0")
    require(tr.accumulate_grad_batches >= 1, "trainer.accumulate_grad_batches", "must be >= 1")
    m = cfg.monitor
    require(m.every_n_steps >= 0, "monitor.every_n_steps", "must be >= 0")
    if m.every_n_steps > 0:
        require(bool(m.labels_csv), "monitor.labels_csv", "required when monitor.every_n_steps > 0")
        require(m.k >= 1, "monitor.k", "must be >= 1")
