"""Evaluation per subspace: feature sets, weighted retrieval with intervals, the report's part, and the
suite end to end on a model with subspaces."""
import numpy as np
import pytest

from ssl_music_eval.probes.locality import locality
from ssl_music_eval.reports.report_doc import Doc
from ssl_music_eval.reports.report_subspaces import add_subspaces, answers
from ssl_music_eval.reports.report_summary import add_summary
from ssl_music_eval.subspaces import bootstrap_mean, subspace_features, weighted, weighted_locality
from ssl_music.objectives import Subspace

LAYOUT = [Subspace("content", 0, 4), Subspace("pitch", 4, 8, ("pitch_shift",))]


class _Model:
    layout = LAYOUT


def _clustered(n=120, seed=0):
    """content clusters by style, pitch by key; each label drawn independently per item."""
    rng = np.random.default_rng(seed)
    style, key = rng.integers(0, 3, n), rng.integers(0, 4, n)
    centres_s, centres_k = rng.standard_normal((3, 4)) * 3, rng.standard_normal((4, 4)) * 3
    X = np.concatenate([centres_s[style], centres_k[key]], axis=1) + rng.standard_normal((n, 8))
    return X.astype(np.float32), {"style": style.tolist(), "key": key.tolist()}


def test_one_feature_set_per_subspace_and_none_for_a_one_part_model():
    X = np.arange(16, dtype=np.float32).reshape(2, 8)
    feats = subspace_features(_Model(), X)
    assert list(feats) == ["model/content", "model/pitch"]
    np.testing.assert_array_equal(feats["model/pitch"], X[:, 4:])

    class One:
        layout = [Subspace("all", 0, 8)]
    assert subspace_features(One(), X) == {} and subspace_features(object(), X) == {}


def test_the_last_parts_learned_dimensions_are_a_set_of_their_own_beside_the_periodicity_statistic():
    class Encoder:
        content_dim = 6      # dimensions 6 and 7: the fixed statistic, inside the last part (pitch, 4..8)

    class WithStatistic(_Model):
        encoder = Encoder()

    X = np.arange(16, dtype=np.float32).reshape(2, 8)
    feats = subspace_features(WithStatistic(), X)
    assert list(feats) == ["model/content", "model/pitch", "model/pitch (learned)"]
    np.testing.assert_array_equal(feats["model/pitch (learned)"], X[:, 4:6])
    Encoder.content_dim = 8  # no statistic: nothing more
    assert list(subspace_features(WithStatistic(), X)) == ["model/content", "model/pitch"]


def test_cosine_on_the_weighted_concatenation_is_the_weighted_similarity():
    X, _ = _clustered(6)
    W = weighted(X, LAYOUT, {"content": 1.0, "pitch": 0.5})
    cos = W[0] @ W[1] / np.linalg.norm(W[0]) / np.linalg.norm(W[1])

    def c(a, b):
        return a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    expected = (c(X[0, :4], X[1, :4]) + 0.5 * c(X[0, 4:], X[1, 4:])) / 1.5
    assert cos == pytest.approx(expected, rel=1e-5)


def test_key_locality_rises_with_the_pitch_weight_and_every_value_has_its_interval():
    X, labels = _clustered()
    out = weighted_locality(X, LAYOUT, labels, k=5, weights=(0.0, 0.5, 1.0), n_boot=200)
    assert out["base"] == "content" and list(out["parts"]) == ["pitch"]
    key = [c["mean"] for c in out["parts"]["pitch"]["key"]]
    assert key[0] < key[1] <= key[2] + 0.05 and key[2] - key[0] > 0.2, key
    for c in out["parts"]["pitch"]["style"] + out["parts"]["pitch"]["key"]:
        assert c["ci_low"] <= c["mean"] <= c["ci_high"]
    at_zero = locality(X[:, :4], labels, k=5)["key"]["share"]   # weight 0: the content part alone
    assert key[0] == pytest.approx(at_zero)


def test_bootstrap_mean_ignores_unscored_queries():
    out = bootstrap_mean(np.array([1.0, 0.0, np.nan, 1.0]), 100)
    assert out["mean"] == pytest.approx(2 / 3) and 0 <= out["ci_low"] <= out["ci_high"] <= 1


def test_the_report_names_the_subspace_answering_each_property_and_shows_the_table():
    X, labels = _clustered()
    scores = {fs: {a: r["share"] for a, r in locality(Y, labels, k=5).items()}
              for fs, Y in {"model": X, **subspace_features(_Model(), X)}.items()}
    loc = {"k": 5, "scores": scores, "chance": {"style": 0.33, "key": 0.25},
           "weighted": weighted_locality(X, LAYOUT, labels, k=5, weights=(0.0, 1.0), n_boot=50)}
    lines = answers(loc)
    assert lines[0].startswith("style: content") and lines[1].startswith("key: pitch")
    doc = Doc("t", None)
    add_subspaces(doc, loc)
    md = "\n".join(doc.md)
    assert "Weighted retrieval (locality@5)" in md and "| pitch | key |" in md and "w = 1" in md


def test_the_summary_has_one_column_per_subspace():
    results = {"datasets": {"d": {"locality": {"k": 5, "chance": {"key": 0.25},
                                               "scores": {"model": {"key": 0.3}, "random_init": {"key": 0.2},
                                                          "model/content": {"key": 0.25}, "model/pitch": {"key": 0.5}}},
                                  "tasks": {}}}}
    doc = Doc("t", None)
    add_summary(doc, results)
    header = next(line for line in doc.md if line.startswith("| dataset"))
    assert "model: content" in header and "model: pitch" in header


def test_the_summary_puts_each_part_beside_the_same_part_of_its_twin():
    results = {"datasets": {"d": {"locality": {"k": 5, "chance": {"key": 0.25},
                                               "scores": {"model": {"key": 0.3}, "random_init": {"key": 0.2},
                                                          "model/content": {"key": 0.25}, "model/pitch": {"key": 0.5},
                                                          "random_init/content": {"key": 0.2},
                                                          "random_init/pitch": {"key": 0.4}}},
                                  "tasks": {}}}}
    doc = Doc("t", None)
    add_summary(doc, results)
    header = next(line for line in doc.md if line.startswith("| dataset"))
    assert "| model: content | random init: content | model: pitch | random init: pitch |" in header


from tests.evaluation.test_suite import click_corpus, write_suite  # noqa: E402,F401  (the fixture)


def test_the_suite_scores_every_subspace_and_the_weighted_retrieval(tmp_path, click_corpus):  # noqa: F811
    import json

    from ssl_music_eval.suite import run_suite
    from tests.test_subspaces_api import _subspace_checkpoint

    ckpt = _subspace_checkpoint(tmp_path / "m.ckpt")
    suite = write_suite(tmp_path / "suite.yaml", click_corpus)
    res = run_suite(ckpt, suite, tmp_path / "run", ["tempo.librosa=false", "probes.bootstrap=50"], progress=False)
    ds = res["datasets"]["clicks"]
    parts = ["model/content", "model/pitch", "model/tempo", "model/tempo (learned)"]   # tempo holds the statistic
    assert set(parts) <= set(ds["tasks"]["timbre"]["probes"]["linear"]) and set(parts) <= set(ds["tasks"]["timbre"]["knn"])
    assert set(parts) <= set(ds["locality"]["scores"])
    twins = [p.replace("model/", "random_init/") for p in parts]   # each part beside the same part of the twin
    assert set(twins) <= set(ds["tasks"]["timbre"]["probes"]["linear"]) and set(twins) <= set(ds["locality"]["scores"])
    weighted = ds["locality"]["weighted"]
    assert weighted["base"] == "content" and set(weighted["parts"]) == {"pitch", "tempo"}
    assert len(weighted["parts"]["tempo"]["tempo_class"]) == len(weighted["weights"]) == 5
    json.loads((tmp_path / "run" / "results.json").read_text())
    md = (tmp_path / "run" / "report.md").read_text()
    assert "model: pitch" in md and "Weighted retrieval" in md and "Which subspace answers" in md
    assert "| model: pitch | random init: pitch |" in md
