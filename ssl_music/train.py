"""Trainer construction, resume, loggers and callbacks.

Resume rule: a run is identified by ``trainer.root_dir``. Restarting the same command picks the newest
checkpoint there (periodic ``checkpoints/last.ckpt`` or SLURM's ``hpc_ckpt_*.ckpt``) and continues at its
global step. On SLURM, when the newest is an HPC checkpoint, ``ckpt_path=None`` lets Lightning load it
itself (``ckpt_path="last"`` would ignore it).
"""
from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.plugins.environments import SLURMEnvironment

from ssl_music.config import save_config, to_container
from ssl_music.threads import blas_limited

log = logging.getLogger(__name__)


def _on_gpu(cfg: DictConfig) -> bool:
    return cfg.trainer.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()


def _strategy(cfg: DictConfig):
    name = cfg.trainer.strategy
    if name == "auto":
        return "auto"
    from pytorch_lightning.strategies import DDPStrategy

    backend = "nccl" if _on_gpu(cfg) else "gloo"
    start = "spawn" if name == "ddp_spawn" else "popen"
    return DDPStrategy(process_group_backend=backend, start_method=start)


def _precision(cfg: DictConfig) -> str:
    if cfg.trainer.precision != "auto":
        return cfg.trainer.precision
    return "bf16-mixed" if _on_gpu(cfg) else "32-true"


def _logger(cfg: DictConfig, root: Path):
    t = cfg.trainer
    if t.logger == "none":
        return False
    if t.logger == "wandb":
        from pytorch_lightning.loggers import WandbLogger

        # Never needs a network or an account unless the user asks for online mode; tests set WANDB_MODE=disabled.
        mode = os.environ.get("WANDB_MODE", t.wandb_mode)
        return WandbLogger(project=t.wandb_project, name=cfg.name, save_dir=str(root), mode=mode,
                           id=_stable_run_id(root), resume="allow")
    from pytorch_lightning.loggers import CSVLogger

    return CSVLogger(str(root), name="logs", version=0)


def _stable_run_id(root: Path) -> str:
    import hashlib

    return hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]


def on_slurm() -> bool:
    return SLURMEnvironment.detect()


def latest_checkpoint(root: Path) -> Path | None:
    candidates = list(root.glob("hpc_ckpt_*.ckpt")) + list((root / "checkpoints").glob("*.ckpt"))
    candidates = [p for p in candidates if p.is_file()]
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


def resume_path(root: Path) -> str | None:
    newest = latest_checkpoint(root)
    if newest is None:
        return None
    if on_slurm() and newest.name.startswith("hpc_ckpt_"):
        return None  # Lightning restores the HPC checkpoint itself
    return str(newest)


class RankRecord(pl.Callback):
    """Each rank records how many batches it consumed in this process (ranks/rank-N.json).

    DDP needs every rank to take the same number of steps; this is where a user (and the tests) can check it.
    """

    def __init__(self, root: Path):
        self.root = root
        self.batches = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.batches += 1

    def on_train_end(self, trainer, pl_module):
        ranks = self.root / "ranks"
        ranks.mkdir(parents=True, exist_ok=True)
        record = {"rank": trainer.global_rank, "global_step": trainer.global_step, "batches": self.batches}
        (ranks / f"rank-{trainer.global_rank}.json").write_text(json.dumps(record))


class SaveOnSigterm(pl.Callback):
    """A plain `kill` (SIGTERM) saves last.ckpt before exiting, so the restart loses no step.

    Lightning turns SIGTERM into SIGTERMException at a batch boundary on every rank at once (it all-reduces
    the flag), so the collective save below cannot deadlock.
    """

    def __init__(self, root: Path):
        self.root = root

    def on_exception(self, trainer, pl_module, exception):
        from pytorch_lightning.utilities.exceptions import SIGTERMException

        if isinstance(exception, SIGTERMException) and trainer.global_step > 0:
            trainer.save_checkpoint(str(self.root / "checkpoints" / "last.ckpt"))


# What Lightning says that is not the user's concern, matched message by message so every other warning and
# log line stays: an advert (the LitLogger / litmodels tip), a deprecation inside Lightning's own code (torch's
# LeafSpec), the hint that `srun` exists on a machine where this run is not a SLURM job (on_slurm() picks the
# SLURM environment itself when it is one), and the notice that the module's on_after_batch_transfer is used
# although a datamodule is passed (by design: the GPU augmentation lives in the module).
LIGHTNING_NOISE = (
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    r"The `srun` command is available on your system but is not used",
    r"You have overridden `on_after_batch_transfer` in `LightningModule` but have passed in a `LightningDataModule`",
)
LIGHTNING_TIP = "💡 Tip:"


class _NoTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(LIGHTNING_TIP)


def quiet_lightning() -> None:
    """Silence exactly LIGHTNING_NOISE and Lightning's tips (idempotent)."""
    import warnings

    for pattern in LIGHTNING_NOISE:
        warnings.filterwarnings("ignore", message=pattern)
    for name in ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _NoTips) for f in log.filters):
            log.addFilter(_NoTips())


def build_trainer(cfg: DictConfig, extra_callbacks: list | None = None) -> pl.Trainer:
    quiet_lightning()
    t = cfg.trainer
    root = Path(t.root_dir)
    callbacks = [
        ModelCheckpoint(dirpath=root / "checkpoints", filename="step-{step}", every_n_train_steps=t.ckpt_every_n_steps,
                        save_last=True, save_top_k=2, monitor="step", mode="max", auto_insert_metric_name=False,
                        enable_version_counter=False),  # a restart overwrites, never writes last-v1.ckpt
        RankRecord(root),
        SaveOnSigterm(root),
    ]
    if t.logger != "none":
        callbacks.append(LearningRateMonitor(logging_interval="step"))
    if t.progress_bar:
        callbacks.append(TQDMProgressBar(refresh_rate=max(1, t.log_every_n_steps)))
    callbacks += extra_callbacks or []  # e.g. the online k-NN monitor, wired in by the CLI
    plugins = [SLURMEnvironment(requeue_signal=signal.SIGUSR1, auto_requeue=True)] if on_slurm() else None
    return pl.Trainer(
        default_root_dir=str(root),
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=_strategy(cfg),
        precision=_precision(cfg),
        max_steps=t.max_steps,
        max_epochs=-1,
        accumulate_grad_batches=t.accumulate_grad_batches,
        sync_batchnorm=t.sync_batchnorm,
        gradient_clip_val=t.gradient_clip_val or None,
        log_every_n_steps=t.log_every_n_steps,
        logger=_logger(cfg, root),
        callbacks=callbacks,
        enable_progress_bar=t.progress_bar,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,  # the stream splits shards by rank itself
        plugins=plugins,
    )


@blas_limited  # library users and spawned DDP ranks too, who do not start from the CLI; lifted on return
def pretrain(cfg: DictConfig, callbacks: list | None = None) -> pl.Trainer:
    """Train (or resume) the run in cfg.trainer.root_dir with the given extra Lightning ``callbacks``.
    Returns the fitted Trainer."""
    from ssl_music.data.datamodule import ShardDataModule
    from ssl_music.module import PretrainModule
    from ssl_music.objectives import enabled_objectives, view_samplers

    root = Path(cfg.trainer.root_dir)
    root.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    cfg = _with_provenance(cfg, root / "config.yaml")
    model = PretrainModule(to_container(cfg))
    data = ShardDataModule(cfg.data, view_samplers(enabled_objectives(cfg)), augmenter=model.augmenter)
    trainer = build_trainer(cfg, callbacks)
    if trainer.is_global_zero:
        save_config(cfg, root / "config.yaml")
    ckpt = resume_path(root)
    if ckpt:
        log.info("resuming from %s", ckpt)
    trainer.fit(model, datamodule=data, ckpt_path=ckpt)
    # ModelCheckpoint wrote last.ckpt at train end; DONE tells sweeps and requeued jobs the run is complete.
    if trainer.is_global_zero and trainer.global_step >= cfg.trainer.max_steps:
        last = root / "checkpoints" / "last.ckpt"
        (root / "DONE").write_text(json.dumps({"global_step": trainer.global_step, "checkpoint": str(last),
                                               "inputs": cfg.provenance.inputs,
                                               "inputs_config": cfg.provenance.inputs_config}))
    return trainer


def _with_provenance(cfg: DictConfig, saved: Path) -> DictConfig:
    """``cfg`` with its provenance section filled for this start. A resumed run whose code or inputs changed
    since it started keeps the earlier starts' records under ``provenance.earlier``, so the change is seen."""
    from omegaconf import OmegaConf, open_dict

    from ssl_music.provenance import collect

    now = collect(cfg)
    earlier = []
    if saved.is_file():
        before = OmegaConf.to_container(OmegaConf.load(saved)).get("provenance") or {}
        earlier = list(before.pop("earlier", []))
        if before and (before.get("inputs"), before.get("code")) != (now["inputs"], now["code"]):
            earlier.append(before)
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.provenance = {**now, **({"earlier": earlier} if earlier else {})}
    return cfg
