"""The tempo translation suite task (ssl_music_eval.translation) on the tiny corpus, end to end through run_suite."""
import json

import numpy as np
import pytest

from ssl_music_eval.suite import load_suite, run_suite
from ssl_music_eval.translation import fidelity, tempo_classes
from ssl_music.config import ConfigError
from tests.evaluation.fakes import tiny_checkpoint

SUITE = """
name: translation
datasets:
  - name: tiny
    kind: synthetic
    path: {labels}
    tasks:
      - {{name: timbre, column: timbre, type: multiclass}}
      - {{name: tempo_translation, column: tempo, type: translation}}
probes: {{linear: true, mlp: false, bootstrap: 50}}
seeds: [0]
folds: 2
knn: {{ks: [1, 3]}}
locality: {{k: 3}}
baselines: {{random_init: false, mfcc_chroma: false}}
translation: {{ratios: [0.8, 1.0, 1.25], k: 3, demo_queries: 2}}
rare_classes: drop
"""


def _suite(tmp_path, labels):
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE.format(labels=labels))
    return path


def test_translation_task_reports_every_part(translator_checkpoint, tiny_corpus, tmp_path):
    out = tmp_path / "eval"
    results = run_suite(translator_checkpoint, _suite(tmp_path, tiny_corpus), out, progress=False)
    t = results["datasets"]["tiny"]["tasks"]["tempo_translation"]
    assert t["type"] == "translation" and t["n"] == 12
    res = t["translation"]
    assert "model_error" not in res
    assert [f["ratio"] for f in res["fidelity"]] == [0.8, 1.0, 1.25]
    at_one = res["fidelity"][1]
    assert at_one["gain"]["mean"] == 0.0                       # T(e, log 1) = e exactly
    for f in res["fidelity"]:
        assert f["translated"]["ci_low"] <= f["translated"]["mean"] <= f["translated"]["ci_high"]
        assert 1 <= f["rank_translated"]["mean"] <= 12
    assert set(res["properties"]) == {"timbre"}                  # default: multiclass columns not about tempo
    p = res["properties"]["timbre"]
    assert set(p["per_ratio"]) == {"translated", "translated_queries", "stretched", "stretched_queries"}
    assert set(p["per_ratio"]["translated"]) == {"0.8", "1.25"}
    assert 0 <= p["translated"] <= 1 and p["within_target"] == (p["translated"] >= p["untranslated"] - 0.02)
    probe = res["tempo_probe"]
    assert "error" not in probe and set(probe["arms"]) == {"plain", "translated", "stretched"}
    for arm in probe["arms"].values():
        acc = arm["accuracy"]
        assert 0 <= acc["ci_low"] <= acc["mean"] <= acc["ci_high"] <= 1
    assert probe["gain"]["translated"] == pytest.approx(probe["arms"]["translated"]["accuracy"]["mean"]
                                                        - probe["arms"]["plain"]["accuracy"]["mean"])
    ret = res["retrieval"]
    assert len(ret["queries"]) == 2 and len(ret["queries"][0]["translated"]) == 5
    assert ret["queries_scored"] <= 12 and set(ret["translated"]) == {"near_target", "near_query", "mean_log2"}
    assert set(res["targets"]) == {"fidelity_separated_at_every_ratio", "properties_within_0.02", "tempo_probe_gains"}
    report = (out / "report.md").read_text()
    assert "Tempo translation: clips stretched by 0.8, 1, 1.25" in report and "T(e, log r)" in report
    assert "Same track, faster (r = 1.2)" in report
    assert json.loads((out / "results.json").read_text())["datasets"]["tiny"]["tasks"]["tempo_translation"]
    # a second run reads the stretched embeddings from the cache and gives the same figures
    again = run_suite(translator_checkpoint, _suite(tmp_path, tiny_corpus), out, progress=False)
    assert again["datasets"]["tiny"]["tasks"]["tempo_translation"]["translation"]["fidelity"] == res["fidelity"]


def test_a_checkpoint_without_translator_is_reported_not_fatal(tiny_corpus, tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "plain.ckpt")
    results = run_suite(ckpt, _suite(tmp_path, tiny_corpus), tmp_path / "eval", progress=False)
    res = results["datasets"]["tiny"]["tasks"]["tempo_translation"]["translation"]
    assert "no tempo translator" in res["model_error"]
    assert "Tempo translation not evaluated" in (tmp_path / "eval" / "report.md").read_text()


def test_suite_checks_translation_settings_and_columns(tiny_corpus, tmp_path):
    suite = _suite(tmp_path, tiny_corpus)
    with pytest.raises(ConfigError, match="translation.ratios"):
        load_suite(suite, ["translation.ratios=[1.0]"])
    with pytest.raises(ConfigError, match="translation.attributes.*no label column 'instrument'"):
        run_suite(tiny_checkpoint(tmp_path / "m.ckpt"), suite, tmp_path / "eval",
                  ["translation.attributes=[instrument]"], progress=False)


def test_bootstrap_zero_gives_no_interval_and_negative_is_refused(translator_checkpoint, tiny_corpus, tmp_path):
    suite = _suite(tmp_path, tiny_corpus)
    with pytest.raises(ConfigError, match="'probes.bootstrap': must be >= 0 .*got -1"):
        load_suite(suite, ["probes.bootstrap=-1"])
    results = run_suite(translator_checkpoint, suite, tmp_path / "eval", ["probes.bootstrap=0"], progress=False)
    res = results["datasets"]["tiny"]["tasks"]["tempo_translation"]["translation"]
    for f in res["fidelity"]:   # two draws used to make up a "95 % CI"
        assert np.isnan(f["translated"]["ci_low"]) and np.isnan(f["gain"]["ci_high"]) and not f["separated"]
    assert "no CI" in res["protocol"]["interval"] and "95 % CI" not in res["protocol"]["interval"]
    report = (tmp_path / "eval" / "report.md").read_text()
    section = report[report.index("Tempo translation:"):]
    assert "nan" not in section and "95 % CI" not in section


class _Broken:
    """A model whose translator raises AttributeError from inside: a bug to show, not 'no translator'."""
    sample_rate, crop_s, identity, has_tempo_head = 16000, 1.0, "broken", False

    def translate_tempo(self, embedding, ratio):
        return embedding.no_such_attribute


def test_only_a_missing_translator_reads_as_no_translator():
    from types import SimpleNamespace

    from ssl_music_eval.translation import translation_task

    cfg = load_suite_defaults()
    task = SimpleNamespace(column="tempo")
    spec = SimpleNamespace(name="x", tasks=[])
    with pytest.raises(AttributeError, match="no_such_attribute"):
        translation_task(cfg, spec, task, [], _Broken(), np.zeros((3, 4), np.float32), None)
    res = translation_task(cfg, spec, task, [], object(), np.zeros((3, 4), np.float32), None)["translation"]
    assert "no tempo translator" in res["model_error"]


def load_suite_defaults():
    from omegaconf import OmegaConf

    from ssl_music_eval.suite import SuiteConfig

    return OmegaConf.structured(SuiteConfig)


def test_fidelity_ranks_and_intervals_on_known_embeddings():
    rng = np.random.default_rng(0)
    E = rng.normal(size=(20, 8))
    S = E[None] + 0.5 * rng.normal(size=(1, 20, 8)) + 2.0   # the real stretch moves every clip by +2
    T = E[None] + 2.0                                        # a perfect-on-average translation
    row = fidelity(E, S, T, [1.2], n_boot=200)[0]
    assert row["translated"]["mean"] > row["identity"]["mean"] and row["separated"]
    assert row["rank_translated"]["top1"] >= row["rank_identity"]["top1"]


def test_tempo_classes_are_log_spaced_and_bounded():
    idx, names = tempo_classes(np.array([59.0, 60.0, 100.0, 199.9, 200.0]), 60.0, 200.0, 6)
    assert idx.tolist() == [-1, 0, 2, 5, -1] and names[0] == "060-073"


def test_a_csv_dataset_reads_the_bpm_column_of_a_translation_task(tiny_corpus, tmp_path):
    from ssl_music_eval.suite import load_dataset

    cfg = load_suite(_suite(tmp_path, tiny_corpus), ["datasets.0.kind=csv"])
    ds = load_dataset(cfg.datasets[0])
    assert len(ds.items) == 12 and all(float(it.labels["tempo"]) > 0 for it in ds.items)
