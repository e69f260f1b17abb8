"""The LightningModule: one encoder, the heads its enabled objectives need, and their weighted losses."""
from __future__ import annotations

import math
import time

import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf

from ssl_music import checkpoint as ssl_checkpoint
from ssl_music.augment import ViewAugmenter
from ssl_music.errors import SSLMusicError
from ssl_music.models import build_encoder
from ssl_music.objectives import (OBJECTIVES, build_heads, build_states, embedding_layout, enabled_objectives,
                                  view_treatments)


class PretrainModule(pl.LightningModule):
    """The encoder, the heads of the enabled objectives (``heads``: one mapping keyed by ``Objective.head``,
    shared where objectives name the same one) and their weighted losses."""

    def __init__(self, config: dict):
        super().__init__()
        # A plain dict, so the checkpoint's hyper-parameters rebuild this exact module (load_encoder).
        self.save_hyperparameters({"config": config})
        self.cfg = OmegaConf.create(config)
        cfg = self.cfg
        self.objectives = enabled_objectives(cfg)
        self.encoder = build_encoder(cfg.model, cfg.data.sample_rate)
        self.heads = build_heads(cfg, self.encoder)
        # objectives' training state (queue, EMA target): in the checkpoint, never exported
        self.states = build_states(cfg, self.encoder, self.heads)
        self.augmenter = ViewAugmenter(cfg.augment, cfg.data, view_treatments(cfg.data))
        self._aug_generator: torch.Generator | None = None
        self._t_batch_end: float | None = None
        self._t_batch_start = 0.0
        self._t_augment = 0.0

    # ------------------------------------------------------------------------------------ augmentation
    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        if self.augmenter.backend == "cpu" or not self.training:
            return batch
        if self._aug_generator is None or self._aug_generator.device != self.device:
            # Distinct stream per rank, reproducible from the run's seed.
            self._aug_generator = torch.Generator(device=self.device)
            self._aug_generator.manual_seed(self.cfg.trainer.seed * 1000 + self.global_rank + 1)
        t0 = time.perf_counter()
        # spectral: the views leave as the front-end's power spectrograms, and the encoder takes them as such
        frontend = self.encoder.frontend if self.augmenter.backend == "spectral" else None
        out = self.augmenter.apply_batch(batch, generator=self._aug_generator, frontend=frontend)  # no_grad inside
        # Lightning transfers (and so augments) the batch before on_train_batch_start: without this the
        # augmentation time would be reported as waiting for data. Synchronise only for a step that is logged
        # (global_step advances by one before on_train_batch_end reads it), not on the hot path of every step.
        if self.device.type == "cuda" and self._logs_step(self.global_step + 1):
            torch.cuda.synchronize(self.device)
        self._t_augment = time.perf_counter() - t0
        return out

    # ---------------------------------------------------------------------------------------- losses
    def compute_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        """Every view of every objective goes through the encoder in one call (one BN batch, one kernel launch).
        A view is a waveform [B, V, L] or, from the spectral backend, a power spectrogram [B, V, F, T]."""
        chunks, shapes = [], {}
        for name in self.objectives:
            x = batch[name]
            shapes[name] = x.shape[:2]
            chunks.append(x.reshape(-1, *x.shape[2:]))
        emb = self.encoder(torch.cat(chunks).float())
        losses, offset = {}, 0
        for name in self.objectives:
            b, v = shapes[name]
            e = emb[offset: offset + b * v].view(b, v, -1)
            offset += b * v
            spec = OBJECTIVES[name]
            head = self.heads[spec.head] if spec.head is not None else None
            kw = {"state": self.states[name]} if name in self.states else {}
            losses.update(spec.step(head, self.encoder, e, batch, self.cfg.objectives[name], **kw))
        return losses

    def training_step(self, batch, batch_idx):
        losses = self.compute_losses(batch)
        o = self.cfg.objectives
        total = sum(o[name].weight * losses[name] for name in self.objectives)
        b = next(iter(batch[n] for n in self.objectives)).shape[0]
        for name, value in losses.items():
            self.log(f"train/{name}", value.detach(), on_step=True, prog_bar=name in self.objectives,
                     batch_size=b, sync_dist=False)
        self.log("train/loss", total.detach(), on_step=True, prog_bar=True, batch_size=b)
        return total

    # -------------------------------------------------------------------- throughput and data-wait share
    def _logs_step(self, step: int) -> bool:
        return step % max(1, self.cfg.trainer.log_every_n_steps) == 0

    def on_train_batch_start(self, batch, batch_idx):
        self._t_batch_start = time.perf_counter()

    def on_train_batch_end(self, outputs, batch, batch_idx):
        now = time.perf_counter()
        if self._t_batch_end is not None and self._logs_step(self.global_step):
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
                now = time.perf_counter()
            step = now - self._t_batch_end
            augment = self._t_augment
            wait = max(0.0, self._t_batch_start - self._t_batch_end - augment)
            clips = sum(batch[n].shape[0] * batch[n].shape[1] for n in self.objectives)
            self.log("perf/clips_per_s", clips / max(step, 1e-9), on_step=True, batch_size=1)
            self.log("perf/data_wait_share", wait / max(step, 1e-9), on_step=True, batch_size=1)
            self.log("perf/augment_share", augment / max(step, 1e-9), on_step=True, batch_size=1)
        self._t_augment = 0.0
        self._t_batch_end = now

    # ------------------------------------------------------------------------------------ optimisation
    def configure_optimizers(self):
        oc, max_steps = self.cfg.optim, self.cfg.trainer.max_steps
        # an objective's state (the EMA target) is not the optimizer's; everything else is, frozen parameters
        # included as before, so that older checkpoints' optimizer states still fit their groups on resume
        params = [p for name, p in self.named_parameters() if not name.startswith("states.")]
        opt = torch.optim.AdamW(params, lr=oc.lr, weight_decay=oc.weight_decay)

        def lr_lambda(step: int) -> float:
            if step < oc.warmup_steps:
                return (step + 1) / max(1, oc.warmup_steps)
            progress = (step - oc.warmup_steps) / max(1, max_steps - oc.warmup_steps)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def optimizer_step(self, *args, **kwargs):
        """The optimizer's step, then each objective's ``after_step`` (the EMA target's move): once per
        optimizer step whatever ``accumulate_grad_batches``, on every rank from the synchronised weights."""
        super().optimizer_step(*args, **kwargs)
        for name, state in self.states.items():
            after = OBJECTIVES[name].after_step
            if after is not None:
                after(state, self.encoder, self.heads, self.cfg.objectives[name])

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Resuming: a checkpoint from before ``heads`` (/1, /2) has its heads' keys renamed; one whose head
        weights do not fit this version's heads is refused with the reason (a /1 projector read the whole
        embedding, this version's reads ``Encoder.content_dim``)."""
        if "state_dict" not in checkpoint:
            return
        state = checkpoint["state_dict"] = ssl_checkpoint.heads_renamed(checkpoint["state_dict"])
        fmt = checkpoint.get("ssl_music", {}).get("format", "unknown")
        for head, module in self.heads.items():
            for key, value in module.state_dict().items():
                saved = state.get(f"heads.{head}.{key}")
                if saved is not None and saved.shape != value.shape:
                    raise SSLMusicError(
                        f"cannot resume from a {fmt} checkpoint: its head '{head}' has {key} of shape "
                        f"{tuple(saved.shape)}, this version's {tuple(value.shape)} (a /1 projector read the whole "
                        "embedding; the periodicity block is no longer projected). Start a new trainer.root_dir; "
                        "ssl_music.load_encoder and evaluation still read the old checkpoint.")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["ssl_music"] = ssl_checkpoint.metadata(self.hparams["config"])
        # readers rebuild the layout from the config; this copy is for a reader without ssl_music
        checkpoint["ssl_music"]["layout"] = [part.as_dict() for part in embedding_layout(self.cfg, self.encoder)]
