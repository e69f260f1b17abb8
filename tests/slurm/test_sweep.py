"""Sweep expansion, validation before any write, skipping finished runs (no scheduler, no training)."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from ssl_music.cli import main
from ssl_music.cluster import runs, slurm, sweep
from ssl_music.cluster.sweep import expand, load_sweep, run_state
from ssl_music.config import CONFIG_DIR, ConfigError, load_config


def _write_sweep(tmp_path: Path, grid: str, overrides: str = "[]") -> Path:
    suite = tmp_path / "suite.yaml"
    suite.write_text("{}\n")
    base = tmp_path / "base.yaml"
    base.write_text(f"name: base\naugment: {{preset: none}}\nmodel: {{encoder: tiny, width: 8, embed_dim: 16}}\n"
                    f"data: {{shards: {tmp_path / 'shards'}}}\ntrainer: {{max_steps: 3}}\n")
    path = tmp_path / "sweep.yaml"
    path.write_text(f"name: t\nbase: {base}\nout: {tmp_path / 'out'}\noverrides: {overrides}\n"
                    f"grid:\n{grid}\nevaluate: {{suite: {suite}}}\n")
    return path


GRID = """\
  lr: {slow: [optim.lr=0.0001], fast: [optim.lr=0.01]}
  objectives:
    contrastive: [objectives.triplet.weight=0.0]
    triplet: [objectives.contrastive.weight=0.0, objectives.triplet.weight=1.0]
"""


def test_expand_grid_product_and_effective_config(tmp_path):
    runs = expand(_write_sweep(tmp_path, GRID, "[trainer.max_steps=2]"))
    assert [r.name for r in runs] == ["slow-contrastive", "slow-triplet", "fast-contrastive", "fast-triplet"]
    assert all(r.dir == (tmp_path / "out" / r.name) for r in runs)
    r = runs[3]
    assert r.overrides[0] == "trainer.max_steps=2" and r.overrides[-1] == f"trainer.root_dir={r.dir}"
    cfg = load_config(tmp_path / "base.yaml", r.overrides)
    assert cfg.optim.lr == 0.01 and cfg.objectives.contrastive.weight == 0.0 and cfg.objectives.triplet.weight == 1.0
    assert cfg.trainer.max_steps == 2 and cfg.trainer.root_dir == str(r.dir)


def test_unknown_override_key_names_key_and_run_and_writes_nothing(tmp_path, capsys):
    grid = GRID.replace("[objectives.triplet.weight=0.0]", "[objectives.triplet.weigth=0.0]")
    path = _write_sweep(tmp_path, grid)
    with pytest.raises(ConfigError, match=r"run 'slow-contrastive'.*objectives\.triplet\.weigth"):
        expand(path)
    for launcher in ("local", "slurm"):
        assert main(["sweep", "run", str(path), "--launcher", launcher, "--gpus-per-node", "0"]) == 2
        assert "objectives.triplet.weigth" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bad_value_in_one_run_is_caught_before_other_runs_are_written(tmp_path):
    grid = GRID.replace("optim.lr=0.01", "optim.lr=-1")
    with pytest.raises(ConfigError, match=r"run 'fast-contrastive'.*optim\.lr"):
        sweep.prepare(load_sweep(_write_sweep(tmp_path, grid)))
    assert not (tmp_path / "out").exists()


def test_malformed_sweep_files(tmp_path):
    path = _write_sweep(tmp_path, GRID)
    path.write_text(path.read_text() + "launcher: slurm\n")
    with pytest.raises(ConfigError, match="unknown key 'launcher'"):
        load_sweep(path)
    path = _write_sweep(tmp_path, "  lr: {bad name: [optim.lr=0.1]}")
    with pytest.raises(ConfigError, match="choice name 'bad name'"):
        load_sweep(path)
    path = _write_sweep(tmp_path, GRID)
    path.write_text(path.read_text().replace(str(tmp_path / "suite.yaml"), str(tmp_path / "missing.yaml")))
    with pytest.raises(ConfigError, match="evaluate.suite"):
        load_sweep(path)


def test_shipped_sweeps_expand():
    runs = expand(CONFIG_DIR / "sweeps" / "augment_ablation.yaml")
    assert len(runs) == 10 and runs[0].name == "none-contrastive" and runs[-1].name == "full-multitask"
    presets = {load_config(CONFIG_DIR / "pretrain" / "multitask.yaml", r.overrides).augment.preset for r in runs}
    assert presets == {"none", "time_stretch", "pitch_shift", "stretch_pitch", "full"}
    assert len(expand(CONFIG_DIR / "sweeps" / "demo.yaml")) >= 3
    assert len(expand(CONFIG_DIR / "sweeps" / "tiny.yaml")) >= 3


def _finish(run_dir: Path, step: int, results: dict | None, inputs: tuple[str, str] = ("", "")) -> None:
    """A finished pretraining (and evaluation, with ``results``) that recorded ``inputs`` as the real
    commands do (DONE and results.json carry the fingerprints they ran with)."""
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    (run_dir / "DONE").write_text(json.dumps({"global_step": step, "inputs": inputs[0]}))
    if results is not None:
        (run_dir / "results.json").write_text(json.dumps({**results, "inputs": inputs[1]}))


def _inputs(s, run) -> tuple[str, str]:
    return sweep.expected_inputs(s, sweep.run_config(s, run))


def _fake_step(s, calls: list):
    """Records what would run; pretraining and evaluation record their inputs like the real commands."""
    by_dir = {str(r.dir): r for r in s.runs}

    def step(cmd, log):
        assert cmd[:3] == [sys.executable, "-m", "ssl_music.cli"]
        calls.append(cmd[3:])
        if cmd[3] == "evaluate":
            out = Path(cmd[cmd.index("--out") + 1])
            (out / "results.json").write_text(json.dumps({"marker": "new", "inputs": _inputs(s, by_dir[str(out)])[1]}))
        if cmd[3] == "pretrain":
            run_dir = Path(cmd[cmd.index("--config") + 1]).parent
            _finish(run_dir, 3, None, _inputs(s, by_dir[str(run_dir)]))
        return 0, None
    return step


def test_local_run_skips_finished_runs_and_keeps_their_results(tmp_path, monkeypatch, capsys):
    path = _write_sweep(tmp_path, GRID)
    s = load_sweep(path)
    finished, pretrained = s.runs[0], s.runs[1]
    _finish(finished.dir, 3, {"marker": "original"}, _inputs(s, finished))
    (finished.dir / "config.yaml").write_text("original config\n")
    _finish(pretrained.dir, 3, None, _inputs(s, pretrained))

    calls = []
    monkeypatch.setattr(sweep, "_step", _fake_step(s, calls))
    assert main(["sweep", "run", str(path)]) == 0
    # finished run: nothing; pretrained run: evaluation only; the other two: both; then one comparison report
    assert [c[0] for c in calls] == ["evaluate", "pretrain", "evaluate", "pretrain", "evaluate", "report"]
    assert str(finished.dir) not in " ".join(" ".join(c) for c in calls[:-1])
    assert json.loads((finished.dir / "results.json").read_text())["marker"] == "original"
    assert (finished.dir / "config.yaml").read_text() == "original config\n"
    assert calls[-1][:2] == ["report", "compare"] and all(str(r.dir) in calls[-1] for r in s.runs)
    for r in s.runs[2:]:  # effective config written for the runs that were started
        assert load_config(r.dir / "config.yaml").trainer.root_dir == str(r.dir)

    calls.clear()
    assert main(["sweep", "run", str(path)]) == 0
    assert [c[0] for c in calls] == ["report"]  # everything finished: nothing re-run

    capsys.readouterr()
    assert main(["sweep", "status", str(path)]) == 0
    out = capsys.readouterr().out
    assert all(f"{r.name}" in out for r in s.runs) and out.count("evaluated") == 4 and "step 3" in out


def test_failed_stage_is_recorded_and_other_runs_continue(tmp_path, monkeypatch):
    path = _write_sweep(tmp_path, GRID)
    s = load_sweep(path)
    monkeypatch.setattr(sweep, "_step", lambda cmd, log: (1 if cmd[3] == "pretrain" else 0, None))
    assert main(["sweep", "run", str(path)]) == 1
    assert all(run_state(r.dir)[0] == "failed" for r in s.runs)
    assert json.loads((s.runs[0].dir / "FAILED").read_text())["stage"] == "pretrain"


def test_run_state_steps(tmp_path):
    d = tmp_path / "r"
    assert run_state(d) == ("pending", None)
    (d / "checkpoints").mkdir(parents=True)
    (d / "checkpoints" / "step-2.ckpt").write_bytes(b"")
    (d / "checkpoints" / "step-10.ckpt").write_bytes(b"")
    (d / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert run_state(d) == ("pending", 10)
    _finish(d, 12, None)
    assert run_state(d) == ("pretrained", 12)
    (d / "results.json").write_text("{}")
    assert run_state(d) == ("evaluated", 12)


def test_slurm_dry_run_and_array_of_unfinished_runs(tmp_path, capsys):
    path = _write_sweep(tmp_path, GRID)
    s = load_sweep(path)
    args = ["--gpus-per-node", "0", "--tasks-per-node", "2", "--cpus-per-task", "1"]
    res = slurm.Resources(gpus_per_node=0, tasks_per_node=2, cpus_per_task=1)
    launched = sweep.run_config(s, s.runs[1], res.trainer_overrides())  # what the SLURM job would run
    pre = sweep.pretrain_fingerprint(launched)
    _finish(s.runs[1].dir, 3, {"x": 1}, (pre, sweep.evaluation_fingerprint(pre, s.suite, s.eval_overrides)))
    rc = main(["sweep", "run", str(path), "--launcher", "slurm", *args, "--dry-run"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "#SBATCH --array=0,2-3" in out and "#SBATCH --ntasks-per-node=2" in out
    assert f"--output={tmp_path / 'out' / 'logs'}/%A_%a.out" in out
    assert "report compare" in out and "pretrain --config" in out
    assert not (s.runs[0].dir).exists()
    assert sweep._array_spec([0, 1, 2]) == "0-2" and sweep._array_spec([4]) == "4"


def test_slurm_launcher_without_sbatch_writes_nothing(tmp_path, monkeypatch, capsys):
    path = _write_sweep(tmp_path, GRID)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["sweep", "run", str(path), "--launcher", "slurm", "--gpus-per-node", "0"]) == 2
    assert "sbatch not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_slurm_launcher_submits_array_then_dependent_report(tmp_path, monkeypatch):
    path = _write_sweep(tmp_path, GRID)
    submitted = []

    def fake_sbatch(script, args=()):
        submitted.append((script, list(args)))
        return str(100 + len(submitted))

    monkeypatch.setattr(slurm, "sbatch", fake_sbatch)
    monkeypatch.setattr(slurm, "sbatch_path", lambda: "/usr/bin/sbatch")
    res = slurm.Resources(gpus_per_node=0, tasks_per_node=2, cpus_per_task=1)
    assert sweep.run_slurm(load_sweep(path), res) == "array 101 report 102"
    assert "#SBATCH --array=0-3" in submitted[0][0]
    assert submitted[1][1] == ["--dependency=afterok:101", "--kill-on-invalid-dep=yes"]
    cfg = load_config(tmp_path / "out" / "fast-triplet" / "config.yaml")
    assert cfg.trainer.devices == 2 and cfg.trainer.strategy == "ddp" and cfg.trainer.accelerator == "cpu"


@pytest.mark.parametrize("path", sorted((CONFIG_DIR / "sweeps").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_sweep_arms_are_what_their_names_say(path):
    # An arm named `none` applies no transform, an arm named after one transform applies only that one (at
    # p > 0); a transform may stay in the chain at p = 0 (drawn, so arms share draws, never applied). The
    # sweep prints that chain before anything runs.
    from ssl_music.augment.chain import TRANSFORMS

    s = load_sweep(path)
    configs = sweep.validate(s)
    has_none = False
    for run in s.runs:
        chain = configs[run.name].augment.chain
        applied = [t for t, spec in chain.items() if spec.p > 0]
        for choice in run.arm.split("-"):
            if choice == "none":
                assert applied == [], run.name
                has_none = True
            elif choice in TRANSFORMS:
                assert applied == [choice], (run.name, dict(chain))
    # a sweep over something else (frontend_backend: encoders x back-ends) names no transform and checks nothing
    if has_none:
        assert any("none (no augmentation)" in line for line in sweep.chain_lines(configs))


def test_some_shipped_sweeps_are_augmentation_ablations():
    # keeps the test above from passing on nothing but sweeps that name no transform
    from ssl_music.augment.chain import TRANSFORMS

    named = [p.stem for p in (CONFIG_DIR / "sweeps").glob("*.yaml")
             if any(c == "none" or c in TRANSFORMS for r in load_sweep(p).runs for c in r.arm.split("-"))]
    assert {"augment_ablation", "subspaces_seeds"} <= set(named)


def test_sweep_prints_each_arms_chain_before_running(tmp_path, monkeypatch, capsys):
    grid = "  augment: {none: [augment.preset=none], pitch_shift: [augment.preset=pitch_shift]}\n"
    s = load_sweep(_write_sweep(tmp_path, grid))
    monkeypatch.setattr(sweep, "_step", lambda cmd, log: (1, None))
    sweep.run_local(s)
    out = capsys.readouterr().out
    assert out.index("effective augmentation chains") < out.index(": pretrain")
    assert re.search(r"none +augment: none \(no augmentation\)", out)
    assert "pitch_shift  augment: pitch_shift p=0.8 (min_semitones=-4, max_semitones=4)" in out


def test_local_sweep_records_each_stage_wall_time_and_peak_memory(tmp_path, monkeypatch):
    grid = "  augment: {none: [augment.preset=none]}\n"
    s = load_sweep(_write_sweep(tmp_path, grid))
    monkeypatch.setattr(sweep, "_step", lambda cmd, log: (3, 1234.4))
    sweep.run_local(s)
    times = json.loads((s.runs[0].dir / "timings.json").read_text())
    assert times == {"pretrain": {"seconds": pytest.approx(0.0, abs=0.5), "returncode": 3, "peak_rss_mb": 1234}}


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="no /proc on this platform")
def test_a_stage_reports_its_exit_status_and_the_memory_it_held(tmp_path):
    grab = ("import sys, time; b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096]); del b; "
            "time.sleep(0.5); sys.exit(5)")
    rc, peak = sweep._step([sys.executable, "-c", grab], tmp_path / "log", poll_s=0.1)
    assert rc == 5 and 300 < peak < 450, peak   # the high-water mark, after the memory was given back
    rc, peak = sweep._step([sys.executable, "-c", "import time; time.sleep(0.5)"], tmp_path / "log", poll_s=0.1)
    assert rc == 0 and peak < 100, "the stage's own memory, not the sweep's"


def test_seeds_axis_plans_arms_times_seeds_seed_major_and_resumes(tmp_path, monkeypatch):
    path = _write_sweep(tmp_path, "  lr: {slow: [optim.lr=0.0001], fast: [optim.lr=0.01]}")
    path.write_text(path.read_text() + "seeds: 2\n")
    s = load_sweep(path)
    assert [r.name for r in s.runs] == ["slow-seed0", "fast-seed0", "slow-seed1", "fast-seed1"]
    assert [(r.arm, r.seed) for r in s.runs] == [("slow", 0), ("fast", 0), ("slow", 1), ("fast", 1)]
    for r in s.runs:
        cfg = sweep.run_config(s, r)
        assert cfg.trainer.seed == r.seed and cfg.data.seed == r.seed and cfg.trainer.root_dir == str(r.dir)
    assert len({_inputs(s, r)[0] for r in s.runs}) == 4  # each seed is its own input
    path.write_text(path.read_text().replace("seeds: 2", "seeds: [3, 7]"))
    assert [r.name for r in load_sweep(path).runs] == ["slow-seed3", "fast-seed3", "slow-seed7", "fast-seed7"]

    path.write_text(path.read_text().replace("seeds: [3, 7]", "seeds: 2"))
    calls = []
    monkeypatch.setattr(sweep, "_step", _fake_step(s, calls))
    _finish(s.runs[0].dir, 3, {"marker": "kept"}, _inputs(s, s.runs[0]))
    assert main(["sweep", "run", str(path)]) == 0
    assert [c[0] for c in calls] == ["pretrain", "evaluate"] * 3 + ["report"]
    calls.clear()
    assert main(["sweep", "run", str(path)]) == 0 and [c[0] for c in calls] == ["report"]


@pytest.mark.parametrize("bad", ["0", "-1", "[0, 0]", "[1, -2]", "abc", "[true]"])
def test_bad_seeds_name_the_key(tmp_path, bad):
    path = _write_sweep(tmp_path, GRID)
    path.write_text(path.read_text() + f"seeds: {bad}\n")
    with pytest.raises(ConfigError, match="seeds"):
        load_sweep(path)


def test_a_stage_whose_inputs_changed_is_rerun_and_the_old_files_kept(tmp_path, monkeypatch, capsys):
    path = _write_sweep(tmp_path, "  lr: {slow: [optim.lr=0.0001]}")
    s = load_sweep(path)
    run = s.runs[0]
    _finish(run.dir, 3, {"marker": "old"}, _inputs(s, run))
    assert sweep.states(s, sweep.validate(s))[run.name][0] == "evaluated"
    # the same sweep with another learning rate: the finished run recorded other inputs
    path.write_text(path.read_text().replace("optim.lr=0.0001", "optim.lr=0.0002"))
    s2 = load_sweep(path)
    assert sweep.states(s2, sweep.validate(s2))[run.name][0] == "stale"
    calls = []
    monkeypatch.setattr(sweep, "_step", _fake_step(s2, calls))
    assert main(["sweep", "run", str(path)]) == 0
    assert [c[0] for c in calls] == ["pretrain", "evaluate", "report"]
    assert "not reused" in capsys.readouterr().out
    kept = list((run.dir / "stale").glob("*/results.json"))
    assert len(kept) == 1 and json.loads(kept[0].read_text())["marker"] == "old"
    assert json.loads((run.dir / "results.json").read_text())["marker"] == "new"
    # only the evaluation's inputs changed (a suite override): pretraining is reused, evaluation re-runs
    _finish(run.dir, 3, {"marker": "v2"}, _inputs(s2, s2.runs[0]))
    s3 = load_sweep(path, eval_overrides=["folds=3"])
    calls.clear()
    monkeypatch.setattr(sweep, "_step", _fake_step(s3, calls))
    assert sweep.run_local(s3) == 0
    assert [c[0] for c in calls] == ["evaluate", "report"]


def test_a_finished_run_without_recorded_inputs_is_not_reused(tmp_path):
    """Runs from before fingerprints were recorded cannot prove what they ran with."""
    s = load_sweep(_write_sweep(tmp_path, "  lr: {slow: [optim.lr=0.0001]}"))
    (s.runs[0].dir / "checkpoints").mkdir(parents=True)
    (s.runs[0].dir / "DONE").write_text(json.dumps({"global_step": 3}))
    assert sweep.states(s, sweep.validate(s))[s.runs[0].name][0] == "stale"


def test_reuse_across_code_accepts_a_run_whose_only_change_is_the_code(tmp_path):
    import dataclasses

    s = load_sweep(_write_sweep(tmp_path, "  lr: {slow: [optim.lr=0.0001]}"))
    run = s.runs[0]
    lenient = dataclasses.replace(s, reuse_across_code=True)
    pre_c, ev_c, key = sweep.expected_inputs(lenient, sweep.run_config(s, run))
    assert key == "inputs_config"
    (run.dir / "checkpoints").mkdir(parents=True)
    # made by other code: the recorded inputs with code differ, those without code match
    (run.dir / "DONE").write_text(json.dumps({"global_step": 3, "inputs": "old-code", "inputs_config": pre_c}))
    (run.dir / "results.json").write_text(json.dumps({"inputs": "old-code", "inputs_config": ev_c}))
    assert sweep.states(s, sweep.validate(s))[run.name][0] == "stale"
    assert sweep.states(lenient, sweep.validate(lenient))[run.name][0] == "evaluated"


def test_status_judges_a_started_run_by_the_config_it_saved(tmp_path, capsys):
    """A SLURM array's runs saved configs with the launcher's devices, which `sweep status` is not told."""
    path = _write_sweep(tmp_path, "  lr: {slow: [optim.lr=0.0001]}")
    s = load_sweep(path)
    run = s.runs[0]
    launched = sweep.run_config(s, run, slurm.Resources(gpus_per_node=0, tasks_per_node=2).trainer_overrides())
    from ssl_music.config import save_config

    save_config(launched, run.dir / "config.yaml")
    pre = sweep.pretrain_fingerprint(launched)
    _finish(run.dir, 3, {"x": 1}, (pre, sweep.evaluation_fingerprint(pre, s.suite, s.eval_overrides)))
    assert main(["sweep", "status", str(path)]) == 0
    assert "evaluated" in capsys.readouterr().out


def test_reuse_across_code_keeps_a_pretraining_whose_config_only_lacks_keys_added_since(tmp_path, monkeypatch, capsys):
    """A finished run made before an option existed: its saved config lacks the key, so its recorded config
    fingerprint differs; completed with today's default it is the same config. Across code, its pretraining is
    reused and only the (stale) evaluation re-runs — the dry run says so, and the real run does it."""
    import dataclasses

    from ssl_music.config import save_config

    path = _write_sweep(tmp_path, "  lr: {slow: [optim.lr=0.0001]}")
    s = dataclasses.replace(load_sweep(path), reuse_across_code=True)
    run = s.runs[0]
    cfg = sweep.run_config(s, run)
    old = OmegaConf.to_container(cfg, resolve=True)
    del old["model"]["head_split"]   # an option added after the run
    (run.dir / "checkpoints").mkdir(parents=True)
    save_config(OmegaConf.create(old), run.dir / "config.yaml")
    (run.dir / "DONE").write_text(json.dumps({"global_step": 3, "inputs": "old-code", "inputs_config": "old-config"}))
    (run.dir / "results.json").write_text(json.dumps({"inputs": "old-code", "inputs_config": "old-eval"}))
    assert runs.completed_fingerprint(run.dir) == sweep.expected_inputs(s, cfg)[0]
    assert runs.stale_reason(run.dir, sweep.expected_inputs(s, cfg, run.dir)).startswith("evaluation:")
    assert sweep.run_local(s, dry_run=True) == 0
    planned = capsys.readouterr().out
    assert "evaluate --checkpoint" in planned and "pretrain --config" not in planned
    calls = []
    monkeypatch.setattr(sweep, "_step", _fake_step(s, calls))
    assert sweep.run_local(s) == 0
    assert [c[0] for c in calls] == ["evaluate", "report"]
    assert (run.dir / "DONE").is_file() and (run.dir / "checkpoints").is_dir()
    # its evaluation, made by `ssl-music evaluate` from the checkpoint, is fingerprinted with the pretraining
    # fingerprint the run recorded: a later sweep run takes it as it is
    ev = sweep.evaluation_fingerprint("old-config", s.suite, s.eval_overrides, code=False)
    (run.dir / "results.json").write_text(json.dumps({"inputs": "old-code", "inputs_config": ev}))
    assert sweep.expected_inputs(s, cfg, run.dir)[:2] == ("old-config", ev)
    assert sweep.states(s, sweep.validate(s))[run.name][0] == "evaluated"
    # with the code counted, another code version is another run
    strict = dataclasses.replace(s, reuse_across_code=False)
    assert not runs.stale_reason(run.dir, sweep.expected_inputs(strict, cfg, run.dir)).startswith("evaluation:")


def test_dry_run_lists_the_pretraining_a_stale_run_will_redo(tmp_path, capsys):
    path = _write_sweep(tmp_path, "  lr: {slow: [optim.lr=0.0001]}")
    s = load_sweep(path)
    run = s.runs[0]
    _finish(run.dir, 3, {"marker": "old"}, ("other-pretraining", "other-eval"))
    assert sweep.run_local(s, dry_run=True) == 0
    out = capsys.readouterr().out
    assert "its files would be moved" in out and "pretrain --config" in out and "evaluate --checkpoint" in out
