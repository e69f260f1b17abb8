"""`ssl-music slurm submit index`: an array job (task i builds part i of N) and a merge that waits for it;
rendered without a scheduler, and run on the real one-node SLURM of tests/slurm/conftest.py (slow)."""
from __future__ import annotations

import re

import pytest

from ssl_music.cli import main
from ssl_music.cluster.slurm import SlurmError, submit
from tests.evaluation.fakes import tiny_checkpoint


def test_index_submission_renders_an_array_and_a_merge(tmp_path, capsys):
    ckpt = tiny_checkpoint(tmp_path / "m.ckpt")
    assert main(["slurm", "submit", "index", str(tmp_path), "--checkpoint", ckpt, "--out", str(tmp_path / "idx"),
                 "--parts", "4", "--gpus-per-node", "1", "--cpus-per-task", "6", "--dry-run"]) == 0
    array, merge = capsys.readouterr().out.split("#!/bin/bash\n")[1:]
    assert "#SBATCH --array=0-3" in array and "#SBATCH --gpus-per-node=1" in array
    assert re.search(r"index build \S+ --checkpoint \S+ --out \S+ --threads 6 --quiet --device cuda "
                     r"--part \"\$\{SLURM_ARRAY_TASK_ID\}/4\"$", array, re.M)
    assert "--array" not in merge and re.search(r"^srun .* index merge \S+/idx$", merge, re.M)
    with pytest.raises(SlurmError, match="index input not found: /nonexistent"):
        submit("index", "/nonexistent", checkpoint=ckpt, out=str(tmp_path / "idx"), dry_run=True)
    with pytest.raises(SlurmError, match="--parts must be >= 1"):
        submit("index", str(tmp_path), checkpoint=ckpt, out=str(tmp_path / "idx"), parts=0, dry_run=True)


@pytest.mark.slow
def test_index_array_job_and_merge_on_the_scheduler(slurm_cluster, tiny_corpus, tmp_path, capsys):
    from pathlib import Path

    from ssl_music.catalogue.build import build_index
    from ssl_music.catalogue.store import open_index
    from tests.catalogue.test_build import assert_same_index

    audio = Path(tiny_corpus).parent / "audio"
    ckpt = tiny_checkpoint(tmp_path / "m.ckpt")
    out = tmp_path / "idx"
    assert main(["slurm", "submit", "index", str(audio), "--checkpoint", ckpt, "--out", str(out), "--parts", "2",
                 "--gpus-per-node", "0", "--cpus-per-task", "1"]) == 0
    array_id, merge_id = capsys.readouterr().out.split()
    assert slurm_cluster.wait(array_id, timeout=300) == ["COMPLETED", "COMPLETED"]
    assert slurm_cluster.wait(merge_id, timeout=120) == ["COMPLETED"], slurm_cluster.logs()
    assert open_index(out).meta["parts"] == 2
    build_index(audio, ckpt, tmp_path / "local")
    assert_same_index(out, tmp_path / "local")
