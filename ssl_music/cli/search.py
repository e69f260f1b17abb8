"""`ssl-music search INDEX QUERY`: the nearest tracks of a catalogue, as a table and optionally a page to listen to."""
from __future__ import annotations

import argparse
import shlex
from pathlib import Path


def _cmd_search(args: argparse.Namespace) -> int:
    import sys

    from ssl_music.catalogue.search import check_model, format_table, resolve_query, search, split_query, translate_query
    from ssl_music.catalogue.store import open_index

    cat = open_index(args.index)
    what, _, _ = split_query(cat, args.query)
    model = None
    # a track id needs no model (its vectors are in the index) and imports no torch; a file, or a tempo ratio,
    # needs the checkpoint. One given for a track id is still checked: a wrong one is a mistake worth saying.
    needs_model = args.tempo_ratio is not None or (cat.track_row(what) is None and Path(what).is_file())
    if needs_model or args.checkpoint is not None:
        from ssl_music.api import load_encoder

        model = load_encoder(args.checkpoint or cat.meta["checkpoint"], device=args.device)
        check_model(cat, model)
    query = resolve_query(cat, args.query, model)
    if args.tempo_ratio is not None:
        query = translate_query(query, model, args.tempo_ratio)
    result = search(cat, query, k=args.k, include_self=args.include_self, level=args.level)
    print(format_table(result, float(cat.meta["crop_s"])))
    problem = cat.music_problem()
    gone = [h.source for h in result.hits if ".tar#" not in h.source and not Path(h.source).is_file()]
    if problem:
        print(f"ssl-music search: warning: {problem}", file=sys.stderr)
    elif gone:   # the index still lists files deleted since its build: their players cannot load
        print(f"ssl-music search: warning: {len(gone)} hit(s) are files gone since the index was built "
              f"({', '.join(gone[:3])}{', ...' if len(gone) > 3 else ''}); bring the index up to date with "
              f"`ssl-music index build {cat.meta.get('input')} --out {args.index} --checkpoint "
              f"{cat.meta.get('checkpoint')}`", file=sys.stderr)
    if args.html:
        from ssl_music.catalogue.page import write_page

        print(f"-> {write_page(result, cat, args.html, _command(args))}")
    return 0


def _command(args: argparse.Namespace) -> str:
    """The command line that makes this page again (from the parsed arguments: the same in-process and in a shell)."""
    parts = ["ssl-music", "search", args.index, args.query, "-k", str(args.k)]
    for flag, value in (("--tempo-ratio", args.tempo_ratio), ("--checkpoint", args.checkpoint), ("--html", args.html)):
        if value is not None:
            parts += [flag, str(value)]
    parts += ["--include-self"] if args.include_self else []
    parts += ["--level", args.level] if args.level != "crop" else []
    return " ".join(shlex.quote(p) for p in parts)


def add_cli(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Search an index by example. QUERY is a track id of the index, an audio file, or either "
                          "with a time range: ID@30 (from 30 s to the end), song.wav@30-45, song.wav@1:30-2:00 "
                          "(seconds or m:ss). Prints rank, track, the start second of its best-matching crop and "
                          "the cosine similarity (exact search).")
    parser.add_argument("index", help="index folder (`ssl-music index build`)")
    parser.add_argument("query", help="track id or audio file, optionally @START or @START-END (seconds or m:ss)")
    parser.add_argument("-k", type=int, default=10, help="tracks to return")
    parser.add_argument("--tempo-ratio", type=float, default=None, metavar="R",
                        help="look for this R times faster (R > 1 faster), through the checkpoint's tempo translator")
    parser.add_argument("--include-self", action="store_true", help="keep the query's own track in the results")
    parser.add_argument("--level", choices=["crop", "track"], default="crop",
                        help="score each track by its best crop (default) or by its track embedding")
    parser.add_argument("--html", default=None, metavar="PAGE", help="also write a page with players and spectrograms")
    parser.add_argument("--checkpoint", default=None,
                        help="default: the checkpoint the index records; when given, it must be the index's "
                             "(checked for a track-id query too)")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, ...")
    parser.set_defaults(func=_cmd_search)
