"""Loader throughput: seek-decoding crops vs decoding whole segments, measured in one run.

Builds a few 60 s FLAC segments in shards, then runs the real streaming loader (one process, i.e. the
throughput of one DataLoader worker) with the contrastive view (K = 2 crops of 3 s) twice: as shipped
(seek-decode only the crops) and with the segment reader swapped for one that decodes the whole segment
and slices it -- the baseline DESIGN §2 rules out. Also times the bare decode calls.

    python benchmarks/loader.py [--segments 12] [--seconds 60] [--batches 8] [--rounds 3]
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import webdataset as wds

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ssl_music.config import schema  # noqa: E402
from ssl_music.data import stream  # noqa: E402
from ssl_music.data.audio import decode_bytes  # noqa: E402
from ssl_music.data.crops import seconds_to_frames  # noqa: E402
from ssl_music.objectives import view_samplers  # noqa: E402

SR = 16000


def _segment(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Music-like enough for FLAC's predictor: a few partials, a pulse, a little noise."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = rng.uniform(80, 400)
    x = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 6))
    pulse = (np.sin(2 * np.pi * rng.uniform(1.5, 2.5) * t) > 0.95) * rng.standard_normal(t.size)
    return (0.15 * x + 0.2 * pulse + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def build(root: Path, segments: int, seconds: float) -> list[bytes]:
    rng = np.random.default_rng(0)
    blobs = []
    for i in range(segments):
        buf = io.BytesIO()
        sf.write(buf, _segment(rng, seconds), SR, format="FLAC", subtype="PCM_16")
        blobs.append(buf.getvalue())
    entries = []
    for j in range(2):
        name = f"shard-{j:06d}.tar"
        with wds.TarWriter(str(root / name)) as w:
            mine = list(range(j, segments, 2))
            for i in mine:
                meta = {"track_id": f"t{i}", "segment": 0, "offset_s": 0.0, "duration_s": seconds,
                        "sample_rate": SR, "channels": 1, "source": "bench", "labels": {}}
                w.write({"__key__": f"t{i}__0000", "flac": blobs[i], "json": json.dumps(meta).encode()})
        entries.append({"name": name, "samples": len(mine), "hours": len(mine) * seconds / 3600,
                        "sha256": ""})
    (root / "manifest.json").write_text(json.dumps({
        "format": "ssl_music.shards/1", "sample_rate": SR, "channels": 1, "settings": {},
        "shards": entries, "total_samples": segments, "total_hours": segments * seconds / 3600,
        "skipped": []}))
    return blobs


def full_decode_reader(flac: bytes, name: str):
    """Baseline: decode the whole segment once, then slice every crop out of it."""
    x, sr = decode_bytes(flac, mono=True, name=name)
    return x.shape[-1], sr, lambda start, frames: x[start:start + frames]


def loader_clips_per_s(cfg, batches: int) -> float:
    loader = stream.make_loader(cfg, view_samplers(["contrastive"]))
    it = iter(loader)
    next(it)   # warm-up: fills the shuffle buffer
    t0 = time.perf_counter()
    n = 0
    for _ in range(batches):
        n += next(it)["contrastive"].shape[0] * cfg.contrastive.n_views
    return n / (time.perf_counter() - t0)


def decode_calls_per_s(blobs: list[bytes], seconds: float, crop: int, reps: int) -> tuple[float, float]:
    rng = np.random.default_rng(1)
    hi = int(seconds * SR) - crop
    t0 = time.perf_counter()
    for i in range(reps):
        decode_bytes(blobs[i % len(blobs)], start=int(rng.integers(0, hi)), frames=crop)
    seek = reps / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i in range(max(1, reps // 10)):
        decode_bytes(blobs[i % len(blobs)])
    full = max(1, reps // 10) / (time.perf_counter() - t0)
    return seek, full


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--segments", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--crop-s", type=float, default=3.0)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        blobs = build(root, args.segments, args.seconds)
        cfg = schema().data
        cfg.merge_with({"shards": str(root), "sample_rate": SR, "crop_s": args.crop_s,
                        "batch_size": args.batch_size, "num_workers": 0,
                        "batches_per_epoch": args.batches + 1, "shuffle_buffer": 8})
        crop = seconds_to_frames(args.crop_s, SR)
        seek_calls, full_calls = decode_calls_per_s(blobs, args.seconds, crop, reps=100)
        # Alternate the two modes and keep each one's best round, so a burst of load on a shared
        # machine does not land on one side of the ratio only.
        seek = full = 0.0
        original = stream.segment_reader
        for _ in range(args.rounds):
            seek = max(seek, loader_clips_per_s(cfg, args.batches))
            stream.segment_reader = full_decode_reader
            try:
                full = max(full, loader_clips_per_s(cfg, args.batches))
            finally:
                stream.segment_reader = original
    print(f"segments {args.segments} x {args.seconds:.0f} s @ {SR} Hz, crops {args.crop_s} s, "
          f"contrastive K=2, batch {args.batch_size}, one worker process, best of {args.rounds} rounds")
    print(f"decode call    : seek {seek_calls:8.1f} crops/s   full {full_calls:8.1f} segments/s   "
          f"ratio {seek_calls / full_calls:5.1f}x")
    print(f"loader         : seek {seek:8.1f} clips/s    full {full:8.1f} clips/s     "
          f"ratio {seek / full:5.1f}x  (target >= 5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
