"""benchmarks/real_music.py: its table reads the dev-set results the suite writes, and the dev-set suite parses."""
import importlib.util
from pathlib import Path

import pytest

from evaluation.suite import load_suite

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("real_music_bench", ROOT / "benchmarks" / "real_music.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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
