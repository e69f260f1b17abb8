"""`ssl-music`: the face of the package. Argument parsing lives only here, one module per command
(``ssl_music/cli/<command>.py``); each defines ``add_cli(parser)``, which adds its arguments (or
sub-commands) and sets ``func`` via ``parser.set_defaults(func=...)``, and turns the parsed arguments into
calls of the library's plain functions. ``func(args)`` returns an exit status (or None for 0). Command
modules are imported only when their command runs, so ``ssl-music --help`` stays instant. This is also
the one place that composes the library with ``evaluation`` (the online k-NN monitor, the demo).
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ssl_music.errors import SSLMusicError

COMMANDS: dict[str, str] = {
    "synth": "write a synthetic music corpus (audio + labels.csv)",
    "shards": "build, inspect or verify WebDataset shards",
    "augment": "preview an augmentation chain (WAVs + spectrogram grid)",
    "pretrain": "self-supervised pretraining from shards",
    "embed": "embed audio files with a checkpoint",
    "index": "build a searchable catalogue from a checkpoint (resumable, in parts), merge, inspect",
    "search": "search a catalogue by example (file, track id, time range); --html page to listen",
    "export": "export a checkpoint's encoder as safetensors + JSON, for sharing",
    "evaluate": "run an evaluation suite on a checkpoint and write a report",
    "attention": "where a self-attention model listens in a clip, drawn under its spectrogram",
    "tempo": "tempo estimation with the tempo head; tempo translation in the embedding space",
    "report": "compare several evaluated runs in one report",
    "sweep": "augmentation ablation sweeps (local or SLURM array)",
    "slurm": "submit pretraining or evaluation to SLURM",
    "demo": "the whole pipeline on the built-in synthetic corpus",
}


def _top_help() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: ssl-music COMMAND [options]   (ssl-music COMMAND --help for details; ssl-music --version)", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {desc}" for name, desc in COMMANDS.items()]
    return "\n".join(lines)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, except where there is none worth saying (None, off, []) or
    the help already says it in words ("default: the crop length")."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        d = action.default
        if "default" in text or action.required or d is None or d is False or d == [] or d == argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)


def build_parser(name: str) -> argparse.ArgumentParser:
    """The parser of one command, its sub-commands formatted like it."""
    parser = argparse.ArgumentParser(prog=f"ssl-music {name}", description=COMMANDS[name], formatter_class=HelpFormatter)
    importlib.import_module(f"ssl_music.cli.{name}").add_cli(parser)
    todo = [parser]
    while todo:
        for action in todo.pop()._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    sub.formatter_class = HelpFormatter
                    todo.append(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_top_help())
        return 0 if argv else 2
    if argv[0] == "--version":
        from ssl_music.deps import version_lines

        print("\n".join(version_lines()))
        return 0
    name = argv[0]
    if name not in COMMANDS:
        from ssl_music.errors import did_you_mean

        print(f"ssl-music: unknown command '{name}'{did_you_mean(name, COMMANDS)}\n\n{_top_help()}", file=sys.stderr)
        return 2
    parser = build_parser(name)
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
        from ssl_music.threads import single_threaded_blas

        single_threaded_blas()  # torch does the heavy work of every command: BLAS must not hold its cores
        return int(args.func(args) or 0)
    except SSLMusicError as exc:
        print(f"ssl-music {name}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
