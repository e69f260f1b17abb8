"""Synthetic-corpus generation speed on one core: tracks x seconds of audio rendered per wall-second.

Baseline measured in the same run: writing the same amount of white noise to FLAC (I/O + encode only),
so the ratio shows what the music rendering itself costs. Default: 100 tracks x 30 s at 16 kHz.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ssl_music.data.synth import generate_corpus  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tracks", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--sample-rate", type=int, default=16000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        generate_corpus(Path(tmp) / "c", a.tracks, a.seconds, seed=0, sample_rate=a.sample_rate, workers=1)
        synth = time.perf_counter() - t0
        rng = np.random.default_rng(0)
        t0 = time.perf_counter()
        for i in range(a.tracks):
            x = (0.1 * rng.standard_normal(int(a.seconds * a.sample_rate))).astype(np.float32)
            sf.write(Path(tmp) / f"n{i}.flac", x, a.sample_rate, subtype="PCM_16")
        noise = time.perf_counter() - t0
    audio_s = a.tracks * a.seconds
    print(f"synth: {a.tracks} tracks x {a.seconds:g} s at {a.sample_rate} Hz on 1 core: {synth:.2f} s wall "
          f"({audio_s / synth:.0f} audio-s per wall-s, {a.tracks / synth:.1f} tracks/s)")
    print(f"baseline (noise -> FLAC, same amount): {noise:.2f} s; synth / baseline = {synth / noise:.2f}x")


if __name__ == "__main__":
    main()
