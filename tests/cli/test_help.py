"""`ssl-music COMMAND --help`: every flag says what it does and what it defaults to."""
import argparse

import pytest

from ssl_music.cli import COMMANDS, build_parser, main


def _parsers(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def _flags(parser):
    return [a for a in parser._actions if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
            and a.help != argparse.SUPPRESS]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_flag_has_help_and_shows_its_default(command):
    for parser in _parsers(build_parser(command)):
        text = parser.format_help()
        for a in _flags(parser):
            assert a.help, f"{parser.prog} {a.option_strings or a.dest}: no help"
            shown = a.default not in (None, False, argparse.SUPPRESS) and not a.required \
                and not (isinstance(a.default, list) and not a.default) and (a.option_strings or a.nargs in ("?", "*"))
            if shown and "default" not in a.help:   # else the help says it in words
                assert f"(default: {a.default})" in " ".join(text.split()), f"{parser.prog} {a.option_strings}: default not shown"


def test_old_time_spellings_still_work_but_help_shows_one(capsys):
    p = build_parser("shards")
    args = p.parse_args(["build", "in", "--out", "o", "--segment-seconds", "30", "--min-seconds", "2"])
    assert args.segment_s == 30.0 and args.min_s == 2.0
    args = p.parse_args(["build", "in", "--out", "o", "--segment-s", "20"])
    assert args.segment_s == 20.0 and args.min_s == 1.0
    build = next(sub for sub in _parsers(p) if sub.prog.endswith("build"))
    text = build.format_help()
    assert "--segment-s " in text and "--segment-seconds" not in text and "--min-seconds" not in text


def test_embed_batch_size_is_named_for_what_it_is():
    p = build_parser("embed")
    args = p.parse_args(["a.wav", "--checkpoint", "c", "--out", "o.npz", "--decode-ahead", "4"])
    assert args.decode_ahead == 4
    assert p.parse_args(["a.wav", "--checkpoint", "c", "--out", "o.npz", "--batch-size", "3"]).decode_ahead == 3
    assert "--batch-size" not in p.format_help()


def test_export_takes_checkpoint_like_every_command(tmp_path, capsys):
    assert main(["export", "--checkpoint", str(tmp_path / "missing.ckpt"), "--out", str(tmp_path / "o")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert main(["export", "--out", str(tmp_path / "o")]) == 2
    assert "--checkpoint" in capsys.readouterr().err


def test_a_misspelt_command_gets_a_suggestion(capsys):
    assert main(["pretrian"]) == 2
    assert "unknown command 'pretrian'; did you mean 'pretrain'?" in capsys.readouterr().err


def test_index_and_shards_help_say_what_they_do_in_words():
    index, shards = build_parser("index"), build_parser("shards")
    build = next(p for p in _parsers(index) if p.prog.endswith("build"))
    text = " ".join(build.format_help().split())
    assert "(0, 1)" not in text and "(default: 0/1)" in text
    assert "--threads THREADS decoding threads (in this process)" in text and "--workers" not in text
    assert build.parse_args(["in", "--checkpoint", "c", "--out", "o", "--workers", "3"]).threads == 3   # old spelling
    for parser in (next(p for p in _parsers(index) if p.prog.endswith("info")),
                   next(p for p in _parsers(shards) if p.prog.endswith("build"))):
        assert parser.description, f"{parser.prog}: no description"
    s_build = " ".join(next(p for p in _parsers(shards) if p.prog.endswith("build")).format_help().split())
    assert "decoding processes" in s_build
