"""benchmarks/real_music.py: its table reads the dev-set results the suite writes, and the dev-set suite parses."""
from pathlib import Path

import pytest

from ssl_music_eval.suite import load_suite
from tests.benchmarks import load_benchmark

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    return load_benchmark("real_music")


def _acc(v):
    return {"accuracy": {"mean": v, "ci_low": v - 0.1, "ci_high": v + 0.1}}


def test_table_rows_and_delta_vs_random_init():
    probes = {p: {"model": _acc(0.7), "random_init": _acc(0.6), "mfcc_chroma": _acc(0.65)} for p in ("linear", "mlp")}
    results = {"datasets": {"devset": {
        "tasks": {"style": {"probes": probes, "knn": {s: {"1": 0.1, "10": v} for s, v in
                                                       (("model", 0.5), ("random_init", 0.42), ("mfcc_chroma", 0.4))}},
                  "tempo": {"tempo": {"n": 9, "model": {"acc1": 0.6, "acc2": 0.9}, "librosa": {"acc1": 0.5, "acc2": 0.8}}},
                  "tempo_drums": {"tempo": {"n": 4, "model": {"acc1": 0.75, "acc2": 1.0}}}},
        "locality": {"chance": {"style": 0.25}, "scores": {"model": {"style": 0.4}, "random_init": {"style": 0.3},
                                                          "mfcc_chroma": {"style": 0.35}}}}}}
    rows = {r[0]: r[1:] for r in _bench().rows(results)}
    assert rows["style linear"] == ("0.700", "0.600", "0.650", "–", "0.100")
    assert rows["style 10-NN"] == ("0.500", "0.420", "0.400", "–", "0.080")
    assert rows["style locality (chance 0.250)"] == ("0.400", "0.300", "0.350", "–", "0.100")
    assert rows["tempo Acc1 (n=9)"] == ("0.600", "–", "–", "0.500", "–")
    assert rows["tempo_drums Acc2 (n=4)"] == ("1.000", "–", "–", "–", "–")
    assert not any(name.startswith("key") for name in rows)      # a task the run lacks is left out


def test_devset_suite_parses_with_its_drum_subset():
    cfg = load_suite(ROOT / "configs/eval/devset.yaml")
    tasks = {t.name: t for t in cfg.datasets[0].tasks}
    assert tasks["tempo_drums"].where == "drums=true" and tasks["tempo_drums"].type == "tempo"
    assert list(cfg.seeds) == [0, 1, 2] and cfg.folds == 5 and cfg.rare_classes == "drop"
    assert "tempo" in cfg.locality.attributes and cfg.locality.tolerance == pytest.approx(0.04)


def _dev(model: float, random: float, mfcc: float = 0.65) -> dict:
    probes = {"linear": {"model": _acc(model), "random_init": _acc(random), "mfcc_chroma": _acc(mfcc)}}
    return {"datasets": {"devset": {"tasks": {"style": {"probes": probes}}}}}


def test_seed_table_means_intervals_and_paired_delta_by_hand():
    bench = _bench()
    rows = {r[0]: r[1:] for r in bench.seed_rows({0: _dev(0.60, 0.50), 1: _dev(0.62, 0.55), 2: _dev(0.58, 0.50)})}
    model, rand, mfcc, lib, diff, verdict, per_seed = rows["style linear"]
    # model 0.60 / 0.62 / 0.58: mean 0.600, sd 0.02, t(0.975, 2) * 0.02 / sqrt(3) = 0.0497
    assert model == "0.600 [0.550, 0.650] (3 seeds)"
    # paired differences 0.10, 0.07, 0.08 -> +0.083 [+0.045, +0.121]
    assert diff == "+0.083 [+0.045, +0.121]" and verdict == "better"
    assert mfcc == "0.650" and lib == "–" and per_seed == "0.600 0.620 0.580"
    one = {r[0]: r[1:] for r in bench.seed_rows({0: _dev(0.6, 0.5)})}
    assert one["style linear"][0] == "0.600 (1 seed, no interval)" and one["style linear"][5] == "one seed: no interval"
    assert bench.parse_seeds("3") == [0, 1, 2] and bench.parse_seeds("0,4") == [0, 4]
    for bad in ("0", "1,1", "x"):
        with pytest.raises(SystemExit):
            bench.parse_seeds(bad)


def test_benchmark_reuses_a_stage_only_for_the_same_inputs(tmp_path, monkeypatch):
    import json
    from types import SimpleNamespace

    bench = _bench()
    calls = []
    monkeypatch.setattr(bench, "_cli", lambda args, log: calls.append(args[0]) or 0.0)
    a = SimpleNamespace(config=str(ROOT / "configs/pretrain/real_music.yaml"), steps=800, override=[],
                        suite=str(ROOT / "configs/eval/devset.yaml"), devset="")
    run = tmp_path / "run-seed0"
    run.mkdir()
    pre, ev = bench.stage_inputs(a, tmp_path / "shards", run, 0)
    (run / "DONE").write_text(json.dumps({"global_step": 800, "inputs": pre}))
    bench.pretrain(a, tmp_path, tmp_path / "shards", run, 0)
    assert calls == []                                    # same inputs: reused
    a.steps = 1600                                        # another budget: not reused, the old run kept aside
    bench.pretrain(a, tmp_path, tmp_path / "shards", run, 0)
    assert calls == ["pretrain"] and list((run / "stale").glob("*/DONE"))
    assert bench.stage_inputs(a, tmp_path / "shards", run, 1)[0] != bench.stage_inputs(a, tmp_path / "shards", run, 0)[0]


def _subspace_results(shift: float) -> dict:
    res = _dev(0.6 + shift, 0.5)
    ds = res["datasets"]["devset"]
    ds["tasks"]["style"]["probes"]["linear"].update({"model/content": _acc(0.55 + shift), "model/pitch": _acc(0.3)})
    ds["tasks"]["style"]["knn"] = {"model": {"10": 0.5}, "model/content": {"10": 0.45 + shift}}
    ds["locality"] = {"chance": {"key": 0.05}, "k": 10,
                      "scores": {"model": {"key": 0.06}, "model/pitch": {"key": 0.2 + shift}},
                      "weighted": {"base": "content", "k": 10, "weights": [0.0, 1.0],
                                   "parts": {"pitch": {"key": [{"mean": 0.06}, {"mean": 0.15 + shift}]}}}}
    return res


def test_subspace_tables_per_subspace_and_weighted_retrieval_over_seeds():
    bench = _bench()
    assert bench.subspace_rows({0: _dev(0.6, 0.5)}) == []          # no subspaces: no table
    rows = {r[0]: r[1:] for r in bench.subspace_rows({0: _subspace_results(0.0), 1: _subspace_results(0.02),
                                                      2: _subspace_results(-0.02)})}
    assert rows["style linear [content]"] == ("0.550 [0.500, 0.600] (3 seeds)", "0.550 0.570 0.530")
    assert rows["style linear [pitch]"][1] == "0.300 0.300 0.300"
    assert rows["style 10-NN [content]"][1] == "0.450 0.470 0.430"
    assert rows["key locality [pitch] (chance 0.050)"][1] == "0.200 0.220 0.180"
    assert rows["key locality@10: content 1 + pitch 1"][1] == "0.150 0.170 0.130"
    assert rows["key locality@10: content 1 + pitch 0"][1] == "0.060 0.060 0.060"
