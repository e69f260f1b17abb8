"""Segmentation from temporal-proximity embeddings (McCallum 2019), measured: does the triplet objective
segment music better than MFCC / chroma frames, the random-init twin and a contrastive-only model trained
for the same steps?

Trains two tiny encoders on one synthetic corpus with the same steps, batch, crops, augmentation and seed --
triplet only (temporal proximity: positive within pos_max_s, negative 9-27 s away in the same track) and
contrastive only (NT-Xent over two views of a track) -- then runs configs/eval/segmentation.yaml on each
checkpoint: a separate synthetic corpus (sections of 8-16 s) and dev-set clips joined 4 per track. Prints
HR@0.5 / HR@3 F (mean over tracks [95 % CI]) per feature set and the paired differences triplet − others.

    python benchmarks/segmentation.py          # the CPU size measured in the README (21 min on 2 shared cores)
    python benchmarks/segmentation.py --steps 2000 --train-tracks 400 --eval-tracks 100 --encoder short_chunk_resnet
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "disabled")
REPO = Path(__file__).resolve().parents[1]
OBJECTIVES = {"triplet": ("objectives.triplet.weight=1.0", "objectives.contrastive.weight=0.0"),
              "contrastive": ("objectives.triplet.weight=0.0", "objectives.contrastive.weight=1.0")}


def corpora(work: Path, args) -> tuple[Path, Path]:
    from ssl_music.data.shards import build_shards
    from ssl_music.data.synth import generate_corpus

    shards, eval_dir = work / "shards", work / "corpus_eval"
    if not (shards / "manifest.json").is_file():
        labels = generate_corpus(work / "corpus_train", args.train_tracks, args.seconds, seed=11, workers=2)
        build_shards(labels, shards, sample_rate=16000, segment_seconds=60, shard_size_mb=8, workers=2, progress=False)
    if not (eval_dir / "labels.csv").is_file():
        generate_corpus(eval_dir, args.eval_tracks, args.seconds, seed=12, workers=2)
    return shards, eval_dir / "labels.csv"


def train(work: Path, shards: Path, objective: str, args) -> Path:
    from ssl_music.config import CONFIG_DIR, load_config
    from ssl_music.train import pretrain

    root = work / f"run_{objective}"
    overrides = [f"data.shards={shards}", f"trainer.root_dir={root}", f"trainer.max_steps={args.steps}",
                 f"model.encoder={args.encoder}", "model.periodicity=false", "objectives.tempo.weight=0.0",
                 *OBJECTIVES[objective], f"data.batch_size={args.batch_size}", "monitor.every_n_steps=0",
                 f"trainer.ckpt_every_n_steps={args.steps}", "trainer.progress_bar=false", "trainer.seed=0"]
    if not (root / "DONE").is_file():
        t0 = time.perf_counter()
        pretrain(load_config(CONFIG_DIR / "pretrain" / "demo.yaml", overrides))
        print(f"[bench] {objective}: {args.steps} steps in {time.perf_counter() - t0:.0f} s", flush=True)
    return root / "checkpoints" / "last.ckpt"


def evaluate(work: Path, ckpt: Path, objective: str, synth_labels: Path, args) -> dict:
    from ssl_music_eval.suite import run_suite

    overrides = [f"datasets.0.path={synth_labels}", f"datasets.1.path={args.clips}",
                 f"datasets.1.concat.tracks={args.joined_tracks}", f"datasets.1.concat.dir={work / 'joined'}",
                 f"embed.cache_dir={work / 'cache'}", f"segmentation.bootstrap={args.bootstrap}"]
    t0 = time.perf_counter()
    res = run_suite(ckpt, REPO / "configs" / "eval" / "segmentation.yaml", work / f"eval_{objective}", overrides,
                    progress=False)
    print(f"[bench] evaluation of {objective}: {time.perf_counter() - t0:.0f} s", flush=True)
    return res


def table(results: dict[str, dict], bootstrap: int) -> str:
    import numpy as np

    from ssl_music_eval.metrics import mean_ci

    rows = {"triplet": ("triplet", "model"), "contrastive": ("contrastive", "model"),
            "random init": ("triplet", "random_init"), "MFCC frames": ("triplet", "mfcc"),
            "chroma frames": ("triplet", "chroma")}
    first = results["triplet"]["datasets"]
    cols = [(ds, task, k) for ds, d in first.items() for task in d["tasks"] for k in ("hr@0.5", "hr@3")]
    fmt = lambda s: f"{s['mean']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}]"  # noqa: E731
    head = f"{'features':<14}" + "".join(f"{ds + ' ' + k.upper():>30}" for ds, _, k in cols)
    lines = [head, "-" * len(head)]
    per_track = {}
    for label, (run, fs) in rows.items():
        cells = []
        for ds, task, k in cols:
            seg = results[run]["datasets"][ds]["tasks"][task]["segmentation"]
            cells.append(fmt(seg["scores"][fs][k]["f"]))
            per_track[label, ds, k] = np.asarray(seg["per_track_f"][fs][k])
        lines.append(f"{label:<14}" + "".join(f"{c:>30}" for c in cells))
    lines += ["", "paired differences of HR F, triplet minus each (mean over tracks [95 % CI]):"]
    for label in rows:
        if label == "triplet":
            continue
        cells = []
        for ds, _, k in cols:
            a, b = per_track["triplet", ds, k], per_track[label, ds, k]
            draws = np.random.default_rng(0).integers(0, len(a), (bootstrap, len(a)))
            s = mean_ci(a - b, draws, bounds=(-1.0, 1.0))
            cells.append(f"{s['mean']:+.3f} [{s['ci_low']:+.3f}, {s['ci_high']:+.3f}]")
        lines.append(f"{'− ' + label:<14}" + "".join(f"{c:>30}" for c in cells))
    lines.append("")
    for ds, task, _ in cols[::2]:
        t = {run: results[run]["datasets"][ds]["tasks"][task] for run in results}
        per = t["triplet"]["segmentation"]["boundaries_per_track"]
        lines.append(f"{ds}: {t['triplet']['n']} tracks; boundaries per track: reference {per['reference']:.1f}, "
                     f"triplet {per['model']:.1f}, contrastive {t['contrastive']['segmentation']['boundaries_per_track']['model']:.1f}, "
                     + ", ".join(f"{k} {v:.1f}" for k, v in per.items() if k not in ("reference", "model")))
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=150, help="training steps of each model (the same for both)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--encoder", default="tiny")
    p.add_argument("--train-tracks", type=int, default=64)
    p.add_argument("--eval-tracks", type=int, default=32)
    p.add_argument("--seconds", type=float, default=60.0, help="length of each synthetic track")
    p.add_argument("--clips", default=str(REPO.parent / "shared" / "devset" / "labels.csv"),
                   help="CSV manifest of the clips joined into tracks (default: the shared dev set)")
    p.add_argument("--joined-tracks", type=int, default=20, help="joined tracks (4 clips each); 0 = all clips")
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "ssl_music_bench_segmentation"))
    args = p.parse_args()
    work = Path(args.work)
    t0 = time.perf_counter()
    shards, synth_labels = corpora(work, args)
    print(f"[bench] corpora: {time.perf_counter() - t0:.0f} s", flush=True)
    results = {}
    for objective in OBJECTIVES:
        ckpt = train(work, shards, objective, args)
        results[objective] = evaluate(work, ckpt, objective, synth_labels, args)
    (work / "summary.json").write_text(json.dumps({k: v["datasets"] for k, v in results.items()}, default=str))
    print(f"\n{args.steps} steps each, encoder {args.encoder}, batch {args.batch_size}, {args.train_tracks} training "
          f"tracks of {args.seconds:g} s; total {time.perf_counter() - t0:.0f} s; reports: {work}/eval_*/report.html\n")
    print(table(results, args.bootstrap))


if __name__ == "__main__":
    main()
