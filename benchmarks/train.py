"""Training throughput: clips/s, data-wait share and peak memory of real pretraining steps.

Runs `ssl_music.train.pretrain` on a small synthetic corpus (built once under --work) for each encoder and
augmentation backend and prints one row per run, with the tiny CNN as the in-run baseline and, for each
encoder, its first backend as the baseline of the others (so `--backend gpu,spectral` compares the
augmentation backends in one process). The augment column is the share of a step spent augmenting. On a
CUDA machine it also reports GPU memory; the issue's GPU setting is
`--encoders short_chunk_resnet --batch-size 256 --preset full --backend gpu`.

    python benchmarks/train.py                         # CPU: tiny vs short_chunk_resnet, batch 16, 3 s crops
    python benchmarks/train.py --encoders tiny --objective demo --preset mild_stretch_pitch --backend gpu,spectral
    python benchmarks/train.py --encoders tiny --objective demo --preset mild_stretch_pitch --backend gpu,spectral \
        --interleaved --steps 12                       # the same, the backends taking turns step by step
    python benchmarks/train.py --steps 60 --batch-size 256 --encoders short_chunk_resnet --preset full
    python benchmarks/train.py --encoders tiny --objective demo --override model.backend=attention --crop-s 10
                                                       # a back-end arm (issue #25); peak RSS printed at the end
    python benchmarks/train.py --config configs/pretrain/real_music.yaml --encoders harmonic_cnn --preset \
        mild_stretch_pitch --override model.frontend=auto --override model.backend=attention --crop-s 10
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "disabled")


def corpus(work: Path, tracks: int = 24, seconds: float = 30.0) -> Path:
    from ssl_music.data.shards import build_shards
    from ssl_music.data.synth import generate_corpus

    shards = work / "shards"
    if not (shards / "manifest.json").is_file():
        labels = generate_corpus(work / "corpus", tracks, seconds, seed=0)
        build_shards(labels, shards, shard_size_mb=4, workers=2, progress=False)
    return shards


def recipe(args) -> Path:
    """The pretraining config every run starts from: --config, else configs/pretrain/<objective>.yaml."""
    from ssl_music.config import CONFIG_DIR

    return Path(args.config) if getattr(args, "config", "") else CONFIG_DIR / "pretrain" / f"{args.objective}.yaml"


def run(shards: Path, encoder: str, args, backend: str | None = None) -> dict:
    """One run; ``backend`` defaults to ``args.backend`` (one name)."""
    backend = backend or args.backend
    import torch

    from ssl_music.config import load_config
    from ssl_music.train import pretrain

    root = Path(tempfile.mkdtemp(prefix=f"bench-{encoder}-"))
    overrides = [
        f"data.shards={shards}", f"trainer.root_dir={root}", f"model.encoder={encoder}",
        f"model.width={args.width}", f"data.batch_size={args.batch_size}", f"data.crop_s={args.crop_s}",
        f"data.num_workers={args.workers}", f"data.batches_per_epoch={args.steps}", f"augment.preset={args.preset}",
        f"augment.backend={backend}", f"trainer.max_steps={args.steps}", "trainer.log_every_n_steps=1",
        "trainer.progress_bar=false", "trainer.logger=csv", f"trainer.ckpt_every_n_steps={10 * args.steps}",
        "monitor.every_n_steps=0", f"trainer.precision={getattr(args, 'precision', 'auto')}",
        *getattr(args, "override", []),
    ]
    cfg = load_config(recipe(args), overrides)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    pretrain(cfg)
    wall = time.perf_counter() - t0
    rows = list(csv.DictReader(open(root / "logs" / "version_0" / "metrics.csv")))
    # skip warm-up steps (first batches pay for worker start-up and allocator growth)
    perf = [r for r in rows if r.get("perf/clips_per_s") and int(r["step"]) >= min(5, args.steps // 3)]
    clips = sorted(float(r["perf/clips_per_s"]) for r in perf)
    wait = sorted(float(r["perf/data_wait_share"]) for r in perf)
    aug = sorted(float(r.get("perf/augment_share") or 0.0) for r in perf)
    out = {"encoder": encoder, "backend": backend, "clips_per_s": clips[len(clips) // 2], "data_wait": wait[len(wait) // 2],
           "augment": aug[len(aug) // 2],
           "wall_s": wall, "gpu_mem_gb": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None}
    shutil.rmtree(root, ignore_errors=True)
    return out


def _views(module, batch_size: int, rng) -> dict:
    """A batch of every enabled objective's views, cut by its own sampler from one noise track (timing does
    not depend on the audio)."""
    import numpy as np
    import torch

    from ssl_music.objectives import OBJECTIVES

    d, sr = module.cfg.data, int(module.cfg.data.sample_rate)
    track = (0.1 * rng.standard_normal(60 * sr)).astype(np.float32)
    read = lambda start, frames: track[start:start + frames]  # noqa: E731
    out = {}
    for name in module.objectives:
        sample = OBJECTIVES[name].sampler(d[name], sr)
        length = module.augmenter.source_len(name)
        out[name] = torch.from_numpy(np.stack([sample("t", len(track), read, length, rng) for _ in range(batch_size)]))
    return out


def interleaved(encoder: str, backends: list, args) -> list:
    """The training step without the loader (augment, forward, backward, optimiser step), the backends taking
    turns step by step on the same batch, so that a change in a shared machine's load falls on them alike;
    medians over the steps after two of warm-up, in float32."""
    import numpy as np
    import torch
    from omegaconf import OmegaConf

    from ssl_music.config import load_config
    from ssl_music.module import PretrainModule

    device = "cuda" if torch.cuda.is_available() else "cpu"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    modules = {}
    for backend in backends:
        cfg = load_config(recipe(args), [
            "data.shards=unused", f"model.encoder={encoder}", f"model.width={args.width}",
            f"data.batch_size={args.batch_size}", f"data.crop_s={args.crop_s}", f"augment.preset={args.preset}",
            f"augment.backend={backend}", "monitor.every_n_steps=0", *getattr(args, "override", [])])
        module = PretrainModule(OmegaConf.to_container(cfg, resolve=True)).to(device).train()
        modules[backend] = (module, torch.optim.AdamW(module.parameters(), lr=1e-4))
    rng = np.random.default_rng(0)
    times = {b: ([], []) for b in backends}
    for step in range(args.steps):
        batch = {k: v.to(device) for k, v in _views(next(iter(modules.values()))[0], args.batch_size, rng).items()}
        for backend, (module, opt) in modules.items():
            t0 = time.perf_counter()
            views = module.on_after_batch_transfer(dict(batch), 0)
            sync()
            t1 = time.perf_counter()
            losses = module.compute_losses(views)
            sum(module.cfg.objectives[n].weight * losses[n] for n in module.objectives).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            sync()
            if step >= 2:
                times[backend][0].append(t1 - t0)
                times[backend][1].append(time.perf_counter() - t0)
    clips = sum(v.shape[0] * v.shape[1] for k, v in batch.items() if k in next(iter(modules.values()))[0].objectives)
    return [{"encoder": encoder, "backend": b, "augment_s": float(np.median(a)), "step_s": float(np.median(s)),
             "augment": float(np.median(np.array(a) / np.array(s))), "clips_per_s": clips / float(np.median(s))}
            for b, (a, s) in times.items()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoders", default="tiny,short_chunk_resnet")
    p.add_argument("--objective", default="contrastive", choices=["contrastive", "triplet", "tempo", "multitask", "demo"],
                   help="configs/pretrain/<name>.yaml (demo: the `make demo` recipe, multitask at CPU scale)")
    p.add_argument("--config", default="", help="a pretraining config to start from instead of --objective's, e.g. "
                                                "configs/pretrain/real_music.yaml (its data.shards is replaced)")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--crop-s", type=float, default=3.0)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--preset", default="stretch_pitch")
    p.add_argument("--backend", default="gpu",
                   help="augment.backend, or several comma-separated (cpu, gpu, spectral): each runs in this process")
    p.add_argument("--precision", default="auto", help="trainer.precision (auto: bf16-mixed on GPU, 32 on CPU)")
    p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "ssl_music_bench_train"))
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every run (repeatable), e.g. model.backend=attention data.crop_s=10 "
                        "(--crop-s sets data.crop_s first, so a later override wins)")
    p.add_argument("--interleaved", action="store_true",
                   help="time the step without the loader, the backends taking turns step by step (shared machines)")
    args = p.parse_args()
    import torch

    if args.interleaved:
        return print_interleaved(args)

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"
    shards = corpus(Path(args.work))
    backends = args.backend.split(",")
    print(f"device: {device}; recipe {recipe(args).name}, batch {args.batch_size}, {args.crop_s} s crops, "
          f"preset {args.preset} on the {' / '.join(backends)} backend, {args.steps} steps, median of steps after warm-up")
    results = [run(shards, name, args, backend) for name in args.encoders.split(",") for backend in backends]
    base = results[0]["clips_per_s"]
    first = {}
    for r in results:
        first.setdefault(r["encoder"], r["clips_per_s"])
    print(f"{'encoder':<20} {'backend':<9} {'clips/s':>9} {'vs ' + results[0]['encoder']:>12} {'vs ' + backends[0]:>10} "
          f"{'data-wait':>10} {'augment':>8} {'wall s':>8} {'GPU GiB':>8}")
    for r in results:
        mem = f"{r['gpu_mem_gb']:.2f}" if r["gpu_mem_gb"] is not None else "-"
        print(f"{r['encoder']:<20} {r['backend']:<9} {r['clips_per_s']:>9.1f} {r['clips_per_s'] / base:>11.2f}x "
              f"{r['clips_per_s'] / first[r['encoder']]:>9.2f}x {100 * r['data_wait']:>9.1f}% {100 * r['augment']:>7.1f}% "
              f"{r['wall_s']:>8.1f} {mem:>8}")
    import resource

    # the process's high-water mark: the largest run's, whichever it was (run one arm per process to compare)
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def print_interleaved(args) -> None:
    import torch

    backends = args.backend.split(",")
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"
    print(f"device: {device}; recipe {recipe(args).name}, batch {args.batch_size}, {args.crop_s} s crops, preset "
          f"{args.preset}; backends {' / '.join(backends)} taking turns on the same batches, {args.steps} steps, "
          f"medians after 2 of warm-up, no loader")
    print(f"{'encoder':<20} {'backend':<9} {'step ms':>8} {'augment ms':>11} {'augment':>8} {'clips/s':>9} {'vs ' + backends[0]:>9}")
    for encoder in args.encoders.split(","):
        rows = interleaved(encoder, backends, args)
        for r in rows:
            print(f"{encoder:<20} {r['backend']:<9} {1000 * r['step_s']:>8.0f} {1000 * r['augment_s']:>11.0f} "
                  f"{100 * r['augment']:>7.1f}% {r['clips_per_s']:>9.1f} {r['clips_per_s'] / rows[0]['clips_per_s']:>8.2f}x")


if __name__ == "__main__":
    main()
