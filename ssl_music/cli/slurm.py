"""`ssl-music slurm submit`, and the allocation flags it shares with `ssl-music sweep run --launcher slurm`."""
from __future__ import annotations

import argparse

from ssl_music.cluster.slurm import Resources, submit


def add_resource_args(parser: argparse.ArgumentParser) -> None:
    """The allocation flags shared by `slurm submit` and `sweep run --launcher slurm`."""
    g = parser.add_argument_group("SLURM allocation")
    g.add_argument("--nodes", type=int, default=1, help="nodes to allocate")
    g.add_argument("--gpus-per-node", type=int, default=1, help="0 for CPU-only clusters (then see --tasks-per-node)")
    g.add_argument("--tasks-per-node", type=int, default=None,
                   help="CPU jobs: DDP processes per node (gloo); with GPUs it equals --gpus-per-node")
    g.add_argument("--cpus-per-task", type=int, default=4, help="CPU cores per task (data-loading workers + 1)")
    g.add_argument("--partition", default=None, help="SLURM partition (cluster default if omitted)")
    g.add_argument("--time", default=None, help="e.g. 24:00:00 (cluster default if omitted)")
    g.add_argument("--setup", default="", help='shell lines run before srun, e.g. "source .venv/bin/activate"')
    g.add_argument("--sbatch-arg", action="append", default=[], metavar="ARG",
                   help="extra #SBATCH line, e.g. --sbatch-arg=--account=abc (repeatable)")


def resources_from_args(args) -> Resources:
    return Resources(nodes=args.nodes, gpus_per_node=args.gpus_per_node, tasks_per_node=args.tasks_per_node,
                     cpus_per_task=args.cpus_per_task, partition=args.partition, time=args.time,
                     setup=args.setup, sbatch_args=tuple(args.sbatch_arg))


def add_cli(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="slurm_command")
    p = sub.add_parser("submit", help="submit pretraining, evaluation or an index build as a SLURM job")
    p.add_argument("kind", choices=["pretrain", "evaluate", "index"], help="what the job runs")
    p.add_argument("config", help="pretrain: configs/pretrain/<name>.yaml; evaluate: the suite YAML; "
                                  "index: the collection (folder, CSV or shards)")
    p.add_argument("overrides", nargs="*", help="key=value overrides passed to the command")
    p.add_argument("--checkpoint", default=None, help="evaluate: checkpoint to evaluate")
    p.add_argument("--out", default=None, help="evaluate: output folder (results.json); index: the index folder")
    p.add_argument("--parts", type=int, default=1, help="index: array tasks, each building part i of N; then a merge")
    p.add_argument("--job-name", default=None, help="SLURM job name (default: from the config)")
    p.add_argument("--dry-run", action="store_true", help="print the sbatch script instead of submitting it")
    add_resource_args(p)
    p.set_defaults(func=_submit_main)


def _submit_main(args) -> int:
    result = submit(args.kind, args.config, args.overrides, resources_from_args(args), dry_run=args.dry_run,
                    checkpoint=args.checkpoint, out=args.out, job_name=args.job_name, parts=args.parts)
    print(result, end="" if args.dry_run else "\n")
    return 0
