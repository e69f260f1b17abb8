"""Aggregation over pretraining seeds and paired differences, against values computed by hand."""
import json
import math
from pathlib import Path

import pytest

from ssl_music.cluster.runs import run_name, split_run_name
from ssl_music_eval.seeds import arm_summary, by_arm, paired_difference, seed_tables, t_interval, verdict


def test_t_interval_by_hand():
    # values 0.5, 0.6, 0.7: mean 0.6, sd 0.1, t(0.975, 2) = 4.302653, half = 4.302653 * 0.1 / sqrt(3) = 0.248414
    s = t_interval([0.5, 0.6, 0.7])
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.6) and s["sd"] == pytest.approx(0.1)
    assert s["ci_low"] == pytest.approx(0.6 - 0.248414, abs=1e-6) and s["ci_high"] == pytest.approx(0.848414, abs=1e-6)
    one = t_interval([0.42])
    assert one["n"] == 1 and one["mean"] == 0.42 and math.isnan(one["ci_low"]) and math.isnan(one["sd"])
    assert t_interval([float("nan"), None])["n"] == 0


def test_paired_difference_by_hand_uses_common_seeds_only():
    a = {0: 0.60, 1: 0.62, 2: 0.58, 5: 0.9}
    b = {0: 0.50, 1: 0.55, 2: 0.50, 7: 0.1}
    d = paired_difference(a, b)
    # diffs 0.10, 0.07, 0.08: mean 0.083333, sd 0.015275, half = 4.302653 * 0.015275 / sqrt(3) = 0.037946
    assert d["values"] == pytest.approx({0: 0.10, 1: 0.07, 2: 0.08})
    assert d["n"] == 3 and d["mean"] == pytest.approx(0.083333, abs=1e-6)
    assert d["ci_low"] == pytest.approx(0.083333 - 0.037946, abs=1e-5) and d["verdict"] == "better"
    assert paired_difference(b, a)["verdict"] == "worse"
    noisy = paired_difference({0: 0.6, 1: 0.5, 2: 0.7}, {0: 0.55, 1: 0.6, 2: 0.6})
    assert noisy["ci_low"] < 0 < noisy["ci_high"] and noisy["verdict"] == "not distinguishable"
    assert paired_difference({0: 0.6}, {0: 0.5})["verdict"] == "one seed: no interval"
    assert verdict(0.01, 0.02, 3) == "better" and verdict(-0.02, -0.01, 3) == "worse"


def test_identical_differences_at_every_seed_get_no_verdict():
    """subspaces_seeds.txt's tempo Acc2: one clip of 168 more at each seed, +0.006 [+0.006, +0.006], was 'better'.
    The per-seed differences are equal only up to float rounding, so the check cannot ask for sd == 0."""
    a = {0: 155 / 168, 1: 154 / 168, 2: 156 / 168}
    b = {0: 154 / 168, 1: 153 / 168, 2: 155 / 168}
    d = paired_difference(a, b)
    assert d["mean"] == pytest.approx(1 / 168) and d["ci_high"] - d["ci_low"] < 1e-12
    assert d["verdict"] == "no spread across seeds"
    assert paired_difference(b, a)["verdict"] == "no spread across seeds"
    assert verdict(0.5, 0.5, 3) == "no spread across seeds" and verdict(0.0, 0.0, 2) == "no spread across seeds"
    assert verdict(0.006, 0.0061, 3) == "better"   # narrow is not zero


def test_paired_interval_is_narrower_than_unpaired_when_seeds_move_both_arms():
    """A seed effect shared by both arms cancels in the paired difference."""
    a = {0: 0.70, 1: 0.50, 2: 0.60}
    b = {0: 0.68, 1: 0.48, 2: 0.57}
    d = paired_difference(a, b)
    assert d["verdict"] == "better"
    sa, sb = arm_summary(a), arm_summary(b)
    assert sa["ci_low"] < sb["ci_high"]  # the arms' own intervals overlap widely


def test_names_group_into_arms():
    assert split_run_name("shipped-seed2") == ("shipped", 2)
    assert split_run_name("mild-none-seed10") == ("mild-none", 10)
    assert split_run_name("recipe", 4) == ("recipe", 4) and split_run_name("recipe") == ("recipe", None)
    for arm, seed in (("mild-none", 10), ("a_b", 0), ("shipped", None)):   # what a sweep writes reads back
        assert split_run_name(run_name(arm, seed)) == (arm, seed)
    arms = by_arm([("a", 0, {"x": 1.0}), ("a", 1, {"x": 2.0}), ("b", None, {"x": 3.0}), ("b", None, {"x": 5.0})])
    assert arms == {"a": {"x": {0: 1.0, 1: 2.0}}, "b": {"x": {0: 3.0, 1: 5.0}}}
    t = seed_tables(arms)
    assert t["arms"]["a"]["x"]["mean"] == 1.5 and t["arms"]["a"]["x"]["values"] == {0: 1.0, 1: 2.0}
    assert [(p["a"], p["b"], p["row"], p["mean"]) for p in t["pairs"]] == [("a", "b", "x", -2.5)]


def _results(model: float, random: float) -> dict:
    probe = lambda v: {"accuracy": {"mean": v, "std": 0.0, "ci_low": v, "ci_high": v}}  # noqa: E731
    return {"run": "r", "datasets": {"dev": {"tasks": {"style": {
        "probes": {"linear": {"model": probe(model), "random_init": probe(random)}},
        "knn": {"model": {"10": model}, "random_init": {"10": random}}}}}}}


def test_compare_aggregates_arms_over_seeds_with_paired_verdicts(tmp_path):
    from ssl_music_eval.reports.report import compare_runs

    values = {"shipped": [0.60, 0.62, 0.58], "none": [0.50, 0.55, 0.50]}
    dirs = []
    for arm, vals in values.items():
        for seed, v in enumerate(vals):
            d = tmp_path / f"{arm}-seed{seed}"
            d.mkdir()
            (d / "results.json").write_text(json.dumps(_results(v, 0.4 + seed / 100)))
            dirs.append(d)
    summary = compare_runs(dirs, tmp_path / "report")
    seeds = summary["seeds"]
    row = "dev/style/linear accuracy"
    assert seeds["arms"]["shipped"][row]["mean"] == pytest.approx(0.6)
    assert seeds["arms"]["shipped"][row]["values"] == {0: 0.60, 1: 0.62, 2: 0.58}
    assert seeds["arms"]["shipped · random init"][row]["values"] == pytest.approx({0: 0.40, 1: 0.41, 2: 0.42})
    pair = next(p for p in seeds["pairs"] if (p["a"], p["b"], p["row"]) == ("shipped", "none", row))
    assert pair["mean"] == pytest.approx(0.083333, abs=1e-6) and pair["verdict"] == "better"
    twin = next(p for p in seeds["pairs"] if (p["a"], p["b"], p["row"]) == ("none", "none · random init", row))
    assert twin["values"] == pytest.approx({0: 0.10, 1: 0.14, 2: 0.08})
    md = (tmp_path / "report" / "compare.md").read_text()
    assert md.index("Arms over pretraining seeds") < md.index("Summary")
    assert "0.600 [" in md and "(3 seeds)" in md and "better" in md
    json.loads((tmp_path / "report" / "compare.json").read_text())


def test_two_runs_of_one_arm_and_seed_are_refused_naming_both_folders(tmp_path):
    """Two sweeps reusing the arm name 'shipped': before, the second sweep's seed-0 run replaced the first's."""
    from ssl_music.errors import SSLMusicError
    from ssl_music_eval.reports.report import compare_runs

    dirs = []
    for sweep in ("sweep_a", "sweep_b"):
        for seed in (0, 1):
            d = tmp_path / sweep / f"shipped-seed{seed}"
            d.mkdir(parents=True)
            (d / "results.json").write_text(json.dumps(_results(0.6 + seed / 10, 0.4)))
            dirs.append(d)
    with pytest.raises(SSLMusicError, match=r"arm 'shipped' at seed 0: .*sweep_a/shipped-seed0 and .*sweep_b/shipped-seed0"):
        compare_runs(dirs, tmp_path / "report")
    with pytest.raises(SSLMusicError, match="arm 'a' at seed 1: run 2 and run 3"):
        by_arm([("a", 0, {"x": 1.0}), ("a", 1, {"x": 2.0}), ("a", 1, {"x": 3.0})])
    with pytest.raises(SSLMusicError, match="seed 0"):   # a numbered run without seed meets an explicit one
        by_arm([("b", None, {"x": 1.0}), ("b", 0, {"x": 2.0})])


def test_compare_of_single_runs_says_they_are_single(tmp_path):
    from ssl_music_eval.reports.report import compare_runs

    dirs = []
    for name, v in (("a", 0.6), ("b", 0.5)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(_results(v, 0.4)))
        dirs.append(tmp_path / name)
    summary = compare_runs(dirs, tmp_path / "report")
    assert summary["seeds"] is None
    assert "single pretraining run (one seed)" in (tmp_path / "report" / "compare.md").read_text()


def test_compare_pairs_each_subspace_of_the_arms(tmp_path):
    """A model with named subspaces: each part's rows are compared arm against arm, named '<row> [<part>]'."""
    from ssl_music_eval.reports.report import compare_runs

    def results(content_key: float, pitch_key: float) -> dict:
        res = _results(0.6, 0.4)
        res["datasets"]["dev"]["locality"] = {"k": 10, "chance": {"key": 0.05}, "scores": {
            "model": {"key": 0.06}, "model/content": {"key": content_key}, "model/pitch": {"key": pitch_key}}}
        return res

    dirs = []
    for arm, content in (("both", [0.05, 0.06, 0.05]), ("none", [0.10, 0.12, 0.11])):
        for seed, c in enumerate(content):
            d = tmp_path / f"{arm}-seed{seed}"
            d.mkdir()
            (d / "results.json").write_text(json.dumps(results(c, 0.3)))
            dirs.append(d)
    seeds = compare_runs(dirs, tmp_path / "report")["seeds"]
    assert seeds["arms"]["both"]["dev/locality/key [pitch]"]["mean"] == pytest.approx(0.3)
    pair = next(p for p in seeds["pairs"] if (p["a"], p["b"], p["row"]) == ("both", "none", "dev/locality/key [content]"))
    assert pair["mean"] == pytest.approx(-0.056667, abs=1e-6) and pair["verdict"] == "worse"
    assert "dev/locality/key [content]" in (tmp_path / "report" / "compare.md").read_text()


def test_each_part_is_paired_with_the_same_part_of_its_twin(tmp_path):
    """A model with named subspaces: the twin arm carries each part's rows from the same part of the random-init
    twin (random_init/<part>), so trained - twin is paired over seeds part by part."""
    from ssl_music_eval.reports.report import compare_runs

    def results(pitch_key: float, twin_pitch_key: float) -> dict:
        res = _results(0.6, 0.4)
        res["datasets"]["dev"]["locality"] = {"k": 10, "chance": {"key": 0.05}, "scores": {
            "model": {"key": 0.06}, "random_init": {"key": 0.05}, "model/pitch": {"key": pitch_key},
            "random_init/pitch": {"key": twin_pitch_key}}}
        return res

    dirs = []
    for seed, (trained, twin) in enumerate(((0.30, 0.20), (0.32, 0.21), (0.31, 0.25))):
        d = tmp_path / f"subspaces-seed{seed}"
        d.mkdir()
        (d / "results.json").write_text(json.dumps(results(trained, twin)))
        dirs.append(d)
    seeds = compare_runs(dirs, tmp_path / "report")["seeds"]
    row = "dev/locality/key [pitch]"
    assert seeds["arms"]["subspaces · random init"][row]["values"] == pytest.approx({0: 0.20, 1: 0.21, 2: 0.25})
    pair = next(p for p in seeds["pairs"] if (p["a"], p["b"], p["row"]) == ("subspaces", "subspaces · random init", row))
    assert pair["values"] == pytest.approx({0: 0.10, 1: 0.11, 2: 0.06}) and pair["verdict"] == "better"
