"""Where the model listens, in an evaluation report: recorded per dataset for a self-attention model, drawn from
the record alone, absent for a pooling model."""
import json

import numpy as np
import pytest

import ssl_music
from ssl_music_eval.attention import attention_figure, listen_clips
from ssl_music_eval.suite import load_suite, run_suite
from ssl_music.errors import ConfigError
from tests.evaluation.fakes import SpectralModel, tiny_checkpoint
from tests.evaluation.test_suite import click_corpus  # noqa: F401 (fixture)

ATTENTION = ["model.backend=attention", "model.backend_dim=16", "model.backend_heads=2", "data.crop_s=2.0"]


def _suite(tmp_path, labels_csv, attention=""):
    text = f"""
name: listen
datasets:
  - name: clicks
    kind: synthetic
    path: {labels_csv}
    tasks:
      - {{name: timbre, column: timbre, type: multiclass}}
seeds: [0]
folds: 2
knn: {{ks: [1]}}
locality: {{k: 3, attributes: [timbre]}}
baselines: {{random_init: false, mfcc_chroma: false}}
"""
    path = tmp_path / "suite.yaml"
    path.write_text(text + (f"attention: {attention}\n" if attention else ""))
    return path


@pytest.fixture(scope="module")
def attention_model(tmp_path_factory):
    return ssl_music.load_encoder(tiny_checkpoint(tmp_path_factory.mktemp("att") / "m.ckpt", overrides=ATTENTION))


def test_the_report_draws_where_an_attention_model_listens(tmp_path, click_corpus, attention_model):  # noqa: F811
    suite = _suite(tmp_path, click_corpus, "{clips: 2, start_s: 0.5}")
    res = run_suite("m.ckpt", suite, tmp_path / "run", model=attention_model, progress=False)
    clips = res["datasets"]["clicks"]["attention"]
    assert [c["path"].rsplit("/", 1)[1] for c in clips] == ["t00.wav", "t01.wav"]
    for c in clips:
        assert sum(c["weights"]) == pytest.approx(1.0, abs=1e-4) and len(c["weights"]) == len(c["times"])
        assert 0.5 < c["times"][0] < c["times"][-1] < 2.5, "the window starts at start_s and is one crop long"
        assert np.asarray(c["mel_db"]).shape[0] == 64 and np.max(c["mel_db"]) == 0.0
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["datasets"]["clicks"]["attention"] == clips
    md = (tmp_path / "run" / "report.md").read_text()
    assert "Where the model listens" in md and "attention over t00.wav" in md


def test_clips_chosen_by_path(tmp_path, click_corpus, attention_model):  # noqa: F811
    cfg = load_suite(_suite(tmp_path, click_corpus, "{paths: [audio/t05.wav]}"))
    from ssl_music_eval.suite_schema import DATASET_LOADERS

    items = DATASET_LOADERS["synthetic"](cfg.datasets[0]).items
    clips = listen_clips(attention_model, items, cfg.attention)
    assert [c["path"].rsplit("/", 1)[1] for c in clips] == ["t05.wav"]


def test_a_pooling_model_records_nothing(tmp_path, click_corpus):  # noqa: F811
    suite = _suite(tmp_path, click_corpus)
    res = run_suite("fake.ckpt", suite, tmp_path / "run", model=SpectralModel(crop_s=2.0), progress=False)
    assert "attention" not in res["datasets"]["clicks"]
    assert "Where the model listens" not in (tmp_path / "run" / "report.md").read_text()


def test_a_negative_item_count_names_its_key(tmp_path, click_corpus):  # noqa: F811
    with pytest.raises(ConfigError, match="attention.clips"):
        load_suite(_suite(tmp_path, click_corpus, "{clips: -1}"))


def test_the_figure_marks_the_change():
    times = np.linspace(0.05, 2.95, 30)
    weights = np.r_[np.full(15, 0.01), np.full(15, 0.99 / 15)]
    fig = attention_figure(np.zeros((64, 100)), 0.0, 3.0, times, weights, marks=(1.5,))
    top, bottom = fig.axes
    assert any(line.get_xdata()[0] == 1.5 for line in bottom.get_lines())
    import matplotlib.pyplot as plt

    plt.close(fig)
