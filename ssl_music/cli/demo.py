"""`ssl-music demo`: the whole pipeline on the built-in synthetic corpus, no download, no GPU needed.

synth (train + separate eval corpus) → shards → multitask pretraining (mild_stretch_pitch, online k-NN) →
synthetic evaluation suite (probes, k-NN, locality, tempo; random-init and MFCC+chroma baselines) → report.
Every stage is skipped when its output is already complete, so a second `make demo` resumes.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from ssl_music.config import CONFIG_DIR

# scale -> (train tracks, eval tracks, seconds per track, pretrain overrides, suite overrides)
SCALES: dict[str, dict] = {
    # the pipeline end to end in well under a minute, to check an install (its figures mean nothing)
    "tiny": {"train_tracks": 6, "eval_tracks": 24, "seconds": 8.0,
             "overrides": ["trainer.max_steps=6", "data.batch_size=4", "data.batches_per_epoch=6",
                           "data.num_workers=0", "data.crop_s=1.0", "model.width=8", "model.embed_dim=32",
                           "model.proj_hidden=32", "model.proj_dim=16", "model.tempo_hidden=16",
                           "trainer.ckpt_every_n_steps=6", "monitor.every_n_steps=6", "monitor.max_items=24",
                           "optim.warmup_steps=1"],
             "suite_overrides": ["probes.mlp=false", "probes.bootstrap=0", "seeds=[0]", "folds=2",
                                 "knn.ks=[1,5]", "tempo.windows=1", "embed.batch_size=8"]},
    "small": {"train_tracks": 192, "eval_tracks": 288, "seconds": 30.0, "overrides": [], "suite_overrides": []},
    "full": {"train_tracks": 2000, "eval_tracks": 400, "seconds": 60.0,
             "overrides": ["trainer.accelerator=auto", "trainer.devices=auto", "model.encoder=short_chunk_resnet",
                           "model.width=128", "model.embed_dim=512", "model.n_mels=96", "model.hop_ms=10", "data.batch_size=256",
                           "data.num_workers=8", "trainer.max_steps=20000", "augment.backend=gpu",
                           "optim.warmup_steps=500", "data.batches_per_epoch=500"], "suite_overrides": []},
}


WORKERS = 2  # processes for the corpus and the shards: the demo is sized for 2 cores


def _stage(name: str, t0: float) -> None:
    print(f"[demo {time.perf_counter() - t0:6.1f}s] {name}", flush=True)


def run_demo(out: Path, scale: str = "small", extra_overrides: list[str] | None = None) -> dict:
    from ssl_music_eval.suite import run_suite
    from ssl_music.cli.pretrain import monitored_pretrain
    from ssl_music.config import load_config
    from ssl_music.data.shards import build_shards
    from ssl_music.data.synth import generate_corpus

    s = SCALES[scale]
    out = out.resolve()
    t0 = time.perf_counter()
    train_dir, eval_dir, shard_dir = out / "corpus_train", out / "corpus_eval", out / "shards"
    run_dir, report_dir = out / "run", out / "report"

    _stage(f"1/5 synthetic corpus: {s['train_tracks']} train + {s['eval_tracks']} eval tracks × {s['seconds']:.0f} s", t0)
    # each track is rendered from its own seed, so the corpus is the same for any number of workers
    if not (train_dir / "labels.csv").is_file():
        generate_corpus(train_dir, s["train_tracks"], s["seconds"], seed=1, workers=WORKERS)
    if not (eval_dir / "labels.csv").is_file():
        generate_corpus(eval_dir, s["eval_tracks"], s["seconds"], seed=2, workers=WORKERS)

    _stage("2/5 shards", t0)
    build_shards(train_dir / "labels.csv", shard_dir, sample_rate=16000, segment_seconds=60,
                 shard_size_mb=8, workers=WORKERS, progress=False)

    _stage("3/5 pretraining (multitask: contrastive + triplet + tempo, mild_stretch_pitch augmentation)", t0)
    overrides = [f"data.shards={shard_dir}", f"trainer.root_dir={run_dir}",
                 f"monitor.labels_csv={eval_dir / 'labels.csv'}"] + s["overrides"] + list(extra_overrides or [])
    cfg = load_config(CONFIG_DIR / "pretrain" / "demo.yaml", overrides)
    if not (run_dir / "DONE").is_file():
        monitored_pretrain(cfg)
    ckpt = run_dir / "checkpoints" / "last.ckpt"

    _stage("4/5 evaluation (synthetic suite, beside random-init and MFCC+chroma baselines)", t0)
    results = run_suite(ckpt, CONFIG_DIR / "eval" / "synthetic.yaml", report_dir,
                        overrides=[f"datasets.0.path={eval_dir / 'labels.csv'}"] + s["suite_overrides"])

    _stage("5/5 done", t0)
    print(summary_table(results))
    print(f"\nreport: {report_dir / 'report.html'}\n        {report_dir / 'report.md'}")
    return results


def summary_table(results: dict) -> str:
    """A short terminal table: per task, the model vs baselines on the linear probe and k-NN (k=5)."""
    from ssl_music_eval.reports.report import summary_rows

    rows = summary_rows(results)
    header = f"{'task':<12} {'metric':<22} {'model':>8} {'random':>8} {'classical':>10}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r['task']:<12} {r['metric']:<22} {r['model']:>8.3f} {r['random_init']:>8.3f} {r['mfcc_chroma']:>10.3f}")
    lines.append("classical = MFCC+chroma statistics for probes and k-NN, librosa.feature.tempo for tempo")
    return "\n".join(lines)


def add_cli(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo_out", help="output folder (re-running resumes)")
    parser.add_argument("--scale", choices=sorted(SCALES), default="small",
                        help="tiny: < 1 min, checks an install (figures meaningless); small: 2 CPU cores, "
                             "<= 10 min; full: a larger run for a GPU machine")
    parser.add_argument("overrides", nargs="*", help="extra pretraining overrides, e.g. trainer.max_steps=50")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    run_demo(Path(args.out), args.scale, args.overrides)
    return 0
