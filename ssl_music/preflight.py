"""`ssl-music pretrain --check`: what a pretraining config names on disk, checked in seconds before a run
that would otherwise find it out minutes (or a queue wait) later. The config itself is validated by
``load_config``; here: the shards (``data.shards``: a finished build, every listed shard present, samples,
the sample rate), the monitor's labels file when the monitor is on, and the run folder
(``trainer.root_dir``: a folder or creatable, writable). Nothing is written."""
from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig

from ssl_music.errors import ConfigError, SSLMusicError


def _bad(key: str, msg: str) -> ConfigError:
    return ConfigError(f"invalid value for config key '{key}': {msg}")


def _shards(cfg: DictConfig) -> str:
    from ssl_music.data.shards import read_manifest
    from ssl_music.data.stream import shard_list

    try:
        shards = shard_list(cfg.data)   # the loader's own checks: folder, finished manifest, rate, files
    except SSLMusicError as exc:
        raise _bad("data.shards", str(exc).replace(" (config key 'data.shards')", "")) from None
    m = read_manifest(cfg.data.shards)
    empty = [p for p, _ in shards if Path(p).stat().st_size == 0]
    if empty:
        raise _bad("data.shards", f"{len(empty)} shard file(s) are empty, e.g. {empty[0]}; "
                                  f"`ssl-music shards verify {cfg.data.shards}` checks them all")
    return (f"data.shards       {cfg.data.shards}: {len(shards)} shard(s), {sum(n for _, n in shards)} samples, "
            f"{m.get('total_hours', 0):.2f} h at {m['sample_rate']} Hz")


def _monitor(cfg: DictConfig) -> str:
    from ssl_music.data.files import read_csv, resolve

    m = cfg.monitor
    if m.every_n_steps <= 0:
        return "monitor           off"
    path = Path(m.labels_csv)
    try:
        _, rows = read_csv(path, required=("path", *m.labels), what="monitor.labels_csv")
    except SSLMusicError as exc:
        raise _bad("monitor.labels_csv", str(exc)) from None
    present = sum(resolve(r["path"], path.parent).is_file() for r in rows)
    if present < 2:
        raise _bad("monitor.labels_csv", f"{path}: {present} of its {len(rows)} listed audio files exist; "
                                         "the monitor needs at least 2")
    return f"monitor.labels_csv {path}: {present} of {len(rows)} files present, labels {', '.join(m.labels)}"


def _root(cfg: DictConfig) -> str:
    root = Path(cfg.trainer.root_dir)
    if root.exists() and not root.is_dir():
        raise _bad("trainer.root_dir", f"{root} exists and is not a folder")
    existing = next(p for p in (root, *root.parents) if p.exists())
    if not os.access(existing, os.W_OK):
        raise _bad("trainer.root_dir", f"{existing} is not writable, so {root} cannot be written")
    last = root / "checkpoints" / "last.ckpt"
    state = (f"resumes from {last}" if last.is_file()
             else "exists, no checkpoint yet" if root.is_dir() else "created at start")
    return f"trainer.root_dir  {root}: {state}"


def check_pretrain(cfg: DictConfig) -> list[str]:
    """One line per path checked; ConfigError naming the key at the first problem."""
    return [_shards(cfg), _monitor(cfg), _root(cfg)]
