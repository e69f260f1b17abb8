"""SLURM submission: render `slurm/*.sbatch` templates (package data: ssl_music/slurm) and hand them to `sbatch`.

The allocation decides the trainer's layout: `trainer.num_nodes` = nodes, `trainer.devices` = tasks per
node (one srun task per device), `trainer.strategy=ddp`. The pretraining config (with those overrides) is
loaded and validated before anything is submitted, so a typo fails here and not after hours in the queue.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ssl_music.config import ConfigError, find_config, load_config
from ssl_music.errors import SSLMusicError
from ssl_music.resources import package_dir

TEMPLATE_DIR = package_dir("slurm")
_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")
# Lightning turns its SLURM support off for jobs with these names (it assumes an interactive session).
_RESERVED_JOB_NAMES = ("bash", "interactive")


class SlurmError(SSLMusicError):
    """sbatch missing or refusing a job, or a template that cannot be filled."""


def render_template(name: str, **values) -> str:
    """Fill `slurm/<name>.sbatch`. A value of None drops every line that uses it (an optional directive,
    e.g. no `--gpus-per-node` on CPU clusters); a placeholder without a value raises SlurmError."""
    path = TEMPLATE_DIR / f"{name}.sbatch"
    if not path.is_file():
        raise SlurmError(f"no SLURM template {path}")
    lines = []
    for line in path.read_text().splitlines():
        keys = _PLACEHOLDER.findall(line)
        missing = [k for k in keys if k not in values]
        if missing:
            raise SlurmError(f"template {path.name}: no value for placeholder {{{{{missing[0]}}}}}")
        if any(values[k] is None for k in keys):
            continue
        lines.append(_PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), line))
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Resources:
    """What one job asks SLURM for; `tasks` is the number of srun tasks (= trainer devices) per node."""

    nodes: int = 1
    gpus_per_node: int = 0
    tasks_per_node: int | None = None   # CPU jobs only; with GPUs it is always gpus_per_node
    cpus_per_task: int = 4
    partition: str | None = None
    time: str | None = None
    setup: str = ""                     # e.g. "module load cuda; source .venv/bin/activate"
    sbatch_args: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self):
        if self.nodes < 1:
            raise SlurmError(f"--nodes must be >= 1, got {self.nodes}")
        if self.gpus_per_node < 0:
            raise SlurmError(f"--gpus-per-node must be >= 0, got {self.gpus_per_node}")
        if self.cpus_per_task < 1:
            raise SlurmError(f"--cpus-per-task must be >= 1, got {self.cpus_per_task}")
        if self.tasks_per_node is not None:
            if self.tasks_per_node < 1:
                raise SlurmError(f"--tasks-per-node must be >= 1, got {self.tasks_per_node}")
            if self.gpus_per_node and self.tasks_per_node != self.gpus_per_node:
                raise SlurmError(f"--tasks-per-node ({self.tasks_per_node}) must equal --gpus-per-node "
                                 f"({self.gpus_per_node}): one task per GPU")

    @property
    def tasks(self) -> int:
        return self.gpus_per_node or self.tasks_per_node or 1

    def trainer_overrides(self) -> list[str]:
        accel = "gpu" if self.gpus_per_node else "cpu"
        return [f"trainer.accelerator={accel}", f"trainer.num_nodes={self.nodes}", f"trainer.devices={self.tasks}",
                "trainer.strategy=ddp"]

    def sbatch_values(self) -> dict:
        return {
            "NODES": self.nodes,
            "TASKS_PER_NODE": self.tasks,
            "GPUS_PER_NODE": self.gpus_per_node or None,
            "CPUS_PER_TASK": self.cpus_per_task,
            "PARTITION": self.partition,
            "TIME": self.time,
            "SETUP": self.setup,
            "EXTRA_SBATCH": "\n".join(f"#SBATCH {a}" for a in self.sbatch_args),
            "WORKDIR": os.getcwd(),
        }


def cli_command(*args: str | Path) -> str:
    """`ssl-music ARGS` as a shell command run by the same interpreter (works without an installed script)."""
    return " ".join([shlex.quote(sys.executable), "-m", "ssl_music.cli", *(shlex.quote(str(a)) for a in args)])


def check_job_name(name: str) -> str:
    if name in _RESERVED_JOB_NAMES:
        raise SlurmError(f"job name '{name}' turns off Lightning's SLURM support; choose another")
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+", name):
        raise SlurmError(f"job name '{name}' may only contain letters, digits and _.+-")
    return name


def sbatch_path() -> str:
    exe = shutil.which("sbatch")
    if exe is None:
        raise SlurmError("sbatch not found on PATH: run this on a SLURM login node (or use --dry-run)")
    return exe


def sbatch(script: str, args: Sequence[str] = ()) -> str:
    """Submit a script on stdin; returns the job id. sbatch missing or failing raises SlurmError."""
    res = subprocess.run([sbatch_path(), "--parsable", *args], input=script, capture_output=True, text=True)
    if res.returncode != 0:
        raise SlurmError(f"sbatch failed (exit {res.returncode}): {res.stderr.strip() or res.stdout.strip()}")
    # --parsable prints "jobid" or "jobid;cluster"
    return res.stdout.strip().split(";")[0]


def pretrain_script(config: str | Path, overrides: Sequence[str], res: Resources, job_name: str | None = None,
                    output: str | None = None) -> str:
    """Validate the config with the allocation's trainer overrides, then render the pretraining script. The
    job runs the file found here (a packaged config by its absolute path: the node may have no ./configs)."""
    config = find_config(config)
    all_overrides = [*overrides, *res.trainer_overrides()]
    cfg = load_config(config, all_overrides)
    root = Path(cfg.trainer.root_dir)
    return render_template(
        "pretrain", **res.sbatch_values(),
        JOB_NAME=check_job_name(job_name or f"ssl-music-pretrain-{cfg.name}"),
        OUTPUT=output or str(root / "slurm-%j.out"),
        COMMAND=cli_command("pretrain", "--config", config, *all_overrides),
    )


def evaluate_script(suite: str | Path, checkpoint: str | Path, out: str | Path, overrides: Sequence[str],
                    res: Resources, job_name: str | None = None, output: str | None = None) -> str:
    suite = find_config(suite)
    if not Path(suite).is_file():
        raise ConfigError(f"evaluation suite not found: {suite}")
    return render_template(
        "evaluate", **res.sbatch_values(),
        JOB_NAME=check_job_name(job_name or "ssl-music-evaluate"),
        OUTPUT=output or str(Path(out) / "slurm-%j.out"),
        COMMAND=cli_command("evaluate", "--checkpoint", checkpoint, "--suite", suite, "--out", out, *overrides),
    )


def index_scripts(inp: str | Path, checkpoint: str | Path, out: str | Path, parts: int, res: Resources,
                  job_name: str | None = None) -> tuple[str, str]:
    """(array script: task i builds part i of ``parts``, merge script) of `ssl-music index build`."""
    if parts < 1:
        raise SlurmError(f"--parts must be >= 1, got {parts}")
    if not Path(inp).exists():
        raise SlurmError(f"index input not found: {inp}")
    name = check_job_name(job_name or "ssl-music-index")
    device = ["--device", "cuda"] if res.gpus_per_node else []
    build = cli_command("index", "build", inp, "--checkpoint", checkpoint, "--out", out, "--threads",
                        res.cpus_per_task, "--quiet", *device)
    values = res.sbatch_values()
    array = render_template("index_array", **values, JOB_NAME=name, ARRAY=f"0-{parts - 1}", PARTS=parts,
                            OUTPUT=str(Path(out) / "slurm-%A_%a.out"), COMMAND=build)
    merge = render_template("index_merge", **values, JOB_NAME=f"{name}-merge", OUTPUT=str(Path(out) / "slurm-%j.out"),
                            COMMAND=cli_command("index", "merge", out))
    return array, merge


def _output_dir(script: str) -> None:
    """SLURM silently fails a job whose --output folder is missing: create it before submitting."""
    m = re.search(r"^#SBATCH --output=(.+)$", script, re.M)
    if m:
        Path(m.group(1)).parent.mkdir(parents=True, exist_ok=True)


def submit(kind: str, config: str | Path, overrides: Sequence[str] = (), res: Resources = Resources(),
           dry_run: bool = False, checkpoint: str | Path | None = None, out: str | Path | None = None,
           job_name: str | None = None, parts: int = 1) -> str:
    """Submit `pretrain` (config = pretraining YAML), `evaluate` (config = suite YAML, with checkpoint and
    out) or `index` (config = the collection, with checkpoint, out and ``parts``: an array job and its merge).
    Returns the job id ("ARRAY MERGE" for index), or the rendered script(s) with dry_run."""
    if kind == "index":
        if checkpoint is None or out is None:
            raise SlurmError("index needs --checkpoint and --out")
        array, merge = index_scripts(config, checkpoint, out, parts, res, job_name)
        if dry_run:
            return array + merge
        sbatch_path()
        _output_dir(array)
        first = sbatch(array)
        return f"{first} {sbatch(merge, [f'--dependency=afterok:{first}'])}"
    if kind == "pretrain":
        script = pretrain_script(config, overrides, res, job_name)
    elif kind == "evaluate":
        if checkpoint is None or out is None:
            raise SlurmError("evaluate needs --checkpoint and --out")
        script = evaluate_script(config, checkpoint, out, overrides, res, job_name)
    else:
        raise SlurmError(f"unknown job kind '{kind}' (pretrain | evaluate | index)")
    if dry_run:
        return script
    sbatch_path()
    _output_dir(script)
    return sbatch(script)


# ------------------------------------------------------------------------------------------------ CLI
