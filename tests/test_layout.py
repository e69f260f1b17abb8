"""The package's shape, checked from its source: no import circles, argparse only in the CLI, and the
library never reaching into the evaluation package ssl_music_eval (the CLI composes the two)."""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ssl_music", "ssl_music_eval")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every project module ``name`` imports, at module level or inside a function."""
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            if t and t != name and not name.startswith(t + "."):  # a module needs its own package: not a circle
                found.add(t)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_no_module_imports_in_a_circle():
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                cycles.append(sorted(scc))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert cycles == [], f"modules importing each other in a circle: {cycles}"


def test_argparse_only_in_the_cli():
    offenders = [n for n, p in MODULES.items() if not n.startswith("ssl_music.cli")
                 and any(isinstance(node, (ast.Import, ast.ImportFrom)) and
                         ("argparse" in [a.name for a in getattr(node, "names", [])] or getattr(node, "module", None) == "argparse")
                         for node in ast.walk(ast.parse(p.read_text())))]
    assert offenders == []


def test_only_the_cli_imports_evaluation():
    offenders = {n: sorted(t for t in deps if t.split(".")[0] == "ssl_music_eval")
                 for n, deps in GRAPH.items() if n.split(".")[0] == "ssl_music" and not n.startswith("ssl_music.cli")}
    assert {n: d for n, d in offenders.items() if d} == {}


@pytest.mark.parametrize("name", sorted(n for n in MODULES if not n.endswith("__main__")))
def test_every_module_imports(name):
    __import__(name)


def _room(module: str) -> str:
    """A folder of ssl_music (ssl_music.data, ...) or a top-level module (ssl_music.config): what a reader sees
    as one place when following the data flow."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "ssl_music" else parts[0]


# back-and-forths known and owned elsewhere, each with its reason; a new one fails the test. The last one,
# augment <-> objectives, went with issue #36: the augmenter gets each view's treatment handed in.
KNOWN_FOLDER_PAIRS: set = set()

# Folders below others: each gets what it needs from above handed in (the data module its view samplers, the
# augmenter its view treatments, both from the objectives registry) and imports none of them, so no arrow runs
# back up and no circle can close through them.
BELOW = {
    "ssl_music.data": {"ssl_music.augment", "ssl_music.objectives", "ssl_music.models"},
    "ssl_music.augment": {"ssl_music.objectives", "ssl_music.models"},
}

# One idea in one place: a pattern of source text -> the one file allowed to hold it (benchmarks included;
# tests, which read the idea's output, are not checked).
ONE_PLACE = {
    "run folder names <arm>-seed<N>, written and read": (r"-seed(\{|\()", "ssl_music/cluster/runs.py"),
}


def test_no_two_folders_import_each_other():
    rooms = {}
    for name, deps in GRAPH.items():
        for t in deps:
            a, b = _room(name), _room(t)
            if a != b:
                rooms.setdefault(a, set()).add(b)
    pairs = {frozenset({a, b}) for a, targets in rooms.items() for b in targets if a in rooms.get(b, ())}
    assert pairs - KNOWN_FOLDER_PAIRS == set(), f"folders importing each other: {[sorted(p) for p in pairs]}"


def test_lower_folders_import_nothing_above_them():
    up = {name: sorted(t for t in deps if _room(t) in BELOW.get(_room(name), ()))
          for name, deps in GRAPH.items()}
    assert {n: d for n, d in up.items() if d} == {}, "a folder imports one above it (hand it in instead)"


@pytest.mark.parametrize("idea", list(ONE_PLACE))
def test_one_idea_in_one_place(idea):
    pattern, home = ONE_PLACE[idea]
    sources = [p for pkg in (*PACKAGES, "benchmarks") for p in (ROOT / pkg).rglob("*.py")]
    holders = sorted(str(p.relative_to(ROOT)) for p in sources if re.search(pattern, p.read_text()))
    assert holders == [home], f"{idea}: in {holders}, not only {home}"


def test_the_folder_check_sees_a_back_and_forth():
    """The check above cannot pass vacuously: the rooms it compares are the ones the data flow names."""
    assert _room("ssl_music.data.views") == "ssl_music.data" and _room("ssl_music.config") == "ssl_music.config"
    assert "ssl_music.data" in {_room(t) for t in GRAPH["ssl_music.objectives.contrastive"]}
    assert "ssl_music.augment" in {_room(t) for t in GRAPH["ssl_music.objectives.subspaces"]}   # the arrow BELOW allows
