"""Run-to-run variance: an arm's figures over its pretraining seeds, and paired differences between arms.

A probe's own interval (3 probe seeds x 5 folds, bootstrap over test items) says nothing about how far a
second pretraining run with another seed would land; on the dev set that spread was larger than every effect
a recipe was chosen for. So an arm's figure is the mean over its pretraining seeds with a Student t interval
over those seeds (each seed's value already carries its probe noise, so the spread of the values holds both),
and two arms are compared by the differences on the same seeds (pretraining seed s of arm A against seed s of
arm B: the same data order and init draw), again with a t interval over seeds. With one seed there is no
interval: the figure is labelled as a single run.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

from ssl_music.errors import SSLMusicError

LEVEL = 0.95
VERDICTS = ("better", "worse", "not distinguishable", "one seed: no interval", "no spread across seeds")
# Relative width under which an interval counts as a point: identical per-seed differences (a count of one
# clip of 168 at every seed) differ only by float rounding, ~1e-16.
ZERO_WIDTH = 1e-9


def t_interval(values: Sequence[float], level: float = LEVEL) -> dict:
    """Mean, sample standard deviation and the t interval of the mean of ``values`` (NaNs dropped).
    Fewer than two values: NaN bounds and ``n`` says why."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    n = int(v.size)
    if n == 0:
        return {"n": 0, "mean": float("nan"), "sd": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
    mean = float(v.mean())
    if n < 2:
        return {"n": 1, "mean": mean, "sd": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
    sd = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "ci_low": mean - half, "ci_high": mean + half}


def arm_summary(per_seed: Mapping[int, float]) -> dict:
    """{seed: value} -> t_interval over seeds plus the per-seed values (sorted by seed)."""
    seeds = sorted(s for s, v in per_seed.items() if v is not None and math.isfinite(v))
    return {**t_interval([per_seed[s] for s in seeds]), "values": {int(s): float(per_seed[s]) for s in seeds}}


def verdict(ci_low: float, ci_high: float, n: int) -> str:
    """better / worse when the interval of the difference excludes 0, else not distinguishable. An interval of
    zero width (every seed's difference the same) measures no run-to-run variance, so it supports no verdict:
    with one clip of difference at every seed, a fourth seed could as well give two or none."""
    if n < 2 or not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return VERDICTS[3]
    if ci_high - ci_low <= ZERO_WIDTH * max(1.0, abs(ci_low), abs(ci_high)):
        return VERDICTS[4]
    if ci_low > 0:
        return VERDICTS[0]
    if ci_high < 0:
        return VERDICTS[1]
    return VERDICTS[2]


def paired_difference(a: Mapping[int, float], b: Mapping[int, float]) -> dict:
    """A − B over the seeds both have a finite value for: mean, t interval, per-seed differences, verdict."""
    seeds = sorted(s for s in set(a) & set(b)
                   if a[s] is not None and b[s] is not None and math.isfinite(a[s]) and math.isfinite(b[s]))
    diffs = {int(s): float(a[s]) - float(b[s]) for s in seeds}
    out = {**t_interval(list(diffs.values())), "values": diffs}
    out["verdict"] = verdict(out["ci_low"], out["ci_high"], out["n"])
    return out


def by_arm(runs: Sequence[tuple[str, int | None, Mapping[str, float]]],
           sources: Sequence[str] | None = None) -> dict[str, dict[str, dict[int, float]]]:
    """[(arm, seed, {row: value})] -> {arm: {row: {seed: value}}}, arms and rows in first-seen order. Runs of
    one arm without seeds are numbered 0, 1, ... in order (each a separate pretraining run).

    Two runs with the same (arm, seed) are refused, naming both ``sources`` (the run folders): an (arm, seed) is
    one pretraining run, so the second would silently replace the first (two sweeps reusing an arm name, or one
    run evaluated twice). Which of them is meant is the caller's to say, by renaming or comparing separately."""
    out: dict[str, dict[str, dict[int, float]]] = {}
    seen: dict[tuple[str, int], str] = {}
    for i, (arm, seed, rows) in enumerate(runs):
        table = out.setdefault(arm, {})
        if seed is None:
            seed = len({s for r in table.values() for s in r})
        source = str(sources[i]) if sources is not None else f"run {i + 1}"
        if (arm, int(seed)) in seen:
            raise SSLMusicError(f"two runs are arm '{arm}' at seed {seed}: {seen[arm, int(seed)]} and {source}; "
                                "rename one or compare them separately")
        seen[arm, int(seed)] = source
        for row, value in rows.items():
            table.setdefault(row, {})[int(seed)] = value
    return out


def seed_tables(arms: Mapping[str, Mapping[str, Mapping[int, float]]],
                pairs: Sequence[tuple[str, str]] | None = None) -> dict:
    """Every arm's summary per row, and for every pair of arms (default: all, in order) the paired difference
    per row they share."""
    names = list(arms)
    summary = {arm: {row: arm_summary(vals) for row, vals in rows.items()} for arm, rows in arms.items()}
    pairs = list(pairs) if pairs is not None else [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    diffs = []
    for a, b in pairs:
        for row in arms[a]:
            if row in arms[b]:
                diffs.append({"a": a, "b": b, "row": row, **paired_difference(arms[a][row], arms[b][row])})
    return {"arms": summary, "pairs": diffs, "level": LEVEL,
            "method": f"{100 * LEVEL:.0f} % Student t interval over pretraining seeds (each seed's value is its "
                      "probe mean over probe seeds x folds); paired differences over the seeds both arms ran"}


def fmt_summary(s: Mapping) -> str:
    """``0.590 [0.551, 0.629] (3 seeds)``, or ``0.590 (1 seed, no interval)``."""
    if not s or not s.get("n"):
        return "—"
    if s["n"] < 2:
        return f"{s['mean']:.3f} (1 seed, no interval)"
    return f"{s['mean']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}] ({s['n']} seeds)"


def fmt_difference(d: Mapping) -> str:
    if not d.get("n"):
        return "—"
    if d["n"] < 2:
        return f"{d['mean']:+.3f} (1 seed)"
    return f"{d['mean']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"
