"""README.md is true: every command line in its bash blocks parses (each `ssl-music` line through the
command's own parser, each `make` target exists, each script named exists), so do the docs pages'
`ssl-music` and `make` lines, every local link resolves, and the quick start ("Your own music") runs end to
end at tiny sizes in a temporary folder (~30 s on 2 shared cores)."""
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
QUICK_START = "## Your own music"
MAX_LINES = 150
# the quick start at tiny sizes: appended to its `pretrain` line (the recipe's own steps take minutes)
TINY_PRETRAIN = ["trainer.max_steps=2", "trainer.ckpt_every_n_steps=2", "data.batch_size=4", "data.batches_per_epoch=2",
                 "data.num_workers=0", "data.shuffle_buffer=4", "data.crop_s=1.0", "model.width=8",
                 "model.embed_dim=16", "model.proj_hidden=16", "model.proj_dim=8", "model.tempo_hidden=8"]


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M)


def command_lines(block: str) -> list[list[str]]:
    """Each line of a bash block as argv: continuations joined, comments and VAR=value prefixes dropped."""
    out = []
    for line in block.replace("\\\n", " ").splitlines():
        for part in re.split(r"\s&&\s", line):
            argv = shlex.split(part, comments=True)
            while argv and re.fullmatch(r"[A-Z_]+=\S*", argv[0]):
                argv = argv[1:]
            if argv:
                out.append(argv)
    return out


def _readme_commands() -> list[list[str]]:
    return [argv for block in bash_blocks(README.read_text()) for argv in command_lines(block)]


def check_command(argv: list[str]) -> None:
    """Raise AssertionError naming the line when it would not parse."""
    line = " ".join(argv)
    if argv[0] == "ssl-music":
        from ssl_music.cli import COMMANDS, build_parser

        if argv[1:] == ["--version"]:
            return
        assert argv[1] in COMMANDS, f"README: unknown command in `{line}`"
        parser = build_parser(argv[1])
        try:
            args, extra = parser.parse_known_args(argv[2:])
        except SystemExit:
            raise AssertionError(f"README: `{line}` does not parse") from None
        assert hasattr(args, "func"), f"README: `{line}` names no sub-command"
        stray = [a for a in extra if "=" not in a or a.startswith("-")]
        assert not stray and (not extra or isinstance(getattr(args, "overrides", None), list)), \
            f"README: `{line}` has arguments its command does not take: {extra}"
    elif argv[0] == "make":
        targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
        for t in (a for a in argv[1:] if "=" not in a):
            assert t in targets, f"README: `{line}`: no Makefile target {t}"
    elif argv[0] in ("python", ".venv/bin/python") and argv[1].endswith(".py"):
        assert (ROOT / argv[1]).is_file(), f"README: `{line}`: no script {argv[1]}"
    elif argv[0] == "source":
        pass
    else:
        raise AssertionError(f"README: `{line}`: a command the docs test does not know how to check")


def test_readme_is_short():
    assert len(README.read_text().splitlines()) < MAX_LINES


def test_every_readme_command_parses():
    commands = _readme_commands()
    assert any(a[0] == "ssl-music" for a in commands) and any(a[0] == "make" for a in commands)
    for argv in commands:
        check_command(argv)


def test_the_check_rejects_a_wrong_line():
    """The check above cannot pass vacuously: a misspelt flag, command, sub-command or target fails."""
    for bad in ("ssl-music shards build x --outt y", "ssl-music shard build x", "ssl-music index x",
                "ssl-music embed --checkpoint c a.wav --out o.npz stray", "make dmeo"):
        with pytest.raises(AssertionError):
            check_command(shlex.split(bad))
    assert command_lines("A=1 ssl-music demo \\\n  --scale tiny   # c\nmake a && make b\n") == [
        ["ssl-music", "demo", "--scale", "tiny"], ["make", "a"], ["make", "b"]]


def test_every_local_link_and_picture_resolves():
    for page in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target:
                continue
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)}: link to missing {target}"


def quick_start() -> list[list[str]]:
    text = README.read_text()
    assert QUICK_START in text, f"README has no section {QUICK_START!r}"
    block = bash_blocks(text[text.index(QUICK_START):])[0]
    return [argv for argv in command_lines(block) if argv[0] == "ssl-music"]


def test_every_docs_page_ssl_music_and_make_line_parses():
    pages = sorted((ROOT / "docs").glob("*.md"))
    assert pages, "no docs/ pages: the README links them"
    for page in pages:
        for block in bash_blocks(page.read_text()):
            for argv in command_lines(block):
                if argv[0] in ("ssl-music", "make"):
                    check_command(argv)


def test_quick_start_runs_at_tiny_size(tmp_path, monkeypatch):
    """The quick start's commands, verbatim but for tiny sizes appended to `pretrain`, in a temporary folder
    holding `my_music/` (synthetic tracks, one of them `some_song.flac`); `make` lines are not run here."""
    from ssl_music.cli import main
    from ssl_music.data.synth import generate_corpus

    labels = generate_corpus(tmp_path / "synth", n_tracks=4, seconds=50.0, seed=5)
    music = tmp_path / "my_music"
    shutil.copytree(labels.parent / "audio", music)
    shutil.copy(sorted(music.glob("*.flac"))[0], music / "some_song.flac")
    monkeypatch.chdir(tmp_path)
    commands = quick_start()
    assert [a[1] for a in commands] == ["shards", "pretrain", "embed", "index", "search"], commands
    for argv in commands:
        extra = TINY_PRETRAIN if argv[1] == "pretrain" else []
        assert main(argv[1:] + extra) == 0, f"README quick start: `{' '.join(argv)}` failed"
    assert Path("neighbours.html").stat().st_size > 1000
