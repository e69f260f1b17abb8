"""What a run ran with, so two runs can be told apart and a finished stage is reused only for the same inputs.

A pretraining run records, in its saved ``config.yaml`` (section ``provenance``) and so in every checkpoint:
the seeds, the code version (a hash of this package's and the evaluation package's sources, plus the git
commit and whether the tree had uncommitted changes), the hash of the dependency lock, the library versions
and the thread settings that change floating-point results (torch's intra/inter-op threads, the BLAS limit,
loader workers). The same code version, config and seed on the same machine give bit-identical weights
(tests/test_provenance.py); a different thread count or another torch build may not.

Stage fingerprints: ``pretrain_fingerprint`` (config after overrides, less the run folder and this section,
plus the training code) is written into ``DONE``; ``evaluation_fingerprint`` (that, the suite file's bytes,
the suite overrides and dataset paths, plus the evaluation code) into ``results.json``. Sweeps and the
real-music benchmark reuse a stage only when the fingerprint it recorded equals the one they would run with
now. Each is also recorded without the code (``inputs_config``), so a user can choose to reuse runs across a
code change that does not touch them (``--reuse-across-code``), the code versions then shown side by side.

"Code" is the source of the parts that compute: the package less its command line, job submission and
catalogue (``NOT_COMPUTING``), and for evaluations the evaluation package too.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from ssl_music.data.files import file_sha256

PACKAGE_DIR = Path(__file__).resolve().parent
EVALUATION_DIR = PACKAGE_DIR.parent / "ssl_music_eval"
# Parts of ssl_music that never change a number a run computes (how runs are started, searched, submitted).
NOT_COMPUTING = ("cli", "cluster", "catalogue", "provenance.py")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "SSL_MUSIC_BLAS_THREADS")
# Keys of a pretraining config that say where or how visibly a run goes, not what it computes.
UNCOUNTED_KEYS = ("provenance", "trainer.root_dir", "trainer.progress_bar")


def fingerprint(obj: Any) -> str:
    """sha256 of ``obj`` as canonical JSON (sorted keys): equal inputs, equal fingerprint."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _hash_tree(h, root: Path, skip: tuple[str, ...] = ()) -> None:
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] in skip:
            continue
        h.update(str(path.relative_to(root.parent)).encode())
        h.update(path.read_bytes())


@functools.lru_cache(maxsize=None)
def training_code() -> str:
    """sha256 over the path and bytes of every .py file of ssl_music that computes (less NOT_COMPUTING)."""
    h = hashlib.sha256()
    _hash_tree(h, PACKAGE_DIR, NOT_COMPUTING)
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def evaluation_code() -> str:
    """training_code plus the evaluation package's sources."""
    h = hashlib.sha256(training_code().encode())
    _hash_tree(h, EVALUATION_DIR)
    return h.hexdigest()


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(PACKAGE_DIR.parent), *args], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.lru_cache(maxsize=None)
def code_version() -> dict:
    """The sources hash (what decides reuse), and for a reader the git commit and uncommitted changes."""
    commit = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", "ssl_music", "ssl_music_eval")
    from ssl_music import __version__

    return {"sources": training_code()[:16], "evaluation_sources": evaluation_code()[:16], "version": __version__,
            "git_commit": commit, "git_dirty": None if dirty is None else bool(dirty)}


@functools.lru_cache(maxsize=None)
def lock_hash() -> str | None:
    lock = PACKAGE_DIR.parent / "requirements.lock"
    return file_sha256(lock)[:16] if lock.is_file() else None


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def thread_settings(num_workers: int | None = None) -> dict:
    import torch

    out = {"torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
           "cpu_count": os.cpu_count(),
           **{k.lower(): os.environ.get(k) for k in THREAD_VARIABLES}}
    if num_workers is not None:
        out["loader_workers"] = int(num_workers)
    return out


def collect(cfg: Any) -> dict:
    """The provenance section of a run that is about to train with ``cfg``."""
    import torch

    return {
        "seeds": {"trainer": int(cfg.trainer.seed), "data": int(cfg.data.seed)},
        "code": code_version(),
        "lock_sha256": lock_hash(),
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        # the same seed on another CPU can take other SIMD kernels (another summation order): a different run
        "cpu": cpu_model(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "host": platform.node(),
        "threads": thread_settings(cfg.data.num_workers),
        "argv": sys.argv[1:],
        "inputs": pretrain_fingerprint(cfg),
        "inputs_config": pretrain_fingerprint(cfg, code=False),
    }


def _without(cfg: Mapping, dotted: Sequence[str]) -> dict:
    out = json.loads(json.dumps(cfg, default=str))
    for key in dotted:
        node = out
        *parents, last = key.split(".")
        for p in parents:
            node = node.get(p, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(last, None)
    return out


def pretrain_fingerprint(cfg: Any, code: bool = True) -> str:
    """Fingerprint of what a pretraining run computes: its config after overrides (less where it writes
    and how it shows progress) and, with ``code``, the training code."""
    from omegaconf import DictConfig, OmegaConf

    plain = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    return fingerprint({"config": _without(plain, UNCOUNTED_KEYS), "code": training_code() if code else None})[:16]


def evaluation_fingerprint(pretrain: str, suite_path: str | Path, overrides: Sequence[str] = (),
                           data: Sequence[str] = (), code: bool = True) -> str:
    """Fingerprint of an evaluation: the pretraining it scores (its fingerprint, or the checkpoint file's
    hash for a checkpoint without one), the suite file's bytes, its overrides and dataset paths and, with
    ``code``, the evaluation code."""
    return fingerprint({"pretrain": pretrain, "suite": file_sha256(suite_path)[:16], "overrides": list(overrides),
                        "data": list(data), "code": evaluation_code() if code else None})[:16]


def model_inputs(cfg: Any, identity: str, code: bool = True) -> str:
    """The pretraining fingerprint a loaded model recorded (with or without code), or its identity (the
    checkpoint file's hash) for a checkpoint made before fingerprints were recorded."""
    from omegaconf import OmegaConf

    key = "provenance.inputs" if code else "provenance.inputs_config"
    return str(OmegaConf.select(cfg, key, default=None) or identity)


def recorded(path: Path, key: str = "inputs") -> str | None:
    """The fingerprint a DONE or results.json recorded (None: missing, unreadable or recorded none)."""
    try:
        return json.loads(path.read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None
