"""Training throughput: clips/s, data-wait share and peak memory of real pretraining steps.

Runs `ssl_music.train.pretrain` on a small synthetic corpus (built once under --work) for each encoder and
prints one row per run, with the tiny CNN as the in-run baseline. On a CUDA machine it also reports GPU
memory; the issue's GPU setting is `--encoders short_chunk_resnet --batch-size 256 --preset full --backend gpu`.

    python benchmarks/train.py                         # CPU: tiny vs short_chunk_resnet, batch 16, 3 s crops
    python benchmarks/train.py --steps 60 --batch-size 256 --encoders short_chunk_resnet --preset full
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


def run(shards: Path, encoder: str, args) -> dict:
    import torch

    from ssl_music.config import CONFIG_DIR, load_config
    from ssl_music.train import pretrain

    root = Path(tempfile.mkdtemp(prefix=f"bench-{encoder}-"))
    overrides = [
        f"data.shards={shards}", f"trainer.root_dir={root}", f"model.encoder={encoder}",
        f"model.width={args.width}", f"data.batch_size={args.batch_size}", f"data.crop_s={args.crop_s}",
        f"data.num_workers={args.workers}", f"data.batches_per_epoch={args.steps}", f"augment.preset={args.preset}",
        f"augment.backend={args.backend}", f"trainer.max_steps={args.steps}", "trainer.log_every_n_steps=1",
        "trainer.progress_bar=false", "trainer.logger=csv", f"trainer.ckpt_every_n_steps={10 * args.steps}",
        "monitor.every_n_steps=0", f"trainer.precision={getattr(args, 'precision', 'auto')}",
    ]
    cfg = load_config(CONFIG_DIR / "pretrain" / f"{args.objective}.yaml", overrides)
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
    out = {"encoder": encoder, "clips_per_s": clips[len(clips) // 2], "data_wait": wait[len(wait) // 2],
           "augment": aug[len(aug) // 2],
           "wall_s": wall, "gpu_mem_gb": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None}
    shutil.rmtree(root, ignore_errors=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoders", default="tiny,short_chunk_resnet")
    p.add_argument("--objective", default="contrastive", choices=["contrastive", "triplet", "tempo", "multitask"])
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--crop-s", type=float, default=3.0)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--preset", default="stretch_pitch")
    p.add_argument("--backend", default="gpu", choices=["cpu", "gpu"])
    p.add_argument("--precision", default="auto", help="trainer.precision (auto: bf16-mixed on GPU, 32 on CPU)")
    p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "ssl_music_bench_train"))
    args = p.parse_args()
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"
    shards = corpus(Path(args.work))
    print(f"device: {device}; objective {args.objective}, batch {args.batch_size}, {args.crop_s} s crops, "
          f"preset {args.preset} on the {args.backend} backend, {args.steps} steps, median of steps after warm-up")
    results = [run(shards, name, args) for name in args.encoders.split(",")]
    base = results[0]["clips_per_s"]
    print(f"{'encoder':<20} {'clips/s':>9} {'vs ' + results[0]['encoder']:>12} {'data-wait':>10} {'augment':>8} {'wall s':>8} {'GPU GiB':>8}")
    for r in results:
        mem = f"{r['gpu_mem_gb']:.2f}" if r["gpu_mem_gb"] is not None else "-"
        print(f"{r['encoder']:<20} {r['clips_per_s']:>9.1f} {r['clips_per_s'] / base:>11.2f}x "
              f"{100 * r['data_wait']:>9.1f}% {100 * r['augment']:>7.1f}% {r['wall_s']:>8.1f} {mem:>8}")


if __name__ == "__main__":
    main()
