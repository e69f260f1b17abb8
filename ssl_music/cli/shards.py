"""`ssl-music shards build | inspect | verify`."""
from __future__ import annotations

import argparse
import os
import sys

from ssl_music.data.shards import build_shards, inspect_shards, verify_shards


def _cmd_build(args: argparse.Namespace) -> int:
    m = build_shards(args.input, args.out, args.sample_rate, args.segment_s, args.shard_size_mb,
                     args.workers, args.mono, args.min_s, progress=not args.quiet)
    print(f"{len(m['shards'])} shards, {m['total_samples']} samples, {m['total_hours']:.3f} h in {args.out}; "
          f"{len(m['skipped'])} file(s) skipped, {len(m['notes'])} kept with a note (see inspect)")
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    print(inspect_shards(args.dir))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    problems = verify_shards(args.dir)
    for p in problems:
        print(p, file=sys.stderr)
    print(f"{args.dir}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


def add_cli(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action")
    b = sub.add_parser("build", help="audio folder or CSV manifest -> shards + manifest.json",
                       description="Decode, resample and cut every audio file of INPUT (folders, recursive, and/or "
                                   "CSV manifests with a 'path' column) into FLAC segments in WebDataset shards "
                                   "plus manifest.json, on --workers processes. Re-running resumes an interrupted "
                                   "build or grows a finished one by the files added since. Undecodable, cut, "
                                   "silent and too short files are named and skipped, with the same rules and "
                                   "words as `index build`.")
    b.add_argument("input", nargs="+", help="folder(s) (recursive) and/or CSV manifest(s) with a 'path' column")
    b.add_argument("--out", required=True, help="shard folder (created; re-running resumes or grows it)")
    b.add_argument("--sample-rate", type=int, default=16000, help="sample rate of the shards in Hz (inputs are resampled)")
    # times in seconds are spelt -s, as in --hop-s and the config's crop_s; the older spellings stay, hidden
    b.add_argument("--segment-s", type=float, default=60.0, help="length of a stored segment in seconds")
    b.add_argument("--segment-seconds", dest="segment_s", type=float, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    b.add_argument("--shard-size-mb", type=float, default=256.0, help="target size of one shard file")
    b.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1),
                   help="decoding processes (default: the cores but one)")
    b.add_argument("--mono", action=argparse.BooleanOptionalAction, default=True,
                   help="mix to mono (--no-mono keeps stereo; mono files are doubled)")
    b.add_argument("--min-s", type=float, default=1.0, help="shorter files are skipped, and shorter tails dropped")
    b.add_argument("--min-seconds", dest="min_s", type=float, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=_cmd_build)
    i = sub.add_parser("inspect", help="summary of a shard folder")
    i.add_argument("dir", help="shard folder (holds manifest.json)")
    i.set_defaults(func=_cmd_inspect)
    v = sub.add_parser("verify", help="check checksums and decode every sample; non-zero exit on problems")
    v.add_argument("dir", help="shard folder (holds manifest.json)")
    v.set_defaults(func=_cmd_verify)
