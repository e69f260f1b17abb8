"""A self-attention model through the API, export, HEAR and `ssl-music attention`."""
import numpy as np
import pytest
import soundfile as sf
import torch

import ssl_music
import ssl_music.hear as hear
from ssl_music.errors import SSLMusicError
from tests.evaluation.fakes import tiny_checkpoint

SR = 16000
ATTENTION = ["model.backend=attention", "model.backend_dim=16", "model.backend_heads=2", "data.crop_s=2.0"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("att") / "m.ckpt", overrides=ATTENTION)


def _wave(seconds, seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal(int(SR * seconds))).astype(np.float32)


def test_attention_covers_the_window_and_sums_to_one(ckpt):
    model = ssl_music.load_encoder(ckpt)
    times, weights = model.attention(_wave(5.0), SR, start_s=1.0)
    assert 1.0 < times[0] < times[-1] < 3.0 and np.all(np.diff(times) > 0)
    assert weights.shape == times.shape and np.all(weights >= 0)
    assert weights.sum() == pytest.approx(1.0, abs=1e-5)


def test_a_clip_shorter_than_the_window_gets_attention_only_where_it_has_audio(ckpt):
    model = ssl_music.load_encoder(ckpt)
    times, weights = model.attention(_wave(0.8), SR)
    half = (times[1] - times[0]) / 2
    assert times[-1] - half < 0.8 <= times[-1] + half, "the last frame kept is the one the clip ends in"
    assert weights.sum() == pytest.approx(1.0, abs=1e-5)


def test_a_pooling_model_says_it_has_no_attention(tmp_path):
    model = ssl_music.load_encoder(tiny_checkpoint(tmp_path / "pool.ckpt"))
    with pytest.raises(SSLMusicError, match="model.backend=attention"):
        model.attention(_wave(2.0), SR)


def test_export_and_hear_round_trip(ckpt, tmp_path):
    out = ssl_music.api.export_encoder(ckpt, tmp_path / "export")
    a, b = ssl_music.load_encoder(ckpt), ssl_music.load_encoder(out)
    np.testing.assert_array_equal(a.embed(_wave(4.5), SR), b.embed(_wave(4.5), SR))
    model = hear.load_model(str(out))
    audio = torch.from_numpy(np.stack([_wave(3.0, 1), _wave(3.0, 2)]))
    emb, ts = hear.get_timestamp_embeddings(audio, model)
    assert emb.shape[:2] == ts.shape and emb.shape[-1] == model.timestamp_embedding_size
    assert torch.isfinite(emb).all()
    assert hear.get_scene_embeddings(audio, model).shape == (2, model.scene_embedding_size)


def test_cli_draws_the_figure_and_writes_the_weights(ckpt, tmp_path, capsys):
    from ssl_music.cli import main as cli

    sf.write(str(tmp_path / "a.wav"), _wave(3.0), SR)
    png = tmp_path / "fig" / "a.png"
    assert cli(["attention", str(tmp_path / "a.wav"), "--checkpoint", ckpt, "--out", str(png), "--mark", "1.0"]) == 0
    assert png.stat().st_size > 5000
    rows = np.loadtxt(png.with_suffix(".csv"), delimiter=",", skiprows=1)
    assert rows.shape[1] == 2 and rows[:, 1].sum() == pytest.approx(1.0, abs=1e-4)
    assert "most attended" in capsys.readouterr().out
