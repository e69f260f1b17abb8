"""`ssl-music synth`: write a synthetic corpus."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_cli(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (audio/, labels.csv, sections.csv)")
    parser.add_argument("--tracks", type=int, default=100, help="number of tracks")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each track in seconds")
    parser.add_argument("--seed", type=int, default=0, help="random seed (each track derives its own)")
    parser.add_argument("--sample-rate", type=int, default=16000, help="sample rate of the files in Hz")
    parser.add_argument("--workers", type=int, default=1, help="processes rendering tracks (same corpus for any number)")
    parser.add_argument("--format", choices=["flac", "wav"], default="flac", help="audio file format")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ssl_music.data.synth import generate_corpus

    path = generate_corpus(args.out, args.tracks, args.seconds, args.seed, args.sample_rate, args.workers, args.format)
    print(f"wrote {args.tracks} tracks x {args.seconds:g} s to {Path(args.out) / 'audio'}; labels: {path}")
    return 0
