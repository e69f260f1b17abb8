"""`ssl-music index`: build a searchable catalogue from a checkpoint (resumable, in parts), merge parts, inspect."""
from __future__ import annotations

import argparse
import sys


def _part(text: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--part {text!r}: expected i/N, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"--part {text!r}: needs 0 <= i < N")
    return i, n


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _cmd_build(args: argparse.Namespace) -> int:
    from ssl_music.catalogue.build import build_index

    part, parts = args.part
    result = build_index(args.input, args.checkpoint, args.out, part=part, parts=parts, batch_files=args.batch_files,
                         workers=args.threads, device=args.device, min_s=args.min_s,
                         progress=None if args.quiet else _say)
    s = result["stats"]
    changes = (f"{s['added']} added, {s['changed']} changed, {s['removed']} removed, "
               f"{s['unchanged']} unchanged")
    if result["up_to_date"]:
        print(f"part {part}/{parts} of {args.out} is up to date with {args.input}: {changes}; nothing to do")
        return 0
    if s["batches"]:
        rt = s["seconds"] / s["wall"] if s["wall"] > 0 else float("nan")
        print(f"part {part}/{parts}: {changes}; embedded {s['tracks']} tracks ({s['seconds'] / 3600:.3f} h) in "
              f"{s['wall']:.1f} s = {rt:.0f}x real time, skipped {s['skipped']} -> {args.out}")
        print(f"  stages (s): decode {s['decode']:.2f} (on {s['workers']} threads), frame {s['frame']:.2f}, "
              f"encode {s['encode']:.2f}, write {s['write']:.2f}, waiting for decode {s['wait']:.2f}")
    else:
        print(f"part {part}/{parts}: {changes}; nothing to embed -> {args.out}")
    if "index" in result:
        _print_info(result["index"], args.out)
    elif parts > 1:
        print(f"  when every part is done: ssl-music index merge {args.out}")
    return 0


def _print_info(meta: dict, path) -> None:
    print(f"index {path}: {meta['tracks']} tracks, {meta['crops']} crops of {meta['crop_s']:g} s, "
          f"{meta['hours']:.3f} h; checkpoint {meta['checkpoint']} (identity {meta['identity']}); "
          f"{len(meta['skipped'])} file(s) skipped")
    for s in meta["skipped"][:20]:
        print(f"  skipped {s['reason']}")


def _cmd_merge(args: argparse.Namespace) -> int:
    from ssl_music.catalogue.store import merge_index

    _print_info(merge_index(args.index), args.index)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from ssl_music.catalogue.store import open_index

    cat = open_index(args.index)
    _print_info(cat.meta, args.index)
    ids = cat.tracks.column("track_id").to_pylist()
    print(f"  track ids (queries for `ssl-music search`): {', '.join(ids[:3])}{', ...' if len(ids) > 3 else ''}")
    return 0


def add_cli(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="index_command")
    p = sub.add_parser("build", help="embed a collection into an index (resumable; --part i/N for distribution)",
                       description="Embed every track of INPUT (a folder of audio, a CSV manifest with a 'path' "
                                   "column, or a shards folder) with CHECKPOINT: per-crop and per-track embeddings. "
                                   "Committed in batches; re-running resumes where a killed build stopped, and "
                                   "brings the index up to date with INPUT: new and changed files (by path, size "
                                   "and modification time) are embedded, deleted ones dropped, each counted. "
                                   "Undecodable, silent and too short files are named and skipped, as "
                                   "`shards build` skips them.")
    p.add_argument("input", help="folder of audio, CSV manifest with a 'path' column, or shards folder")
    p.add_argument("--checkpoint", required=True, help="ssl_music checkpoint (.ckpt) or `ssl-music export` folder")
    p.add_argument("--out", required=True, help="index folder")
    p.add_argument("--part", type=_part, default=(0, 1), metavar="i/N",
                   help="build only part i of N (every N-th track); then `ssl-music index merge` (default: 0/1)")
    p.add_argument("--batch-files", type=int, default=32, help="tracks per committed batch")
    # threads, not processes: `shards build --workers` counts processes, so this has its own name
    p.add_argument("--threads", type=int, default=2, help="decoding threads (in this process)")
    p.add_argument("--workers", dest="threads", type=int, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.add_argument("--min-s", type=float, default=1.0,
                   help="shorter files are skipped (the rule of `shards build --min-s`)")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, ...")
    p.add_argument("--quiet", action="store_true", help="no progress line per file")
    p.set_defaults(func=_cmd_build)
    m = sub.add_parser("merge", help="gather the parts of an index built with --part into the searchable index")
    m.add_argument("index", help="index folder whose parts to merge")
    m.set_defaults(func=_cmd_merge)
    i = sub.add_parser("info", help="what an index holds",
                       description="What an index holds: tracks, crops, hours, the checkpoint it was built with, "
                                   "the files skipped and why, and a few track ids to query with "
                                   "`ssl-music search`.")
    i.add_argument("index", help="index folder")
    i.set_defaults(func=_cmd_info)
