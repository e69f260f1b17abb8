import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ssl_music_eval.suite import load_suite, run_suite
from ssl_music.cli import main
from ssl_music.config import ConfigError
from ssl_music.data.synth import click_track
from ssl_music.errors import SSLMusicError
from tests.evaluation.fakes import SpectralModel

REPO = Path(__file__).resolve().parents[2]
COLUMNS = ["path", "track_id", "tempo", "tempo_class", "key", "timbre", "style", "drums"]


@pytest.fixture(scope="module")
def click_corpus(tmp_path_factory):
    """12 click tracks whose labels a spectral fake can separate (loudness, tempo) plus a missing file."""
    root = tmp_path_factory.mktemp("clicks")
    (root / "audio").mkdir()
    rows = []
    for i in range(12):
        bpm = [72.0, 85.0, 97.0, 112.0, 131.0, 150.0][i % 6] * (1.0 + 0.01 * (i // 6))
        loud = i % 2 == 0
        x = click_track(bpm, 4.0, 16000, kind="click") * (1.0 if loud else 0.2)
        sf.write(root / "audio" / f"t{i:02d}.wav", np.roll(x, 97 * i), 16000)
        rows.append({"path": f"audio/t{i:02d}.wav", "track_id": f"t{i:02d}", "tempo": f"{bpm:.2f}",
                     "tempo_class": "slow" if bpm < 105 else "fast", "key": "C:maj" if i % 3 else "A:min",
                     "timbre": "loud" if loud else "soft", "style": "a" if i < 6 else "b", "drums": "1"})
    rows.append({**rows[0], "path": "audio/gone.wav", "track_id": "gone"})
    with open(root / "labels.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return root / "labels.csv"


def write_suite(path, labels_csv, **extra):
    text = f"""
name: test
datasets:
  - name: clicks
    kind: synthetic
    path: {labels_csv}
    tasks:
      - {{name: tempo_bpm, column: tempo, type: tempo}}
      - {{name: timbre, column: timbre, type: multiclass}}
seeds: [0]
folds: 2
knn: {{ks: [1, 3]}}
locality: {{k: 3, attributes: [tempo_class, timbre]}}
tempo: {{windows: 1, step: 0.02}}
"""
    for k, v in extra.items():
        text += f"{k}: {v}\n"
    path.write_text(text)
    return path


def test_suite_end_to_end_and_cache_reuse(tmp_path, click_corpus):
    suite = write_suite(tmp_path / "suite.yaml", click_corpus)
    model, rand = SpectralModel(identity="ckpt-1", crop_s=2.0), SpectralModel(identity="random-0", crop_s=2.0)
    rand.has_tempo_head = False
    res = run_suite("fake.ckpt", suite, tmp_path / "run", model=model, random_model=rand, progress=False)
    ds = res["datasets"]["clicks"]
    assert ds["n_embedded"] == 12 and len(ds["skipped"]) == 1 and "gone.wav" in ds["skipped"][0][0]
    assert set(ds["tasks"]) == {"tempo_bpm", "timbre"}
    timbre = ds["tasks"]["timbre"]["probes"]["linear"]
    assert set(timbre) == {"model", "random_init", "mfcc_chroma"}
    assert timbre["model"]["accuracy"]["mean"] >= 0.9      # loudness is in the fake's RMS feature
    assert ds["tasks"]["tempo_bpm"]["tempo"]["model"]["acc1"] == 1.0
    assert "librosa" in ds["tasks"]["tempo_bpm"]["tempo"]
    assert set(ds["locality"]["scores"]["model"]) == {"tempo_class", "timbre"}
    assert len(ds["projection"]["xy"]) == 12
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["protocol"]["folds"] == 2 and saved["protocol"]["seeds"] == [0]
    page = (tmp_path / "run" / "report.html").read_text()
    assert all(f"Task {t}" in page for t in ("tempo_bpm", "timbre"))
    assert_every_interval_contains_its_estimate(saved)
    md = (tmp_path / "run" / "report.md").read_text()
    assert "Intervals: 95 % CI = the reported mean ± 1.96 × its bootstrap standard error" in md

    calls = model.calls
    run_suite("fake.ckpt", suite, tmp_path / "run", model=model, random_model=rand, progress=False)
    assert model.calls == calls, "second evaluation of the same checkpoint must reuse cached embeddings"


def assert_every_interval_contains_its_estimate(results):
    rows = 0
    for ds in results["datasets"].values():
        for task, t in ds["tasks"].items():
            for probe, sets in t.get("probes", {}).items():
                for fs, metrics in sets.items():
                    for metric, s in metrics.items():
                        rows += 1
                        assert s["ci_low"] <= s["mean"] <= s["ci_high"], (task, probe, fs, metric, s)
    assert rows > 0


def test_suite_probe_intervals_contain_their_estimates(tmp_path, click_corpus):
    """Every row of the report: 3 seeds x 3 folds, linear and MLP probes, all three feature sets."""
    suite = write_suite(tmp_path / "suite.yaml", click_corpus)
    model, rand = SpectralModel(identity="ckpt-2", crop_s=2.0), SpectralModel(identity="random-1", crop_s=2.0)
    rand.has_tempo_head = False
    overrides = ["seeds=[0,1,2]", "folds=3", "probes.mlp=true", "probes.bootstrap=200", "tempo.librosa=false",
                 "datasets.0.tasks.0.type=multiclass", "datasets.0.tasks.0.column=tempo_class"]
    res = run_suite("fake.ckpt", suite, tmp_path / "run", overrides, model=model, random_model=rand, progress=False)
    assert_every_interval_contains_its_estimate(res)
    assert res["protocol"]["bootstrap"] == 200 and "200 resamples" in res["protocol"]["interval"]


def test_unknown_key_fails_before_any_work(tmp_path, click_corpus):
    suite = write_suite(tmp_path / "s.yaml", click_corpus, probez="{linear: true}")
    model = SpectralModel()
    with pytest.raises(ConfigError, match="probez"):
        run_suite("fake.ckpt", suite, tmp_path / "run", model=model, random_model=model, progress=False)
    assert model.calls == 0 and not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="tempo.windowz"):
        load_suite(write_suite(tmp_path / "t.yaml", click_corpus), ["tempo.windowz=3"])
    with pytest.raises(ConfigError, match="datasets.0.kind"):
        load_suite(write_suite(tmp_path / "t.yaml", click_corpus), ["datasets.0.kind=mp3"])


def test_missing_column_and_small_classes_fail_before_embedding(tmp_path, click_corpus):
    suite = write_suite(tmp_path / "s.yaml", click_corpus)
    model = SpectralModel()
    with pytest.raises(ConfigError, match="'mood'"):
        run_suite("fake.ckpt", suite, tmp_path / "run", ["datasets.0.tasks.1.column=mood"], model=model,
                  random_model=model, progress=False)
    with pytest.raises(ConfigError, match="fewer than folds=7"):
        run_suite("fake.ckpt", suite, tmp_path / "run", ["folds=7"], model=model, random_model=model,
                  progress=False)  # every class has 6 tracks
    assert model.calls == 0 and not (tmp_path / "run").exists()


def test_data_flag_and_path_override(tmp_path, click_corpus):
    suite = write_suite(tmp_path / "s.yaml", "/nowhere/labels.csv")
    assert load_suite(suite, data=[str(click_corpus)]).datasets[0].path == str(click_corpus)
    assert load_suite(suite, data=[f"clicks={click_corpus}"]).datasets[0].path == str(click_corpus)
    assert load_suite(suite, [f"datasets.0.path={click_corpus}", "seeds=[4,5]"]).seeds == [4, 5]
    with pytest.raises(ConfigError, match="no dataset named 'other'"):
        load_suite(suite, data=["other=/x.csv"])


def test_cli_refuses_a_non_checkpoint_before_work(tmp_path, click_corpus, capsys):
    bogus = tmp_path / "model.ckpt"
    bogus.write_bytes(b"not a checkpoint")
    suite = write_suite(tmp_path / "s.yaml", click_corpus)
    rc = main(["evaluate", "--checkpoint", str(bogus), "--suite", str(suite), "--out", str(tmp_path / "o"), "--quiet"])
    assert rc == 2 and "model.ckpt" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    with pytest.raises(SSLMusicError):
        run_suite(bogus, suite, tmp_path / "o", progress=False)


def test_shipped_suites_parse():
    cfg = load_suite(REPO / "configs/eval/synthetic.yaml")
    assert [t.name for t in cfg.datasets[0].tasks] == ["tempo", "tempo_bpm", "key", "timbre", "style"]
    assert list(cfg.locality.attributes) == ["tempo_class", "key", "timbre", "style"]
    kinds = [d.kind for d in load_suite(REPO / "configs/eval/template.yaml").datasets]
    assert kinds == ["folder", "tags", "giantsteps", "salami", "harmonix"]
    seg = load_suite(REPO / "configs/eval/segmentation.yaml")
    assert [d.kind for d in seg.datasets] == ["synthetic", "concat"] and seg.segmentation.windows == [0.5, 3.0]


def test_rare_classes_drop_passes_the_check(tmp_path, click_corpus):
    from ssl_music_eval.suite import check_dataset, load_dataset

    cfg = load_suite(write_suite(tmp_path / "s.yaml", click_corpus), ["folds=7", "rare_classes=drop"])
    ds = load_dataset(cfg.datasets[0])
    check_dataset(cfg, cfg.datasets[0], 0, ds, ["timbre"])
    cfg.rare_classes = "error"
    with pytest.raises(ConfigError, match="rare_classes=drop"):
        check_dataset(cfg, cfg.datasets[0], 0, ds, ["timbre"])


def test_silent_item_is_reported_by_path_and_not_evaluated(tmp_path, click_corpus, capsys, monkeypatch):
    import ssl_music_eval.suite as suite_mod
    from tests.evaluation.fakes import write_silence

    silent = write_silence(tmp_path / "silent.wav", seconds=4.0)
    with open(click_corpus, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["path"] = str(click_corpus.parent / r["path"])
    rows.append({**rows[1], "path": silent, "track_id": "silent"})
    labels = tmp_path / "labels.csv"
    with open(labels, "w", newline="") as fh:
        w = csv.DictWriter(fh, COLUMNS)
        w.writeheader()
        w.writerows(rows)
    suite = write_suite(tmp_path / "suite.yaml", labels)
    model, rand = SpectralModel(identity="ckpt-s", crop_s=2.0), SpectralModel(identity="random-s", crop_s=2.0)
    rand.has_tempo_head = False
    res = run_suite("fake.ckpt", suite, tmp_path / "run", model=model, random_model=rand, progress=False)
    ds = res["datasets"]["clicks"]
    assert ds["n_items"] == 14 and ds["n_embedded"] == 12  # 12 tracks; the missing file and the silent one out
    reasons = dict(ds["skipped"])
    assert set(reasons) == {silent, str(click_corpus.parent / "audio" / "gone.wav")}
    assert "silent (peak -inf dBFS < -80 dBFS)" in reasons[silent]
    assert ds["tasks"]["tempo_bpm"]["n"] == 12 and ds["tasks"]["timbre"]["n"] == 12
    assert len(ds["projection"]["xy"]) == 12
    md = (tmp_path / "run" / "report.md").read_text()
    assert f"- {silent}: silent (peak -inf dBFS < -80 dBFS)" in md

    monkeypatch.setattr(suite_mod, "run_suite", lambda *a, **k: res)  # the CLI's summary of those results
    assert main(["evaluate", "--checkpoint", "x.ckpt", "--suite", str(suite), "--out", str(tmp_path / "run"),
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "clicks: 12/14 files embedded, 2 skipped" in out
    assert f"  skipped {silent}: silent (peak -inf dBFS < -80 dBFS)" in out


def test_csv_task_where_filters_items_and_tempo_locality_uses_the_tolerance(tmp_path, click_corpus):
    """A tempo task on a subset (style=a: the first 6 tracks) beside one on all; with no locality attributes
    listed, the multiclass and tempo columns are used, tempo matched within locality.tolerance."""
    text = f"""
name: test
datasets:
  - name: clicks
    kind: csv
    path: {click_corpus}
    tasks:
      - {{name: tempo_all, column: tempo, type: tempo}}
      - {{name: tempo_a, column: tempo, type: tempo, where: style=a}}
      - {{name: timbre_b, column: timbre, type: multiclass, where: "style = b"}}
seeds: [0]
folds: 2
knn: {{ks: [1]}}
locality: {{k: 2}}
tempo: {{windows: 1, librosa: false}}
"""
    suite = tmp_path / "suite.yaml"
    suite.write_text(text)
    model, rand = SpectralModel(identity="ckpt-w", crop_s=2.0), SpectralModel(identity="random-w", crop_s=2.0)
    rand.has_tempo_head = False
    res = run_suite("fake.ckpt", suite, tmp_path / "run", model=model, random_model=rand, progress=False)
    tasks = res["datasets"]["clicks"]["tasks"]
    assert tasks["tempo_all"]["n"] == 12 and tasks["tempo_a"]["n"] == 6 and tasks["timbre_b"]["n"] == 6
    loc = res["datasets"]["clicks"]["locality"]
    assert set(loc["scores"]["model"]) == {"tempo"} and loc["tolerance"] == {"tempo": 0.04}
    # the 12 tempi are 6 values and the same 6 plus 1 %: each track has exactly one other within 4 %
    assert loc["chance"]["tempo"] == pytest.approx(1 / 11)
    assert res["protocol"]["locality_tolerance"] == 0.04
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("where: style=a", "where: colour=red"))
    with pytest.raises(ConfigError, match="no column 'colour'"):
        run_suite("fake.ckpt", bad, tmp_path / "run2", model=model, random_model=rand, progress=False)
    with pytest.raises(ConfigError, match="COLUMN=VALUE"):
        load_suite(suite, ["datasets.0.tasks.1.where=drums"])
    # a value of another type than the column's selects nothing: refused, naming both, before any embedding
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(text.replace("where: style=a", "where: style=true"))
    with pytest.raises(ConfigError, match=r"'datasets.0.tasks.1.where': 'style=true' matches no item .*column 'style' "
                                          r"holds a, b"):
        run_suite("fake.ckpt", wrong, tmp_path / "run3", model=model, random_model=rand, progress=False)
