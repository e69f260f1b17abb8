"""sbatch templates and `ssl-music slurm submit` without a scheduler (rendering, dry run, errors)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from ssl_music.cli import main
from ssl_music.cluster import slurm
from ssl_music.cluster.slurm import Resources, SlurmError, render_template
from ssl_music.config import ConfigError

TEMPLATES = ("pretrain", "evaluate", "sweep_array")


def _values(**extra) -> dict:
    values = Resources(nodes=2, gpus_per_node=4, cpus_per_task=8, partition="gpu", time="01:00:00").sbatch_values()
    values.update(JOB_NAME="job", OUTPUT="/x/slurm-%j.out", COMMAND="echo hi", ARRAY="0-2", RUN_DIRS="a b c",
                  PRETRAIN_COMMAND="echo p", EVALUATE_COMMAND="echo e")
    values.update(extra)
    return values


def _directives(script: str) -> dict[str, str]:
    return dict(re.findall(r"^#SBATCH --([a-z-]+)(?:=(.*))?$", script, re.M))


@pytest.mark.parametrize("name", TEMPLATES)
def test_templates_render_completely(name):
    script = render_template(name, **_values())
    assert "{{" not in script and script.startswith("#!/bin/bash\n")
    d = _directives(script)
    assert d["job-name"] == "job" and d["time"] == "01:00:00" and d["partition"] == "gpu"
    assert d["gpus-per-node"] == "4" and d["cpus-per-task"] == "8"
    if name != "evaluate":
        assert d["nodes"] == "2" and d["ntasks-per-node"] == "4"
        # B:USR1 would signal only the batch shell, never the training processes
        assert d["signal"] == "SIGUSR1@90" and "requeue" in d
    assert re.search(r"^srun ", script, re.M) or re.search(r"^\s+srun ", script, re.M)


@pytest.mark.parametrize("name", TEMPLATES)
def test_unfilled_placeholder_is_named(name):
    values = _values()
    del values["JOB_NAME"]
    with pytest.raises(SlurmError, match=r"\{\{JOB_NAME\}\}"):
        render_template(name, **values)


def test_none_drops_optional_directives():
    script = render_template("pretrain", **_values(GPUS_PER_NODE=None, PARTITION=None, TIME=None))
    d = _directives(script)
    assert "gpus-per-node" not in d and "partition" not in d and "time" not in d
    assert d["ntasks-per-node"] == "4"


def test_resources_follow_allocation():
    gpu = Resources(nodes=2, gpus_per_node=4)
    assert gpu.trainer_overrides() == ["trainer.accelerator=gpu", "trainer.num_nodes=2", "trainer.devices=4",
                                       "trainer.strategy=ddp"]
    cpu = Resources(gpus_per_node=0, tasks_per_node=3)
    assert cpu.tasks == 3 and "trainer.accelerator=cpu" in cpu.trainer_overrides()
    assert cpu.sbatch_values()["GPUS_PER_NODE"] is None
    with pytest.raises(SlurmError, match="tasks-per-node"):
        Resources(gpus_per_node=4, tasks_per_node=2)


def test_reserved_job_name_rejected():
    for bad in ("bash", "interactive"):
        with pytest.raises(SlurmError, match="Lightning"):
            slurm.check_job_name(bad)


def _tiny_config(tmp_path: Path) -> Path:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(f"name: tiny\ndata: {{shards: {tmp_path / 'shards'}}}\n"
                   f"trainer: {{root_dir: {tmp_path / 'run'}, max_steps: 5}}\nmodel: {{encoder: tiny}}\n")
    return cfg


def test_dry_run_pretrain_script(tmp_path, capsys):
    cfg = _tiny_config(tmp_path)
    rc = main(["slurm", "submit", "pretrain", str(cfg), "trainer.max_steps=7", "--nodes", "2", "--gpus-per-node", "4",
               "--partition", "gpu", "--time", "02:00:00", "--setup", "source .venv/bin/activate", "--dry-run"])
    out = capsys.readouterr().out
    assert rc == 0
    d = _directives(out)
    assert d["nodes"] == "2" and d["ntasks-per-node"] == "4" and d["gpus-per-node"] == "4"
    assert d["partition"] == "gpu" and d["time"] == "02:00:00" and d["signal"] == "SIGUSR1@90"
    assert d["output"] == str(tmp_path / "run" / "slurm-%j.out")
    assert d["job-name"] == "ssl-music-pretrain-tiny"
    assert "source .venv/bin/activate" in out
    srun = next(line for line in out.splitlines() if line.startswith("srun "))
    for piece in ("pretrain --config", str(cfg), "trainer.max_steps=7", "trainer.num_nodes=2", "trainer.devices=4",
                  "trainer.strategy=ddp", "trainer.accelerator=gpu"):
        assert piece in srun
    assert not (tmp_path / "run").exists()  # a dry run writes nothing


def test_dry_run_cpu_tasks(tmp_path, capsys):
    cfg = _tiny_config(tmp_path)
    assert main(["slurm", "submit", "pretrain", str(cfg), "--gpus-per-node", "0", "--tasks-per-node", "2",
                 "--cpus-per-task", "1", "--dry-run"]) == 0
    out = capsys.readouterr().out
    d = _directives(out)
    assert "gpus-per-node" not in d and d["ntasks-per-node"] == "2" and d["cpus-per-task"] == "1"
    assert "trainer.accelerator=cpu" in out and "trainer.devices=2" in out


def test_invalid_config_fails_before_sbatch(tmp_path, monkeypatch):
    cfg = _tiny_config(tmp_path)
    called = []
    monkeypatch.setattr(slurm, "sbatch", lambda *a, **k: called.append(a) or "1")
    with pytest.raises(ConfigError, match="trainer.max_stepz"):
        slurm.submit("pretrain", cfg, ["trainer.max_stepz=3"], Resources(gpus_per_node=0))
    assert called == []


def test_missing_sbatch_is_a_clear_error(tmp_path, monkeypatch, capsys):
    cfg = _tiny_config(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    rc = main(["slurm", "submit", "pretrain", str(cfg), "--gpus-per-node", "0"])
    assert rc == 2
    assert "sbatch not found" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # nothing written, nothing submitted


def test_failing_sbatch_reports_its_stderr(tmp_path, monkeypatch):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "sbatch").write_text("#!/bin/sh\necho 'sbatch: error: invalid partition specified: nope' >&2\nexit 1\n")
    (fake / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake))
    with pytest.raises(SlurmError, match="invalid partition specified: nope"):
        slurm.submit("pretrain", _tiny_config(tmp_path), [], Resources(gpus_per_node=0, partition="nope"))


def test_evaluate_dry_run(tmp_path, capsys):
    suite = tmp_path / "suite.yaml"
    suite.write_text("{}\n")
    rc = main(["slurm", "submit", "evaluate", str(suite), "datasets.0.path=x.csv", "--checkpoint", "c.ckpt",
               "--out", str(tmp_path / "ev"), "--gpus-per-node", "1", "--dry-run"])
    out = capsys.readouterr().out
    assert rc == 0
    d = _directives(out)
    assert d["ntasks-per-node"] == "1" and d["gpus-per-node"] == "1" and "signal" not in d
    srun = next(line for line in out.splitlines() if line.startswith("srun "))
    assert "evaluate --checkpoint c.ckpt --suite" in srun and "datasets.0.path=x.csv" in srun
    with pytest.raises(ConfigError, match="suite not found"):
        slurm.submit("evaluate", tmp_path / "nope.yaml", checkpoint="c", out="o", dry_run=True)
