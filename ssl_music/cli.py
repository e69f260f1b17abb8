"""`ssl-music` entry point. Each command lives beside the code it drives; this file only dispatches.

A command module defines ``add_cli(parser)``, which adds its arguments (or sub-commands) and sets
``func`` via ``parser.set_defaults(func=...)``; ``func(args)`` returns an exit status (or None for 0).
Modules are imported only when their command runs, so ``ssl-music --help`` stays instant.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ssl_music.errors import SSLMusicError

COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("ssl_music.data.synth", "write a synthetic music corpus (audio + labels.csv)"),
    "shards": ("ssl_music.data.shards", "build, inspect or verify WebDataset shards"),
    "augment": ("ssl_music.augment.preview", "preview an augmentation chain (WAVs + spectrogram grid)"),
    "pretrain": ("ssl_music.train", "self-supervised pretraining from shards"),
    "embed": ("evaluation.embed", "embed audio files with a checkpoint"),
    "evaluate": ("evaluation.suite", "run an evaluation suite on a checkpoint and write a report"),
    "tempo": ("evaluation.tempo", "tempo estimation with the same-vs-different tempo head"),
    "report": ("evaluation.report", "compare several evaluated runs in one report"),
    "sweep": ("ssl_music.cluster.sweep", "augmentation ablation sweeps (local or SLURM array)"),
    "slurm": ("ssl_music.cluster.slurm", "submit pretraining or evaluation to SLURM"),
    "demo": ("ssl_music.demo", "the whole pipeline on the built-in synthetic corpus"),
}


def _top_help() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: ssl-music COMMAND [options]   (ssl-music COMMAND --help for details)", "", "commands:"]
    lines += [f"  {name:<{width}}  {desc}" for name, (_, desc) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_top_help())
        return 0 if argv else 2
    name = argv[0]
    if name not in COMMANDS:
        print(f"ssl-music: unknown command '{name}'\n\n{_top_help()}", file=sys.stderr)
        return 2
    module_name, desc = COMMANDS[name]
    parser = argparse.ArgumentParser(prog=f"ssl-music {name}", description=desc)
    importlib.import_module(module_name).add_cli(parser)
    args, extra = parser.parse_known_args(argv[1:])
    # argparse stops collecting positional overrides at the first option; accept `key=value` anywhere.
    if extra and all("=" in a and not a.startswith("-") for a in extra) and isinstance(getattr(args, "overrides", None), list):
        args.overrides += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except SSLMusicError as exc:
        print(f"ssl-music {name}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
