"""Cost of each pretraining method per step, against in-batch NT-Xent (issue #34): the training step without
the loader (augment, forward, backward, optimiser step, then the EMA target's move), the methods taking turns
step by step on batches of their own views, so that a change in a shared machine's load falls on them alike;
medians over the steps after two of warm-up. The arms are those of configs/sweeps/methods_seeds.yaml, whose
per-arm steps (equal pretraining wall time) come from this table. Peak memory needs one process per arm:
benchmarks/train.py with the same overrides.

    python benchmarks/methods_cost.py --steps 12
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "disabled")
ROOT = Path(__file__).resolve().parents[1]

# the sweep's common overrides and its arms (kept in step with configs/sweeps/methods_seeds.yaml by a test)
COMMON = ["model.periodicity=false", "model.block_norm=false", "objectives.triplet.weight=0",
          "objectives.tempo.weight=0", "augment.backend=spectral"]
ARMS = {
    "ntxent": [],
    "ntxent_queue": ["objectives.contrastive.queue=256"],
    "byol_a": ["objectives.contrastive.weight=0", "objectives.byol.weight=1.0", "data.byol.max_gap_s=0.0",
               "augment.preset=none", "augment.chain.mixup.p=1.0", "augment.chain.random_resize_crop.p=1.0",
               "optim.lr=3.0e-4"],
    "vicreg": ["objectives.contrastive.weight=0", "objectives.vicreg.weight=1.0"],
}


def _bench_train():
    spec = importlib.util.spec_from_file_location("bench_train", ROOT / "benchmarks" / "train.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def measure(steps: int, config: Path) -> list[dict]:
    import numpy as np
    import torch
    from omegaconf import OmegaConf

    from ssl_music.config import load_config
    from ssl_music.module import PretrainModule

    views = _bench_train()._views
    modules = {}
    for arm, over in ARMS.items():
        cfg = load_config(config, ["data.shards=unused", "monitor.every_n_steps=0", *COMMON, *over])
        module = PretrainModule(OmegaConf.to_container(cfg, resolve=True)).train()
        modules[arm] = (module, module.configure_optimizers()["optimizer"])
    rng = np.random.default_rng(0)
    times = {arm: [] for arm in ARMS}
    clips = {}
    for step in range(steps):
        for arm, (module, opt) in modules.items():
            batch = views(module, int(module.cfg.data.batch_size), rng)
            clips[arm] = sum(v.shape[0] * v.shape[1] for v in batch.values())
            t0 = time.perf_counter()
            losses = module.compute_losses(module.on_after_batch_transfer(batch, 0))
            sum(module.cfg.objectives[n].weight * losses[n] for n in module.objectives).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            for name, state in module.states.items():   # what PretrainModule.optimizer_step adds
                from ssl_music.objectives import OBJECTIVES

                if OBJECTIVES[name].after_step is not None:
                    OBJECTIVES[name].after_step(state, module.encoder, module.heads, module.cfg.objectives[name])
            if step >= 2:
                times[arm].append(time.perf_counter() - t0)
    base = float(np.median(times["ntxent"]))
    return [{"arm": arm, "step_s": float(np.median(t)), "vs": float(np.median(t)) / base,
             "clips_per_s": clips[arm] / float(np.median(t)),
             "params_m": sum(p.numel() for p in modules[arm][0].parameters()) / 1e6} for arm, t in times.items()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--config", default=str(ROOT / "configs" / "pretrain" / "real_music.yaml"))
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    rows = measure(args.steps, Path(args.config))
    print(f"recipe {Path(args.config).name} + {' '.join(COMMON)}; {args.steps} steps, medians after 2 of warm-up, "
          f"{args.threads} threads, no loader")
    print(f"{'arm':<14} {'step ms':>8} {'vs ntxent':>10} {'clips/s':>8} {'params M':>9}")
    for r in rows:
        print(f"{r['arm']:<14} {1000 * r['step_s']:>8.0f} {r['vs']:>9.2f}x {r['clips_per_s']:>8.1f} {r['params_m']:>9.2f}")


if __name__ == "__main__":
    main()
