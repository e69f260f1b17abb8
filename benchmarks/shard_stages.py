"""Where a shard build's time goes, file by file, in one process: header, decode, downmix, resample, checks,
FLAC encode (what ``process_track`` does, timed stage by stage), plus decode speed per codec.

    python benchmarks/shard_stages.py /usr/share/games/hyperrogue/music [--every 4] [--sample-rate 16000]
    python benchmarks/shard_stages.py files.csv          # a CSV with a `path` column

Measured on the 346 Debian game-music files (every 4th: 87 files, 3.64 h): decode 76.6 %, resample 11.8 %, FLAC
6.7 %, downmix 3.7 %; Opus decodes at 235x real time against Vorbis 592x and MP3 853x (libsndfile).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ssl_music.data import audio as A  # noqa: E402
from ssl_music.data.shards import list_inputs  # noqa: E402
from ssl_music.errors import AudioError  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", help="folder (recursive) or CSV manifest, as `ssl-music shards build` takes")
    ap.add_argument("--every", type=int, default=1, help="time every N-th file only")
    ap.add_argument("--sample-rate", type=int, default=16000)
    ap.add_argument("--segment-seconds", type=float, default=60.0)
    a = ap.parse_args()
    items = list_inputs(a.input)[:: a.every]
    stages = dict.fromkeys(("header", "decode", "downmix", "resample", "checks", "flac"), 0.0)
    by_codec: dict[str, list[float]] = {}
    seconds, skipped = 0.0, 0
    seg = int(a.segment_seconds * a.sample_rate)
    for it in items:
        try:
            t = time.perf_counter()
            info = sf.info(it["path"])
            t1 = time.perf_counter()
            x, sr = A.decode_file(it["path"])
            t2 = time.perf_counter()
            x = A.to_mono(x)
            t3 = time.perf_counter()
            y = A.resample(x, sr, a.sample_rate)
            t4 = time.perf_counter()
            A.check_audio(y, a.sample_rate, 1.0, it["path"])
            t5 = time.perf_counter()
        except (AudioError, RuntimeError) as exc:
            skipped += 1
            print(f"skipped {it['path']}: {exc}", file=sys.stderr)
            continue
        for s in range(0, len(y), seg):
            A.encode_flac(y[s:s + seg], a.sample_rate)
        t6 = time.perf_counter()
        for k, v in zip(stages, (t1 - t, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)):
            stages[k] += v
        codec = by_codec.setdefault(info.subtype, [0.0, 0.0])
        codec[0] += x.shape[-1] / sr
        codec[1] += t2 - t1
        seconds += len(y) / a.sample_rate
    total = sum(stages.values())
    print(f"{len(items) - skipped} files ({skipped} skipped), {seconds / 3600:.3f} h of audio in {total:.1f} s: "
          f"{seconds / 3600 / (total / 60):.2f} h of audio per minute in one process")
    for k, v in stages.items():
        print(f"  {k:9s} {v:7.2f} s  {100 * v / max(total, 1e-9):5.1f} %")
    for codec, (secs, dec) in sorted(by_codec.items()):
        print(f"  decode {codec}: {secs / 3600:.2f} h in {dec:.1f} s ({secs / max(dec, 1e-9):.0f}x real time)")


if __name__ == "__main__":
    main()
