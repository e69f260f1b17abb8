"""Pretraining end to end on tiny synthetic shards: steps, checkpoints, resume, DDP, embedding API."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl

import ssl_music
from ssl_music.config import CONFIG_DIR, load_config
from ssl_music.train import pretrain

ROOT = Path(__file__).resolve().parents[1]


def tiny_overrides(shards, root, **extra):
    base = {
        "data.shards": shards, "trainer.root_dir": root, "data.batch_size": 4, "data.num_workers": 0,
        "data.batches_per_epoch": 5, "data.crop_s": 1.0, "data.shuffle_buffer": 4,
        "data.triplet.pos_max_s": 1.0, "data.triplet.neg_min_s": 3.0, "data.triplet.neg_max_s": 12.0,
        "model.encoder": "tiny", "model.width": 8, "model.embed_dim": 16, "model.proj_hidden": 32,
        "model.proj_dim": 16, "model.tempo_hidden": 16, "trainer.accelerator": "cpu", "trainer.devices": 1,
        "trainer.max_steps": 6, "trainer.ckpt_every_n_steps": 3, "trainer.log_every_n_steps": 1,
        "trainer.progress_bar": False, "trainer.logger": "csv", "optim.warmup_steps": 2,
    }
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


class Crash(RuntimeError):
    pass


class CrashAt(pl.Callback):
    def __init__(self, step):
        self.step = step

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step >= self.step:
            raise Crash(f"simulated crash at step {trainer.global_step}")


class StartStep(pl.Callback):
    def __init__(self):
        self.start = None

    def on_train_start(self, trainer, pl_module):
        self.start = trainer.global_step


def test_multitask_pretraining_writes_checkpoints_and_embeds(tiny_shards, tmp_path):
    cfg = load_config(CONFIG_DIR / "pretrain" / "multitask.yaml", tiny_overrides(tiny_shards, tmp_path / "run"))
    trainer = pretrain(cfg)
    assert trainer.global_step == 6
    done = json.loads((tmp_path / "run" / "DONE").read_text())
    assert done["global_step"] == 6
    assert (tmp_path / "run" / "config.yaml").is_file()
    import csv

    rows = list(csv.DictReader(open(tmp_path / "run" / "logs" / "version_0" / "metrics.csv")))
    for name in ("train/contrastive", "train/triplet", "train/tempo", "perf/clips_per_s", "perf/data_wait_share",
                 "perf/augment_share"):
        assert name in rows[0]
    perf = [r for r in rows if r["perf/augment_share"]]
    assert perf  # the multitask config augments on the batch (backend gpu, here on the CPU): a share of every step
    for r in perf:
        aug, wait = float(r["perf/augment_share"]), float(r["perf/data_wait_share"])
        assert 0 < aug < 1 and 0 <= wait < 1 and aug + wait <= 1 + 1e-6

    model = ssl_music.load_encoder(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert model.has_tempo_head and model.embed_dim == 16
    wave = np.random.default_rng(0).standard_normal(44100 * 3).astype(np.float32) * 0.1
    emb = model.embed(wave, 44100)  # resampled to 16 kHz inside
    assert emb.shape == (16,) and np.isfinite(emb).all()
    p = model.tempo_same_prob(np.zeros((2, 16000), np.float32), np.zeros((2, 16000), np.float32))
    assert p.shape == (2,) and ((0 <= p) & (p <= 1)).all()
    random_model = ssl_music.load_encoder(tmp_path / "run" / "checkpoints" / "last.ckpt", random_init=True)
    assert not np.allclose(random_model.embed(wave, 44100), emb)


def test_crash_then_same_command_resumes_at_checkpoint_step(tiny_shards, tmp_path):
    overrides = tiny_overrides(tiny_shards, tmp_path / "run", **{"objectives.triplet.weight": 0})
    cfg = load_config(CONFIG_DIR / "pretrain" / "contrastive.yaml", overrides)
    with pytest.raises(Crash):
        pretrain(cfg, callbacks=[CrashAt(4)])
    assert not (tmp_path / "run" / "DONE").exists()
    start = StartStep()
    trainer = pretrain(cfg, callbacks=[start])
    assert start.start == 3  # the step-3 checkpoint; steps after it are the only loss
    assert trainer.global_step == 6
    assert json.loads((tmp_path / "run" / "DONE").read_text())["global_step"] == 6


def test_non_ssl_music_checkpoint_is_refused(tmp_path):
    import torch

    bad = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}}, bad)
    with pytest.raises(ssl_music.api.SSLMusicError, match="not an ssl_music checkpoint"):
        ssl_music.load_encoder(bad)


def _clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "PL_", "LOCAL_RANK", "RANK", "WORLD_SIZE", "MASTER_"))}
    env.update(WANDB_MODE="disabled", PYTHONUNBUFFERED="1")
    return env


def _cli(*args):
    return [sys.executable, "-m", "ssl_music.cli", *args]


def _signal_when(args, ready, sig, settle_s):
    """Start the command, wait until ready() (4 min at most), let it run settle_s more, then send sig."""
    proc = subprocess.Popen(args, env=_clean_env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not ready():
        time.sleep(0.5)
    time.sleep(settle_s)
    proc.send_signal(sig)
    proc.wait(timeout=120)


def _rerun_until(args, max_steps):
    """The same command, with max_steps shortened so the restart finishes quickly."""
    rerun = [a if not a.startswith("trainer.max_steps=") else f"trainer.max_steps={max_steps}" for a in args]
    out = subprocess.run(rerun, env=_clean_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


@pytest.mark.slow
def test_sigkill_after_checkpoint_then_restart_continues(tiny_shards, tmp_path):
    root = tmp_path / "run"
    args = _cli("pretrain", "--config", str(CONFIG_DIR / "pretrain" / "tempo.yaml"),
                *tiny_overrides(tiny_shards, root, **{"trainer.max_steps": 400, "trainer.ckpt_every_n_steps": 5}))
    _signal_when(args, lambda: list((root / "checkpoints").glob("step-*.ckpt")), signal.SIGKILL, 1.0)
    ckpts = sorted(int(p.stem.split("-")[1]) for p in (root / "checkpoints").glob("step-*.ckpt"))
    assert ckpts, "no checkpoint was written before the kill"
    assert "resuming from" in _rerun_until(args, ckpts[-1] + 5)
    assert json.loads((root / "DONE").read_text())["global_step"] == ckpts[-1] + 5


@pytest.mark.slow
def test_two_process_cpu_ddp_same_steps_on_both_ranks(tiny_shards, tmp_path):
    root = tmp_path / "ddp"
    args = _cli("pretrain", "--config", str(CONFIG_DIR / "pretrain" / "multitask.yaml"),
                *tiny_overrides(tiny_shards, root, **{"trainer.devices": 2, "trainer.strategy": "ddp"}))
    out = subprocess.run(args, env=_clean_env(), cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    ranks = [json.loads(p.read_text()) for p in sorted((root / "ranks").glob("rank-*.json"))]
    assert [r["rank"] for r in ranks] == [0, 1]
    assert {r["global_step"] for r in ranks} == {6}
    assert ranks[0]["batches"] == ranks[1]["batches"] == 6


@pytest.mark.slow
def test_sigterm_saves_last_checkpoint_and_restart_resumes_from_it(tiny_shards, tmp_path):
    import torch

    root = tmp_path / "run"
    # no periodic checkpoint can happen before the signal: any last.ckpt is the one SIGTERM wrote
    args = _cli("pretrain", "--config", str(CONFIG_DIR / "pretrain" / "tempo.yaml"),
                *tiny_overrides(tiny_shards, root, **{"trainer.max_steps": 5000, "trainer.ckpt_every_n_steps": 5000}))
    _signal_when(args, (root / "config.yaml").is_file, signal.SIGTERM, 15.0)  # start-up plus some steps
    last = root / "checkpoints" / "last.ckpt"
    assert last.is_file(), "SIGTERM did not leave a last.ckpt"
    step = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    assert 0 < step < 5000
    assert f"resuming from {last}" in _rerun_until(args, step + 3)
    assert json.loads((root / "DONE").read_text())["global_step"] == step + 3


def test_lightning_s_chatter_is_silenced_and_real_warnings_stay(tiny_shards, tmp_path):
    """The four messages of issue #35 item 7 do not reach the console of a pretraining run (a fake `srun` on the
    PATH, as on a cluster's login node); other warnings, even from the same places, still do."""
    import subprocess
    import sys
    import warnings

    from ssl_music.config import CONFIG_DIR
    from ssl_music.train import quiet_lightning

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "srun").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "WANDB_MODE": "disabled"}
    for k in [k for k in env if k.startswith("SLURM_")]:
        env.pop(k)
    overrides = tiny_overrides(tiny_shards, tmp_path / "run", **{"trainer.max_steps": 2, "trainer.progress_bar": True})
    res = subprocess.run([sys.executable, "-m", "ssl_music.cli", "pretrain", "--config",
                          str(CONFIG_DIR / "pretrain" / "multitask.yaml"), *overrides], env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    said = res.stdout + res.stderr
    for noise in ("Tip:", "LeafSpec", "`srun` command is available", "on_after_batch_transfer"):
        assert noise not in said, said[-3000:]
    quiet_lightning()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", append=True)   # behind the filters quiet_lightning put first
        warnings.warn("The `srun` command is available on your system but is not used. HINT: ...")
        warnings.warn("You have overridden `on_before_batch_transfer` in `LightningModule` but have passed in a "
                      "`LightningDataModule`.")
        warnings.warn("a real problem", UserWarning)
    assert [str(w.message)[:40] for w in caught] == ["You have overridden `on_before_batch_tra", "a real problem"]
