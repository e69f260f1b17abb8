"""`ssl-music sweep run | status`."""
from __future__ import annotations

import argparse

import dataclasses

from ssl_music.cli.slurm import add_resource_args, resources_from_args
from ssl_music.cluster.sweep import load_sweep, run_local, run_slurm, status_lines


def add_cli(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="sweep_command")
    p = sub.add_parser("run", help="pretrain + evaluate every run of a sweep, then compare them")
    p.add_argument("sweep", help="configs/sweeps/<name>.yaml")
    p.add_argument("overrides", nargs="*", help="pretraining overrides for every run, e.g. data.shards=DIR")
    p.add_argument("--launcher", choices=["local", "slurm"], default="local",
                   help="local: one run after the other here; slurm: one array job")
    p.add_argument("--out", default=None, help="sweep folder (default: the file's out, or runs/sweeps/<name>)")
    p.add_argument("--eval-override", action="append", default=[], metavar="KEY=VALUE",
                   help="override for the evaluation suite (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="validate and print what would run; write nothing")
    p.add_argument("--reuse-across-code", action="store_true",
                   help="reuse finished stages whose config, seed and suite match although the computing code "
                        "changed since (the comparison report lists each run's code version); default: re-run them")
    add_resource_args(p)
    p.set_defaults(func=_run_main)

    s = sub.add_parser("status", help="state of each run: pending | pretrained | evaluated | failed, and its step")
    s.add_argument("sweep", help="configs/sweeps/<name>.yaml")
    s.add_argument("overrides", nargs="*", help="the pretraining overrides the sweep was run with")
    s.add_argument("--out", default=None, help="sweep folder (default: the file's out, or runs/sweeps/<name>)")
    s.add_argument("--reuse-across-code", action="store_true", help="as for `sweep run`")
    s.set_defaults(func=_status_main)


def _run_main(args) -> int:
    sweep = load_sweep(args.sweep, args.out, args.overrides, args.eval_override)
    sweep = dataclasses.replace(sweep, reuse_across_code=args.reuse_across_code)
    if args.launcher == "local":
        return run_local(sweep, args.dry_run)
    print(run_slurm(sweep, resources_from_args(args), args.dry_run))
    return 0


def _status_main(args) -> int:
    sweep = dataclasses.replace(load_sweep(args.sweep, args.out, args.overrides),
                                reuse_across_code=args.reuse_across_code)
    print(f"sweep {sweep.name}: {sweep.out}")
    print("\n".join(status_lines(sweep)))
    return 0
