"""README.md is true: every command line in its bash blocks parses (each `ssl-music` line through the
command's own parser, each `make` target exists, each script named exists), so do the docs pages'
`ssl-music` and `make` lines, every local link resolves, and the quick start ("Your own music") runs end to
end at tiny sizes in a temporary folder (~30 s on 2 shared cores)."""
import dataclasses
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

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


# ------------------------------------------------------------------------------ sentences against their tables
# A sentence in the docs that summarises a results file (a count of verdicts, "moves no arm", a range of wall
# times) is a claim: its page must still say it, what it means is measured on the file, and every interval it
# quotes must be in the file. Rewording the sentence means rewording its claim here, and a results file
# regenerated with other verdicts fails the claim instead of leaving the sentence stale.
RESULTS = ROOT / "benchmarks" / "results"
VERDICTS = ("better", "worse", "not distinguishable", "one seed: no interval", "no spread across seeds")
INTERVAL = re.compile(r"[+−-]?\d+\.\d+ \[[+−-]?\d+\.\d+, [+−-]?\d+\.\d+\]")


def table_rows(text: str) -> list[dict[str, str]]:
    """Every body row of every markdown table of ``text``, as {header: cell}."""
    rows, header = [], None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
        elif not set("".join(cells)) <= set("-: "):
            rows.append(dict(zip(header, cells)))
    return rows


def tally(text: str, pair: str, row: str = ".*") -> dict[str, int]:
    """Verdict counts of the paired differences whose ``A | B`` and row fully match the regular expressions."""
    out: dict[str, int] = {}
    for r in table_rows(text):
        cells = list(r.values())
        if len(cells) >= 5 and cells[-1] in VERDICTS and re.fullmatch(pair, f"{cells[0]} | {cells[1]}") \
                and re.fullmatch(row, cells[2]):
            out[cells[-1]] = out.get(cells[-1], 0) + 1
    return out


def moved(text: str, row: str) -> set[tuple[str, str]]:
    """(row, column) of the cells of matching rows whose interval excludes 0."""
    out = set()
    for r in table_rows(text):
        first, *rest = r.items()
        if not re.fullmatch(row, first[1]):
            continue
        for column, cell in rest:
            m = re.search(r"\[([+-]?\d+\.\d+), ([+-]?\d+\.\d+)\]", cell)
            if m and (float(m[1]) > 0 or float(m[2]) < 0):
                out.add((first[1], column))
    return out


def wall_range(text: str) -> str:
    """``lo–hi`` seconds over every arm's pretraining wall time in the cost row."""
    cost = next(r for r in table_rows(text) if next(iter(r.values())).startswith("cost"))
    walls = [int(x) for cell in cost.values() for m in re.findall(r"steps, (\d+)–(\d+) s", cell) for x in m]
    return f"{min(walls)}–{max(walls)}"


@dataclass(frozen=True)
class Claim:
    quotes: tuple[tuple[str, str], ...]      # (page, what it says; line breaks and runs of spaces as one space)
    results: str                             # file under benchmarks/results
    measure: Callable[[str], object]         # what the file says, from its text
    says: object                             # what the quotes mean, in the measure's terms


FB, RM = "frontend_backend_seeds.txt", "real_music_seeds.txt"
TWIN = r"(\w+) \| \1 · random init"
CLAIMS: dict[str, Claim] = {
    "block norm: one probe difference": Claim(
        (("docs/real_music.md", "Of the six linear and MLP probe differences one is distinguishable, key MLP +0.011 "
                                "[+0.002, +0.020]"),),
        RM, lambda t: tally(t, r"shipped \| no_block_norm", r".*/(linear|mlp) accuracy"),
        {"better": 1, "not distinguishable": 5}),
    "no augmentation: nothing distinguishable": Claim(
        (("docs/real_music.md", "vs no augmentation** (`none`): **not distinguishable on any figure**"),),
        RM, lambda t: tally(t, r"shipped \| none"), {"not distinguishable": 15}),
    "1600 steps: nothing distinguishable": Claim(
        (("docs/real_music.md", "(`spectral_1600` against `spectral`"), ("docs/real_music.md", "7.9): **not distinguishable on any figure**")),
        RM, lambda t: tally(t, r"spectral \| spectral_1600"), {"not distinguishable": 15}),
    "1600 spectral steps against shipped: 2 of 15": Claim(
        (("docs/real_music.md", "1600 spectral steps are better on 2 of 15 figures"),),
        RM, lambda t: tally(t, r"shipped \| spectral_1600"), {"worse": 2, "not distinguishable": 13}),
    "twins: no probe gain": Claim(
        (("docs/real_music.md", "no linear or MLP probe gain over the twin is distinguishable in any arm (23 of 24 "
                                "include 0; the spectral arm's key linear is below its twin's, −0.040 [−0.060, −0.021])"),),
        RM, lambda t: tally(t, TWIN, r".*/(linear|mlp) accuracy"), {"not distinguishable": 23, "worse": 1}),
    "twins: instrument neighbourhoods": Claim(
        (("docs/real_music.md", "every arm is better on instrument 10-NN and instrument locality"),),
        RM, lambda t: set(tally(t, TWIN, r".*/(instrument/knn@10|locality/instrument)")), {"better"}),
    "attention against pooling": Claim(
        (("README.md", "attention − pooling is worse on 7 of 21 paired dev-set figures (mel instrument linear −0.266 "
                       "[−0.279, −0.252]) and better on one (sample-level key 10-NN +0.029 [+0.004, +0.055]"),
         ("docs/training.md", "attention − pooling is worse on 7 of 21 paired dev-set figures and better on one"),
         ("docs/real_music.md", "attention − pooling is worse on 7 of 21, better on one (sample-level key 10-NN "
                                "+0.029 [+0.004, +0.055], both near chance) and not distinguishable on 13")),
        FB, lambda t: tally(t, r"(\w+)_attention \| \1_pool", r"(?!.*degraded).*"),
        {"worse": 7, "better": 1, "not distinguishable": 13}),
    "harmonic against mel under degradation": Claim(
        (("docs/real_music.md", "harmonic − mel pooling on every degradation's accuracy change is not "
                                "distinguishable (14 of 14 intervals include 0)"),),
        FB, lambda t: tally(t, r"harmonic_pool \| mel_pool", ".*degraded.*"), {"not distinguishable": 14}),
    "harmonic against sample-level under degradation": Claim(
        (("docs/real_music.md", "against the sample-level front-end it loses more on 6 of 14 (instrument under white "
                                "noise at 10 dB −0.349 [−0.568, −0.129])"),),
        FB, lambda t: tally(t, r"harmonic_pool \| sample_pool", ".*degraded.*"), {"worse": 6, "not distinguishable": 8}),
    "MP3 moves one arm": Claim(
        (("docs/real_music.md", "MP3 at compression level 0.9 (libsndfile's scale, 1 = the lowest bitrate) moves one "
                                "arm distinguishably: mel-pool instrument −0.021 [−0.031, −0.011]"),),
        FB, lambda t: moved(t, r".*mp3@0\.9"), {("instrument mp3@0.9", "mel_pool")}),
    "a 120 s budget, not equal wall time": Claim(
        (("README.md", "a pretraining budget of 120 s on 2 CPU cores** (runs took 112–159 s)"),
         ("README.md", "at a 120 s pretraining budget each (112–159 s)"),
         ("docs/real_music.md", "(the runs took 112–159 s: the budget is equal, the wall time only roughly)")),
        FB, wall_range, "112–159"),
}


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def check_claim(claim: Claim) -> None:
    """Raise AssertionError when the results file does not say what the claim's sentences say."""
    text = (RESULTS / claim.results).read_text()
    found = claim.measure(text)
    assert found == claim.says, f"{claim.results} says {found!r}, the docs {claim.says!r}: {claim.quotes[0][1]!r}"
    for page, quote in claim.quotes:
        for interval in INTERVAL.findall(quote):
            assert interval.replace("−", "-") in text, f"{page}: {interval} is not in {claim.results}"


@pytest.mark.parametrize("name", list(CLAIMS))
def test_the_docs_say_what_their_results_files_say(name):
    claim = CLAIMS[name]
    for page, quote in claim.quotes:
        assert _flat(quote) in _flat((ROOT / page).read_text()), f"{page} no longer says {quote!r}: reword the claim"
    check_claim(claim)


def test_the_claims_check_rejects_the_sentences_it_replaced():
    """What the docs said before issue #36, as claims: each contradicts its table, so the check cannot pass
    vacuously."""
    old = {
        "no probe difference is distinguishable": ("block norm: one probe difference", {"not distinguishable": 6}),
        "attention is never better than pooling": ("attention against pooling", {"worse": 7, "not distinguishable": 14}),
        "MP3 at quality 0.9 moves no arm": ("MP3 moves one arm", set()),
        "equal pretraining wall time, 120 s": ("a 120 s budget, not equal wall time", "120–120"),
    }
    for sentence, (name, says) in old.items():
        with pytest.raises(AssertionError):
            check_claim(dataclasses.replace(CLAIMS[name], says=says))
    with pytest.raises(AssertionError, match="not in"):   # a quoted interval the file does not hold
        check_claim(dataclasses.replace(CLAIMS["MP3 moves one arm"], quotes=(("x", "−0.021 [−0.031, −0.012]"),)))


# A docs table copied from a results file: (page, the table's header line) -> the file. Every number in the
# table must be in the file, so a figure edited on the page alone, or a table without its file, fails.
TABLE_SOURCES = {
    ("docs/models.md", "| variant | +3 semitones moves pitch / content |"): "subspaces_synthetic.txt",
}


@pytest.mark.parametrize("page, header", list(TABLE_SOURCES))
def test_a_docs_table_has_its_results_file(page, header):
    text = (ROOT / page).read_text()
    assert header in text, f"{page} has no table {header!r}"
    table = text[text.index(header):].split("\n\n")[0]
    source = (RESULTS / TABLE_SOURCES[page, header]).read_text()
    numbers = re.findall(r"\d+\.\d+", table)
    assert numbers, table
    missing = [n for n in numbers if n not in source]
    assert not missing, f"{page}: {missing} of its table are not in benchmarks/results/{TABLE_SOURCES[page, header]}"
