"""Shard-building throughput: hours of audio sharded per minute, per worker, for 1 and 2 workers.

Input: a synthetic corpus written as 44.1 kHz WAV (so the build decodes, resamples to 16 kHz, checks,
segments and FLAC-encodes, as it would for real music). The 1-worker run is the baseline; the 2-worker
line gives the speed-up ratio against it.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ssl_music.data.shards import build_shards  # noqa: E402
from ssl_music.data.synth import generate_corpus  # noqa: E402
import webdataset  # noqa: E402,F401  (imported up front so its start-up cost is not timed)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tracks", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--source-rate", type=int, default=44100)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        labels = generate_corpus(tmp / "c", a.tracks, a.seconds, seed=0, sample_rate=a.source_rate, workers=2, fmt="wav")
        base = None
        for workers in (1, 2):
            t0 = time.perf_counter()
            m = build_shards(labels, tmp / f"s{workers}", sample_rate=16000, segment_seconds=60, workers=workers,
                             progress=False)
            wall = time.perf_counter() - t0
            rate = m["total_hours"] / (wall / 60)
            base = base or rate
            print(f"shards build, {workers} worker(s): {m['total_hours']:.3f} h of audio in {wall:.2f} s -> "
                  f"{rate:.2f} h/min ({rate / workers:.2f} h/min per worker; {rate / base:.2f}x vs 1 worker)")


if __name__ == "__main__":
    main()
