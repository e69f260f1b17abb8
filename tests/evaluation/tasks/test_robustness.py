"""Robustness task: probes fitted on clean clips, scored on seeded degraded copies; drops with intervals."""
import math

import numpy as np
import pytest

from ssl_music_eval.tasks.robustness import drop_summary
from ssl_music_eval.suite import load_suite, run_suite
from ssl_music.errors import ConfigError
from tests.evaluation.fakes import SpectralModel
from tests.evaluation.test_suite import click_corpus, write_suite  # noqa: F401 (fixture)

TASK = "      - {name: robust, column: timbre, type: robustness}\n"


def _suite(tmp_path, labels_csv, degradations="[white@20, white@0, lowpass@3000]"):
    path = write_suite(tmp_path / "suite.yaml", labels_csv,
                       robustness=f"{{degradations: {degradations}, seed: 3}}", baselines="{mfcc_chroma: true}")
    text = path.read_text().replace("      - {name: timbre, column: timbre, type: multiclass}\n",
                                    "      - {name: timbre, column: timbre, type: multiclass}\n" + TASK)
    path.write_text(text)
    return path


def test_drop_summary_by_hand():
    # differences 0.1, 0.2, 0.3: mean 0.2, sd 0.1, t(0.975, 2) = 4.302653 -> half 0.248414
    s = drop_summary(np.array([0.9, 0.8, 0.7]), np.array([0.8, 0.6, 0.4]))
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.2)
    assert s["ci_low"] == pytest.approx(0.2 - 0.248414, abs=1e-6) and s["ci_high"] == pytest.approx(0.448414, abs=1e-6)
    assert math.isnan(drop_summary(np.array([0.9]), np.array([0.5]))["ci_low"])


def test_drop_interval_averages_over_probe_seeds_first():
    """[2 seeds, 3 folds]: per-fold drops averaged over seeds are 0.1, 0.2, 0.3 (the by-hand case above), so the
    interval is over those 3 fold values, not over 6 seed × fold values as if they were independent."""
    clean = np.array([[0.9, 0.8, 0.7], [0.9, 0.8, 0.7]])
    degraded = np.array([[0.85, 0.65, 0.35], [0.75, 0.55, 0.45]])   # seed drops (0.05, 0.15, 0.35), (0.15, 0.25, 0.25)
    s = drop_summary(clean, degraded)
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.2)
    assert (s["ci_low"], s["ci_high"]) == (pytest.approx(0.2 - 0.248414, abs=1e-6), pytest.approx(0.448414, abs=1e-6))


def test_robustness_task_scores_every_set_on_the_same_degraded_copies(tmp_path, click_corpus):  # noqa: F811
    suite = _suite(tmp_path, click_corpus)
    model, rand = SpectralModel(identity="ckpt-1", crop_s=2.0), SpectralModel(identity="random-0", crop_s=2.0)
    rand.has_tempo_head = False
    res = run_suite("fake.ckpt", suite, tmp_path / "run", model=model, random_model=rand, progress=False)
    r = res["datasets"]["clicks"]["tasks"]["robust"]
    assert r["type"] == "robustness" and r["n"] == 12 and r["seed"] == 3
    assert set(r["degradations"]) == {"white@20", "white@0", "lowpass@3000"}
    for spec, entry in r["degradations"].items():
        assert set(entry) == {"model", "random_init", "mfcc_chroma"}
        for name, e in entry.items():
            d = e["drop"]
            assert d["mean"] == pytest.approx(r["clean"][name] - e["accuracy"], abs=1e-9), (spec, name)
            assert d["ci_low"] <= d["mean"] <= d["ci_high"] or d["n"] < 2
    md = (tmp_path / "run" / "report.md").read_text()
    assert "white@0" in md and "drop" in md and "fitted on clean clips" in md
    from ssl_music_eval.reports.report_summary import comparison_rows
    for name in ("model", "mfcc_chroma"):     # a sweep's comparison: degraded - clean, higher is better
        rows = comparison_rows(res, name)
        for spec, entry in r["degradations"].items():
            assert rows[f"clicks/robust/accuracy change under {spec}"] == -entry[name]["drop"]["mean"]
    again = run_suite("fake.ckpt", suite, tmp_path / "run2", model=model, random_model=rand, progress=False)
    assert again["datasets"]["clicks"]["tasks"]["robust"] == r      # seeded: the same copies, the same scores


def test_a_bad_degradation_names_its_key(tmp_path, click_corpus):  # noqa: F811
    with pytest.raises(ConfigError, match=r"robustness\.degradations\.1.*unknown degradation 'hiss'"):
        load_suite(_suite(tmp_path, click_corpus, "[white@20, hiss@3]"))


def test_shipped_robustness_suite_parses():
    from ssl_music.config import CONFIG_DIR

    cfg = load_suite(CONFIG_DIR / "eval" / "robustness.yaml")
    assert [t.type for t in cfg.datasets[0].tasks] == ["robustness", "robustness"]
    assert "pink@0" in cfg.robustness.degradations and cfg.robustness.probe == "linear"


def test_frontend_backend_suite_scores_the_dev_set_and_its_degraded_copies():
    from ssl_music.config import CONFIG_DIR

    cfg = load_suite(CONFIG_DIR / "eval" / "frontend_backend.yaml")
    types = {t.name: t.type for t in cfg.datasets[0].tasks}
    assert types["style_degraded"] == types["instrument_degraded"] == "robustness" and types["tempo"] == "tempo"
    # the twin is independent of the pretraining run and doubles the slow arms' embedding time
    assert not cfg.baselines.random_init and cfg.baselines.mfcc_chroma


def test_two_robustness_tasks_over_the_same_clips_embed_each_degraded_copy_once(tmp_path, click_corpus):  # noqa: F811
    def calls(suite, out):
        model = SpectralModel(identity="ckpt-1", crop_s=2.0)
        seen = []
        inner = model.embed_windows
        model.embed_windows = lambda wave, sr, hop_s=None: seen.append(1) or inner(wave, sr, hop_s=hop_s)
        rand = SpectralModel(identity="random-0", crop_s=2.0)
        rand.has_tempo_head = False
        res = run_suite("fake.ckpt", suite, out, model=model, random_model=rand, progress=False)
        return len(seen), res["datasets"]["clicks"]["tasks"]

    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = _suite(tmp_path / "one", click_corpus)
    two = _suite(tmp_path / "two", click_corpus)
    two.write_text(two.read_text().replace(TASK, TASK + TASK.replace("name: robust,", "name: robust2,")))
    n_one, t_one = calls(one, tmp_path / "run1")
    n_two, t_two = calls(two, tmp_path / "run2")
    assert n_two == n_one and t_two["robust2"]["degradations"] == t_two["robust"]["degradations"] == \
        t_one["robust"]["degradations"]


def _robust_task(tmp_path, labels_csv, degradations, *overrides):
    suite = _suite(tmp_path, labels_csv, degradations)
    model, rand = SpectralModel(identity="ckpt-1", crop_s=2.0), SpectralModel(identity="random-0", crop_s=2.0)
    rand.has_tempo_head = False
    res = run_suite("fake.ckpt", suite, tmp_path / "run", list(overrides), model=model, random_model=rand,
                    progress=False)
    return res["datasets"]["clicks"]["tasks"]["robust"]


def test_a_degradation_that_changes_nothing_drops_nothing(tmp_path, click_corpus, monkeypatch):  # noqa: F811
    """lowpass above Nyquist returns the clip as it is: the degraded copies are the clean features (embedded
    with the same ``embed.hop_s``), so every probe scores the same and each drop is exactly 0."""
    import ssl_music_eval.tasks.robustness as robustness

    seen = []
    inner = robustness.degraded_features
    monkeypatch.setattr(robustness, "degraded_features",
                        lambda ctx, items, specs, seed: seen.append((ctx, items)) or inner(ctx, items, specs, seed))
    # a hop of 1 s where the crop is 2 s: 3 windows of a 4 s clip, not 2; the copies must be embedded alike
    r = _robust_task(tmp_path, click_corpus, "[lowpass@20000]", "seeds=[0,1]", "embed.hop_s=1.0")
    ctx, items = seen[0]
    copies = inner(ctx, items, ["lowpass@20000"], 3)["lowpass@20000"]
    rows = [ctx.items.index(it) for it in items]
    for name, X in copies.items():
        np.testing.assert_array_equal(X, ctx.feats[name][rows], err_msg=name)
    for name, e in r["degradations"]["lowpass@20000"].items():
        assert e["accuracy"] == r["clean"][name], name
        assert (e["drop"]["mean"], e["drop"]["ci_low"], e["drop"]["ci_high"]) == (0.0, 0.0, 0.0), name


def test_a_destructive_degradation_drops_the_accuracy_of_a_model_that_reads_the_audio(tmp_path, click_corpus):  # noqa: F811
    """White noise 10 dB louder than the clip buries the loud / soft difference the fake's RMS feature
    separates (clean accuracy ~1): a probe scored on the degraded copies must lose accuracy. A task that scored
    the clean features instead (the bug this catches) reports a drop of 0."""
    r = _robust_task(tmp_path, click_corpus, "[white@-10]")
    assert r["clean"]["model"] >= 0.9
    drop = r["degradations"]["white@-10"]["model"]["drop"]
    assert drop["mean"] > 0.2, drop
