"""Ablation sweeps: a base pretraining config × a grid of named override sets, each run pretrained, evaluated
and finally compared in one report. Runs locally one after another or as one SLURM array job.

A sweep file (configs/sweeps/*.yaml):

    name: augment_ablation
    base: configs/pretrain/multitask.yaml
    overrides: [trainer.max_steps=20000]        # applied to every run
    grid:                                       # arm = one choice per axis; name = choice names joined by '-'
      augment: {none: [augment.preset=none], full: [augment.preset=full]}
      objectives: {contrastive: [objectives.triplet.weight=0], multitask: []}
    seeds: 3                                    # or [0, 1, 2]: every arm once per pretraining seed
    evaluate: {suite: configs/eval/synthetic.yaml, overrides: []}

With ``seeds``, each arm runs once per seed (``trainer.seed`` and ``data.seed`` set to it) in a folder
``<arm>-seed<N>``, seed-major (every arm at the first seed, then every arm at the next), so a sweep stopped
early still compares arms over the same seeds; the comparison report aggregates each arm over its seeds.

Every run's config is loaded and validated before anything is written or submitted. A run folder holds its
effective config.yaml, checkpoints/, DONE (pretraining reached max_steps), results.json (evaluated) or
FAILED; a local sweep also writes timings.json (wall seconds of each stage). A finished stage is reused only
when the fingerprint of its inputs that it recorded (ssl_music.provenance: config after overrides, seed,
suite, code version) equals the one it would run with now; otherwise the run's files move to
``<run>/stale/<time>/`` and the stage runs again, so a table never mixes old and new inputs.
"""
from __future__ import annotations

import itertools
import json
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Sequence

from omegaconf import DictConfig, OmegaConf

from ssl_music.cluster import slurm
from ssl_music.cluster.runs import EVALUATION_FILES, retire, run_name, run_state, stale_reason, standing_for  # noqa: F401 (re-exported)
from ssl_music.config import ConfigError, find_config, load_config, merge, read_yaml, save_config
from ssl_music.provenance import evaluation_fingerprint, pretrain_fingerprint

_NAME = re.compile(r"[A-Za-z0-9_]+")


@dataclass(frozen=True)
class Run:
    name: str
    overrides: tuple[str, ...]   # pretraining overrides, trainer.root_dir=<dir> last
    dir: Path
    arm: str = ""                # the grid choice this run is one seed of (== name without seeds)
    seed: int | None = None      # the pretraining seed the sweep set (None: the config's own)


@dataclass(frozen=True)
class Sweep:
    name: str
    path: Path
    base: Path
    out: Path
    runs: tuple[Run, ...]
    suite: Path
    eval_overrides: tuple[str, ...]
    # reuse finished stages whose config, seed and suite match although the code changed (shown in the report)
    reuse_across_code: bool = False

    @property
    def report_dir(self) -> Path:
        return self.out / "report"


def _resolve(p: str | Path) -> Path:
    """Relative paths name files under the working directory, or else the packaged configs/... (find_config)."""
    return find_config(p).resolve()


@dataclass
class _Evaluate:
    suite: str = ""
    overrides: List[str] = field(default_factory=list)


@dataclass
class SweepFile:
    """The schema of configs/sweeps/*.yaml, loaded by the project's one config system."""
    name: str = ""
    base: str = ""
    out: str = ""
    overrides: List[str] = field(default_factory=list)
    grid: Dict[str, Dict[str, List[str]]] = field(default_factory=dict)
    seeds: Any = None            # a count N (seeds 0..N-1) or a list of seeds; none: the config's own seed
    evaluate: _Evaluate = field(default_factory=_Evaluate)


def _seeds(value: Any, path: Path) -> list[int] | None:
    """``seeds: 3`` -> [0, 1, 2]; ``seeds: [0, 7]`` -> [0, 7]; absent -> None."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ConfigError(f"sweep file {path}: invalid value for sweep key 'seeds': a count must be >= 1, got {value}")
        return list(range(value))
    items = list(value) if isinstance(value, (list, tuple)) or OmegaConf.is_list(value) else None
    if (not items or any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in items)
            or len(set(items)) != len(items)):
        raise ConfigError(f"sweep file {path}: invalid value for sweep key 'seeds': give a count (3) or a list "
                          f"of distinct seeds >= 0 ([0, 1, 2]), got {value!r}")
    return items


def load_sweep(path: str | Path, out: str | Path | None = None, extra_overrides: Sequence[str] = (),
               eval_overrides: Sequence[str] = ()) -> Sweep:
    """Parse a sweep file and expand its grid (no validation of the pretraining configs yet)."""
    path = _resolve(path)
    raw = read_yaml(path, "sweep file")
    unknown = set(raw) - {f.name for f in fields(SweepFile)}
    if unknown:
        raise ConfigError(f"sweep file {path}: unknown key '{sorted(unknown)[0]}' "
                          f"(allowed: {sorted(f.name for f in fields(SweepFile))})")
    spec = merge(OmegaConf.structured(SweepFile), raw, f"in {path}", "sweep")
    name = str(spec.name or path.stem)
    if not spec.base:
        raise ConfigError(f"sweep file {path}: missing key 'base' (the pretraining config)")
    base = _resolve(spec.base)
    if not base.is_file():
        raise ConfigError(f"sweep file {path}: base config not found: {base}")
    if not spec.evaluate.suite:
        raise ConfigError(f"sweep file {path}: missing key 'evaluate.suite'")
    suite = _resolve(spec.evaluate.suite)
    if not suite.is_file():
        raise ConfigError(f"sweep file {path}: evaluation suite not found: {suite} (evaluate.suite)")
    common = list(spec.overrides) + list(extra_overrides)
    out_dir = Path(out or spec.out or Path("runs") / "sweeps" / name).resolve()
    if not spec.grid:
        raise ConfigError(f"sweep file {path}: 'grid' must map axis -> {{choice name: [overrides]}}")
    axes = []
    for axis, choices in spec.grid.items():
        if not choices:
            raise ConfigError(f"sweep file {path}: grid.{axis} must map choice names to override lists")
        for choice in choices:
            if not _NAME.fullmatch(str(choice)):
                raise ConfigError(f"sweep file {path}: grid.{axis}: choice name '{choice}' must match [A-Za-z0-9_]+")
        axes.append([(str(c), list(o)) for c, o in choices.items()])

    seeds = _seeds(spec.seeds, path)
    runs = []
    for seed in seeds if seeds is not None else [None]:
        for combo in itertools.product(*axes):
            arm = "-".join(c for c, _ in combo)
            name = run_name(arm, seed)
            run_dir = out_dir / name
            seeded = [] if seed is None else [f"trainer.seed={seed}", f"data.seed={seed}"]
            ovr = common + [o for _, group in combo for o in group] + seeded + [f"trainer.root_dir={run_dir}"]
            runs.append(Run(name, tuple(ovr), run_dir, arm, seed))
    return Sweep(name, path, base, out_dir, tuple(runs), suite, tuple(list(spec.evaluate.overrides) + list(eval_overrides)))


def run_config(sweep: Sweep, run: Run, launcher_overrides: Sequence[str] = ()) -> DictConfig:
    try:
        return load_config(sweep.base, [*run.overrides, *launcher_overrides])
    except ConfigError as exc:
        raise ConfigError(f"sweep {sweep.path.name}, run '{run.name}': {exc}") from None


def validate(sweep: Sweep, launcher_overrides: Sequence[str] = ()) -> dict[str, DictConfig]:
    """Every run's effective config, or ConfigError naming the run and the key; writes nothing."""
    return {run.name: run_config(sweep, run, launcher_overrides) for run in sweep.runs}


def chain_lines(configs: dict[str, DictConfig]) -> list[str]:
    """Each run's effective augmentation chain (transform, p, params), as it will run."""
    from ssl_music.augment.chain import describe_chain

    width = max(len(n) for n in configs)
    return [f"{name:<{width}}  augment: {describe_chain(cfg.augment.chain)}" for name, cfg in configs.items()]


def _announce(sweep: Sweep, configs: dict[str, DictConfig]) -> None:
    print(f"[sweep {sweep.name}] effective augmentation chains:", flush=True)
    for line in chain_lines(configs):
        print("  " + line, flush=True)


def expand(sweep_path: str | Path, out: str | Path | None = None, extra_overrides: Sequence[str] = ()) -> list[Run]:
    """The sweep's runs, each validated (unknown key -> ConfigError naming it and the run)."""
    sweep = load_sweep(sweep_path, out, extra_overrides)
    validate(sweep)
    return list(sweep.runs)


# ---------------------------------------------------------------------------------------------- state
def expected_inputs(sweep: Sweep, cfg: DictConfig, run_dir: Path | None = None) -> tuple[str, str, str]:
    """(pretraining, evaluation) fingerprints a run with effective config ``cfg`` records when it runs now,
    and the key they are recorded under: ``inputs`` (with the code) or, when the sweep reuses runs across
    code changes, ``inputs_config``. With ``run_dir``, a finished pretraining reused across code stands for
    the fingerprint it recorded (``runs.standing_for``), and its evaluation is expected with that one."""
    code = not sweep.reuse_across_code
    key = "inputs" if code else "inputs_config"
    pre = pretrain_fingerprint(cfg, code=code)
    if run_dir is not None:
        pre = standing_for(run_dir, pre, key)
    return pre, evaluation_fingerprint(pre, sweep.suite, sweep.eval_overrides, code=code), key


def states(sweep: Sweep, configs: dict[str, DictConfig]) -> dict[str, tuple[str, int | None]]:
    """run_state of every run, with 'stale' for one whose recorded inputs differ from its config's now."""
    out = {}
    for run in sweep.runs:
        reason = stale_reason(run.dir, expected_inputs(sweep, configs[run.name], run.dir))
        out[run.name] = ("stale", None) if reason else run_state(run.dir)
    return out


def status_lines(sweep: Sweep, configs: dict[str, DictConfig] | None = None) -> list[str]:
    """Each run's state. A run that has started is judged against the config it saved, which holds the
    launcher's settings (a SLURM array's devices, say) that `status` is not told; `sweep run` judges against
    the sweep file as it is now."""
    configs = validate(sweep) if configs is None else configs
    saved = {}
    for run in sweep.runs:
        path = run.dir / "config.yaml"
        try:
            saved[run.name] = load_config(path) if path.is_file() else configs[run.name]
        except ConfigError:
            saved[run.name] = configs[run.name]
    width = max(len(r.name) for r in sweep.runs)
    return [f"{name:<{width}}  {state:<10}  step {'-' if step is None else step}"
            for name, (state, step) in states(sweep, saved).items()]


def prepare(sweep: Sweep, launcher_overrides: Sequence[str] = (),
            configs: dict[str, DictConfig] | None = None) -> list[Run]:
    """Validate every run (unless ``configs`` already holds them), print its augmentation chain, move stale
    runs aside, then write config.yaml for each unfinished one; returns the unfinished runs."""
    configs = validate(sweep, launcher_overrides) if configs is None else configs
    _announce(sweep, configs)
    for run in sweep.runs:
        reason = stale_reason(run.dir, expected_inputs(sweep, configs[run.name], run.dir))
        if reason:
            print(f"[sweep {sweep.name}] {run.name}: not reused, {reason}; its files moved to "
                  f"{retire(run.dir, reason)}", flush=True)
    todo = [r for r in sweep.runs if run_state(r.dir)[0] != "evaluated"]
    for run in todo:
        if not (run.dir / "DONE").is_file():  # a finished pretraining keeps the config it ran with
            save_config(configs[run.name], run.dir / "config.yaml")
    return todo


# ------------------------------------------------------------------------------------------- commands
def pretrain_args(run_dir: Path | str) -> list[str]:
    return ["pretrain", "--config", f"{run_dir}/config.yaml"]


def evaluate_args(sweep: Sweep, run_dir: Path | str) -> list[str]:
    return ["evaluate", "--checkpoint", f"{run_dir}/checkpoints/last.ckpt", "--suite", str(sweep.suite),
            "--out", str(run_dir), *sweep.eval_overrides]


def report_args(sweep: Sweep) -> list[str]:
    return ["report", "compare", *(str(r.dir) for r in sweep.runs), "--out", str(sweep.report_dir)]


def _cli(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "ssl_music.cli", *args]


def _peak_mb(pid: int) -> float | None:
    """The process's resident-memory high-water mark (VmHWM, Linux), None where /proc cannot say. Read from
    /proc rather than wait4's ru_maxrss, which keeps the sweep's own memory across the child's exec."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _step(cmd: list[str], log: Path, poll_s: float = 1.0) -> tuple[int, float | None]:
    """Run one stage into ``log``: (exit status, peak resident memory in MB of the stage's own process as
    last seen, at most ``poll_s`` before it ended; None off Linux). Its data-loading workers are not added:
    forked, they share most of its pages."""
    peak = None
    with open(log, "a") as fh:
        fh.write(f"$ {shlex.join(cmd)}\n")
        fh.flush()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
        while True:
            try:
                return proc.wait(timeout=poll_s), peak
            except subprocess.TimeoutExpired:
                peak = _peak_mb(proc.pid) or peak


def record_time(run_dir: Path, stage: str, seconds: float, rc: int = 0, peak_mb: float | None = None) -> None:
    """timings.json: wall seconds (and peak memory) of each local stage, so sweep tables can say what each
    arm cost."""
    path = run_dir / "timings.json"
    times = json.loads(path.read_text()) if path.is_file() else {}
    times[stage] = {"seconds": round(seconds, 1), "returncode": rc,
                    **({"peak_rss_mb": round(peak_mb)} if peak_mb is not None else {})}
    path.write_text(json.dumps(times, indent=1))


def run_local(sweep: Sweep, dry_run: bool = False) -> int:
    """Pretrain + evaluate each unfinished run in turn, then the comparison report. Returns an exit status."""
    if dry_run:
        configs = validate(sweep)
        _announce(sweep, configs)
        now = states(sweep, configs)
        for run in sweep.runs:
            state = now[run.name][0]
            if state == "evaluated":
                print(f"# {run.name}: evaluated, skipped")
                continue
            reason = stale_reason(run.dir, expected_inputs(sweep, configs[run.name], run.dir)) if state == "stale" else None
            only_eval = bool(reason) and reason.startswith("evaluation:")
            if reason:
                what = "its evaluation files" if only_eval else "its files"
                print(f"# {run.name}: {reason}; {what} would be moved to {run.dir}/stale/ and re-run")
            # what the real run does: a stale pretraining is redone, a stale evaluation alone is not
            if not only_eval and (reason or not (run.dir / "DONE").is_file()):
                print(shlex.join(_cli(pretrain_args(run.dir))))
            print(shlex.join(_cli(evaluate_args(sweep, run.dir))))
        print(shlex.join(_cli(report_args(sweep))))
        return 0
    failed = []
    for run in prepare(sweep):
        (run.dir / "FAILED").unlink(missing_ok=True)
        stages = [("evaluate", evaluate_args(sweep, run.dir))]
        if not (run.dir / "DONE").is_file():
            stages.insert(0, ("pretrain", pretrain_args(run.dir)))
        for stage, args in stages:
            print(f"[sweep {sweep.name}] {run.name}: {stage}", flush=True)
            log = run.dir / f"{stage}.log"
            t0 = time.perf_counter()
            rc, peak_mb = _step(_cli(args), log)
            record_time(run.dir, stage, time.perf_counter() - t0, rc, peak_mb)
            if rc != 0:
                (run.dir / "FAILED").write_text(json.dumps({"stage": stage, "returncode": rc, "log": str(log)}))
                print(f"[sweep {sweep.name}] {run.name}: {stage} failed (exit {rc}), see {log}", flush=True)
                failed.append(run.name)
                break
    evaluated = [r for r in sweep.runs if run_state(r.dir)[0] == "evaluated"]
    if evaluated:
        sweep.report_dir.mkdir(parents=True, exist_ok=True)
        args = ["report", "compare", *(str(r.dir) for r in evaluated), "--out", str(sweep.report_dir)]
        if _step(_cli(args), sweep.out / "report.log")[0] != 0:
            print(f"[sweep {sweep.name}] comparison report failed, see {sweep.out / 'report.log'}")
            return 1
        print(f"[sweep {sweep.name}] report: {sweep.report_dir}")
    return 1 if failed else 0


def _array_spec(indices: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2,5'."""
    parts = []
    for _, grp in itertools.groupby(enumerate(indices), key=lambda t: t[1] - t[0]):
        ids = [i for _, i in grp]
        parts.append(str(ids[0]) if len(ids) == 1 else f"{ids[0]}-{ids[-1]}")
    return ",".join(parts)


def slurm_scripts(sweep: Sweep, res: slurm.Resources, todo: Sequence[Run]) -> tuple[str | None, str]:
    """(array script or None when every run is evaluated, comparison-report script)."""
    index = {r.name: i for i, r in enumerate(sweep.runs)}
    values = res.sbatch_values()
    array = None
    if todo:
        py = slurm.cli_command()
        array = slurm.render_template(
            "sweep_array", **values,
            JOB_NAME=slurm.check_job_name(f"sweep-{sweep.name}"),
            ARRAY=_array_spec([index[r.name] for r in todo]),
            OUTPUT=str(sweep.out / "logs" / "%A_%a.out"),
            RUN_DIRS=" ".join(shlex.quote(str(r.dir)) for r in sweep.runs),
            PRETRAIN_COMMAND=f'{py} pretrain --config "${{RUN_DIR}}/config.yaml"',
            EVALUATE_COMMAND=(f'{py} evaluate --checkpoint "${{RUN_DIR}}/checkpoints/last.ckpt" --suite '
                              f'{shlex.quote(str(sweep.suite))} --out "${{RUN_DIR}}" '
                              + " ".join(shlex.quote(o) for o in sweep.eval_overrides)).rstrip(),
        )
    report_res = slurm.Resources(cpus_per_task=res.cpus_per_task, partition=res.partition, time=res.time,
                                 setup=res.setup, sbatch_args=res.sbatch_args)
    report = slurm.render_template(
        "evaluate", **report_res.sbatch_values(),
        JOB_NAME=slurm.check_job_name(f"sweep-{sweep.name}-report"),
        OUTPUT=str(sweep.out / "logs" / "report-%j.out"),
        COMMAND=slurm.cli_command(*report_args(sweep)),
    )
    return array, report


def run_slurm(sweep: Sweep, res: slurm.Resources, dry_run: bool = False) -> str:
    """Submit the array (unfinished runs) and the dependent report job. Returns the ids, or the scripts."""
    overrides = res.trainer_overrides()
    if dry_run:
        configs = validate(sweep, overrides)
        _announce(sweep, configs)
        now = states(sweep, configs)
        todo = [r for r in sweep.runs if now[r.name][0] != "evaluated"]
        array, report = slurm_scripts(sweep, res, todo)
        return (array or "") + "\n# --- comparison report (sbatch --dependency=afterok:<array job>)\n" + report
    configs = validate(sweep, overrides)  # a bad key is the first thing to hear about
    slurm.sbatch_path()  # fail before writing anything
    todo = prepare(sweep, overrides, configs)
    array, report = slurm_scripts(sweep, res, todo)
    (sweep.out / "logs").mkdir(parents=True, exist_ok=True)
    if array is None:
        return "report " + slurm.sbatch(report)
    array_id = slurm.sbatch(array)
    report_id = slurm.sbatch(report, [f"--dependency=afterok:{array_id}", "--kill-on-invalid-dep=yes"])
    return f"array {array_id} report {report_id}"
