"""Against a real one-node SLURM (tests/slurm/conftest.py): scheduler, 2-rank CPU DDP pretraining, a sweep
as an array job with its dependent report, and SIGUSR1 → hpc checkpoint → requeue → resume."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from ssl_music.cli import main
from ssl_music.cluster.slurm import Resources, render_template

pytestmark = pytest.mark.slow


def _job_log(path_glob: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(path_glob.parent.glob(path_glob.name)))


def test_two_task_job_runs_on_the_scheduler(slurm_cluster, tmp_path):
    res = Resources(gpus_per_node=0, tasks_per_node=2, cpus_per_task=1)
    script = render_template("pretrain", **res.sbatch_values(), JOB_NAME="ranks", OUTPUT=str(tmp_path / "%j.out"),
                             COMMAND=f"{sys.executable} -c \"import os; print('rank', os.environ['SLURM_PROCID'], "
                                     f"'of', os.environ['SLURM_NTASKS'])\"")
    path = tmp_path / "ranks.sbatch"
    path.write_text(script)
    job = slurm_cluster.sbatch(path)  # the template's directives (incl. --signal=SIGUSR1@90) are accepted
    assert slurm_cluster.wait(job, timeout=120) == ["COMPLETED"]
    out = (tmp_path / f"{job}.out").read_text()
    assert sorted(re.findall(r"^rank (\d) of 2$", out, re.M)) == ["0", "1"], out
    assert slurm_cluster.job_field(job, "NumTasks") == "2"


# ---------------------------------------------------------------------------------- data and configs
@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from ssl_music.data.shards import build_shards
    from ssl_music.data.synth import generate_corpus

    root = tmp_path_factory.mktemp("corpus")
    labels = generate_corpus(root / "audio", n_tracks=8, seconds=8.0, seed=0)
    build_shards(labels, root / "shards", sample_rate=16000, segment_seconds=60, shard_size_mb=1, workers=1,
                 progress=False)
    # a 2-class label that splits 8 tracks evenly, so the probe's folds always have both classes
    import csv

    with open(labels) as fh:
        rows = list(csv.DictReader(fh))
    eval_csv = Path(labels).parent / "eval.csv"
    with open(eval_csv, "w", newline="") as fh:
        w = csv.DictWriter(fh, ["path", "track_id", "half"])
        w.writeheader()
        w.writerows({"path": r["path"], "track_id": r["track_id"], "half": "ab"[i % 2]} for i, r in enumerate(rows))
    suite = root / "suite.yaml"
    suite.write_text(f"""\
name: tiny
datasets:
  - {{name: tiny, kind: csv, path: {eval_csv}, tasks: [{{name: half, column: half, type: multiclass}}]}}
probes: {{linear: true, mlp: false}}
seeds: [0]
folds: 2
knn: {{ks: [1]}}
locality: {{k: 1, attributes: [half]}}
baselines: {{random_init: false, mfcc_chroma: false}}
projection: pca
device: cpu
""")
    return {"labels": Path(labels), "shards": root / "shards", "suite": suite}


def _tiny_config(path: Path, shards: Path, root_dir: Path, max_steps: int, ckpt_every: int = 2) -> Path:
    path.write_text(f"""\
name: tiny
data: {{shards: {shards}, crop_s: 1.0, batch_size: 4, num_workers: 0, batches_per_epoch: 4, shuffle_buffer: 4}}
augment: {{preset: none, backend: cpu}}
model: {{encoder: tiny, width: 8, embed_dim: 16, proj_hidden: 16, proj_dim: 8, tempo_hidden: 8}}
objectives: {{contrastive: {{weight: 1.0}}, triplet: {{weight: 0.0}}, tempo: {{weight: 0.0}}}}
optim: {{warmup_steps: 1}}
trainer: {{root_dir: {root_dir}, max_steps: {max_steps}, ckpt_every_n_steps: {ckpt_every}, log_every_n_steps: 1,
           progress_bar: false, logger: csv}}
monitor: {{every_n_steps: 0}}
""")
    return path


def _submit(capsys, *argv: str) -> str:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return capsys.readouterr().out.strip().splitlines()[-1]


def _done_step(root: Path) -> int:
    return json.loads((root / "DONE").read_text())["global_step"]


def test_two_rank_cpu_ddp_pretraining(slurm_cluster, corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    root = tmp_path / "run"
    cfg = _tiny_config(tmp_path / "tiny.yaml", corpus["shards"], root, max_steps=6)
    job = _submit(capsys, "slurm", "submit", "pretrain", str(cfg), "--gpus-per-node", "0", "--tasks-per-node", "2",
                  "--cpus-per-task", "1")
    assert job.isdigit(), job
    states = slurm_cluster.wait(job, timeout=400)
    log = _job_log(root / "slurm-*.out")
    assert states == ["COMPLETED"], log
    assert _done_step(root) == 6, log
    assert (root / "checkpoints" / "last.ckpt").is_file() and (root / "config.yaml").is_file()
    from ssl_music.config import load_config

    saved = load_config(root / "config.yaml")
    assert saved.trainer.devices == 2 and saved.trainer.strategy == "ddp" and saved.trainer.num_nodes == 1


def test_sweep_as_array_job_with_report(slurm_cluster, corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    base = _tiny_config(tmp_path / "base.yaml", corpus["shards"], tmp_path / "unused", max_steps=3)
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(f"""\
name: tiny
base: {base}
out: {tmp_path / 'sweep'}
grid:
  lr: {{a: [optim.lr=0.001], b: [optim.lr=0.003], c: [optim.lr=0.01]}}
evaluate: {{suite: {corpus['suite']}}}
""")
    line = _submit(capsys, "sweep", "run", str(sweep_file), "--launcher", "slurm", "--gpus-per-node", "0",
                   "--tasks-per-node", "1", "--cpus-per-task", "1")
    m = re.fullmatch(r"array (\d+) report (\d+)", line)
    assert m, line
    array_id, report_id = m.groups()
    array_states = slurm_cluster.wait(array_id, timeout=900)
    logs = _job_log(tmp_path / "sweep" / "logs" / "*.out")
    assert array_states == ["COMPLETED"] * 3, logs
    assert slurm_cluster.wait(report_id, timeout=300) == ["COMPLETED"], logs
    for name in ("a", "b", "c"):
        run = tmp_path / "sweep" / name
        assert _done_step(run) == 3 and (run / "results.json").is_file(), logs
    assert (tmp_path / "sweep" / "report" / "compare.json").is_file(), logs

    capsys.readouterr()
    assert main(["sweep", "status", str(sweep_file)]) == 0
    assert capsys.readouterr().out.count("evaluated") == 3


def test_sigusr1_requeues_and_resumes(slurm_cluster, corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    root = tmp_path / "run"
    max_steps = 200
    cfg = _tiny_config(tmp_path / "tiny.yaml", corpus["shards"], root, max_steps=max_steps, ckpt_every=5)
    job = _submit(capsys, "slurm", "submit", "pretrain", str(cfg), "--gpus-per-node", "0", "--tasks-per-node", "1",
                  "--cpus-per-task", "1")

    slurm_cluster.wait_for(lambda: any((root / "checkpoints").glob("step-*.ckpt")), timeout=300,
                           what="first periodic checkpoint")
    # `scancel --signal` (without --batch) signals the job steps, i.e. every srun task, as
    # `#SBATCH --signal=SIGUSR1@90` does before the time limit
    slurm_cluster.run("scancel", "--signal=USR1", job)
    slurm_cluster.wait_for(lambda: int(slurm_cluster.job_field(job, "Restarts") or 0) >= 1, timeout=120,
                           what="requeue")
    assert not (root / "DONE").exists(), "training finished before the signal: raise max_steps"
    states = slurm_cluster.wait(job, timeout=600)
    log = _job_log(root / "slurm-*.out")
    assert states == ["COMPLETED"], log
    assert list(root.glob("hpc_ckpt_*.ckpt")), log
    assert "restart 1" in log, log
    assert _done_step(root) == max_steps, log
