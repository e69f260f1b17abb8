"""Compare's answer when runs are pretraining seeds of arms: each arm over its seeds, and paired differences.

Runs are grouped into arms by folder name (a sweep's ``<arm>-seed<N>``, ssl_music.cluster.runs.split_run_name; otherwise the run's own name with the
seed from its config.yaml). A model with named subspaces (issue #24) adds each subspace's rows, named
``<row> [<subspace>]``, so the paired differences answer "what did this arm do to the content part". Every
arm's random-init twin (one init per pretraining seed, from the same
results.json files) is an arm of its own, ``<arm> · random init``, compared with its model on the same seeds,
each part's rows against the same part of the twin (``random_init/<part>``): trained − twin per part.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ssl_music_eval.reports.report_doc import Doc
from ssl_music_eval.reports.report_summary import comparison_rows
from ssl_music.cluster.runs import split_run_name
from ssl_music_eval.seeds import by_arm, fmt_difference, fmt_summary, seed_tables
from ssl_music_eval.subspaces import PREFIX, TWIN_PREFIX

TWIN = " · random init"


def run_seed(run_dir: Path, results: dict) -> int | None:
    """A run's pretraining seed: as its results.json recorded it (provenance), else from the config.yaml its
    pretraining saved (runs made before provenance), else None."""
    seed = (results.get("provenance") or {}).get("seeds", {}).get("trainer")
    cfg = run_dir / "config.yaml"
    if seed is None and cfg.is_file():
        from omegaconf import OmegaConf

        seed = OmegaConf.select(OmegaConf.load(cfg), "trainer.seed", default=None)
    return None if seed is None else int(seed)


def subspace_sets(results: dict) -> list[str]:
    """The feature sets ``model/<name>`` of a model with named subspaces, in the order the results hold them."""
    sets = []
    for ds in results.get("datasets", {}).values():
        sets += list(ds.get("locality", {}).get("scores", {}))
        sets += [fs for t in ds.get("tasks", {}).values() for by_set in t.get("probes", {}).values() for fs in by_set]
    return [fs for fs in dict.fromkeys(sets) if fs.startswith(PREFIX)]


def group(run_dirs: Sequence[Path], results: Sequence[dict]) -> dict:
    """{arm: {row: {seed: value}}} for the model of every arm and its random-init twin."""
    runs, sources = [], []
    for d, res in zip(run_dirs, results):
        arm, seed = split_run_name(d.name, run_seed(d, res))
        rows = comparison_rows(res)
        for fs in subspace_sets(res):
            rows.update({f"{label} [{fs[len(PREFIX):]}]": v for label, v in comparison_rows(res, fs).items()})
        runs.append((arm, seed, rows))
        sources.append(str(d))
        twin = comparison_rows(res, "random_init")
        for fs in subspace_sets(res):   # each part's twin rows: the same part of the random-init twin
            part = fs[len(PREFIX):]
            twin.update({f"{label} [{part}]": v for label, v in comparison_rows(res, TWIN_PREFIX + part).items()})
        if twin:
            runs.append((arm + TWIN, seed, twin))
            sources.append(str(d))
    return by_arm(runs, sources)


def seed_report(run_dirs: Sequence[Path], results: Sequence[dict]) -> dict | None:
    """seed_tables over the runs' arms (pairs: every two model arms, and each arm against its twin), or None
    when no arm has more than one run (nothing to aggregate)."""
    arms = group(run_dirs, results)
    if not any(len({s for r in rows.values() for s in r}) > 1 for rows in arms.values()):
        return None
    models = [a for a in arms if not a.endswith(TWIN)]
    pairs = [(a, b) for i, a in enumerate(models) for b in models[i + 1:]]
    pairs += [(a, a + TWIN) for a in models if a + TWIN in arms]
    return seed_tables(arms, pairs)


def add_seed_sections(doc: Doc, run_dirs: Sequence[Path], results: Sequence[dict]) -> dict | None:
    """The arms table and the paired differences, first in the comparison report; returns what it showed."""
    tables = seed_report(run_dirs, results)
    if tables is None:
        doc.para("Each run below is a single pretraining run (one seed): its figures carry the probes' own "
                 "intervals but not the run-to-run variance of pretraining.")
        return None
    arms = list(tables["arms"])
    rows = list(dict.fromkeys(r for a in arms for r in tables["arms"][a]))
    doc.heading("Arms over pretraining seeds")
    doc.para(f"Mean over pretraining seeds [{tables['method']}]. A figure from one seed has no interval and says "
             "so. `· random init` is the arm's untrained twin, one init per pretraining seed.")
    doc.table(["row", *arms], [[r, *(fmt_summary(tables["arms"][a].get(r, {})) for a in arms)] for r in rows])
    doc.heading("Paired differences (A − B, same seeds)", 3)
    doc.para("better / worse: the interval of the difference excludes 0; otherwise not distinguishable. The same "
             "difference at every seed (a zero-width interval) measures no spread and gets no verdict.")
    doc.table(["A", "B", "row", "A − B [95 % CI]", "seeds", "verdict"],
              [[p["a"], p["b"], p["row"], fmt_difference(p), str(p["n"]), p["verdict"]] for p in tables["pairs"]])
    doc.heading("Per-seed values", 3)
    doc.table(["row", "arm", "values by seed"],
              [[r, a, ", ".join(f"s{s}: {v:.3f}" for s, v in tables["arms"][a][r]["values"].items())]
               for r in rows for a in arms if r in tables["arms"][a]])
    return tables
