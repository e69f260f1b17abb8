"""`ssl-music report compare`: several evaluated runs in one table and one set of plots."""
from __future__ import annotations

import argparse
from pathlib import Path

from ssl_music_eval.reports.report import compare_runs


def _cmd_compare(args: argparse.Namespace) -> int:
    summary = compare_runs(args.runs, args.out)
    print(f"compared {len(summary['runs'])} runs over {len(summary['table'])} rows -> {Path(args.out) / 'compare.html'}")
    return 0


def add_cli(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="report_command")
    p = sub.add_parser("compare", help="one table + plots over several evaluated runs",
                       description="Compare runs evaluated with `ssl-music evaluate` (each RUN_DIR holds a "
                                   "results.json). Writes compare.md, compare.html (self-contained) and compare.json.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="evaluated run folders (each holds results.json)")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_cmd_compare)
