import numpy as np
import pytest
import torch

from ssl_music.data.synth import click_track
from ssl_music.models.frontends import LogMel
from ssl_music.models.pooling import PeriodicityPool, autocorrelation

SR = 16000
HOP_MS = 20.0


def _click_acf(bpm: float, pool: PeriodicityPool) -> torch.Tensor:
    wave = torch.tensor(np.asarray(click_track(bpm, 3.0, SR, kind="click")), dtype=torch.float32)[None]
    return pool.log_lag_acf(LogMel(SR, n_mels=64, hop_ms=HOP_MS)(wave))[0]


@pytest.mark.parametrize("bpm", [70.0, 97.0, 120.0, 150.0])
def test_click_track_autocorrelation_peaks_at_the_beat_period(bpm):
    pool = PeriodicityPool(1000.0 / HOP_MS)
    acf = _click_acf(bpm, pool)
    lag_s = float(pool.lags[acf.argmax()]) * HOP_MS / 1000
    assert lag_s == pytest.approx(60.0 / bpm, rel=0.03)


def test_a_tempo_ratio_becomes_a_shift_on_the_log_lag_axis():
    pool = PeriodicityPool(1000.0 / HOP_MS, step=0.02)
    a, b = _click_acf(100.0, pool), _click_acf(100.0 * 1.02 ** 10, pool)  # 10 bins faster -> 10 bins shorter lag
    one_beat = pool.lags * HOP_MS / 1000 < 0.75  # both beat periods, none of their multiples
    assert int(a[one_beat].argmax()) - int(b[one_beat].argmax()) in (9, 10, 11)


def test_autocorrelation_is_one_at_lag_zero_and_bounded():
    ac = autocorrelation(torch.randn(3, 150))
    assert torch.allclose(ac[:, 0], torch.ones(3))
    assert ac.shape == (3, 150) and torch.isfinite(ac).all()


def test_lags_longer_than_the_crop_read_zero_and_output_has_out_dim():
    pool = PeriodicityPool(1000.0 / HOP_MS, out_dim=12).eval()
    x = torch.randn(2, 1, 64, 20)  # 0.4 s: most lags are out of reach
    acf = pool.log_lag_acf(x)
    assert torch.all(acf[:, pool.lags >= 19] == 0)
    assert pool(x).shape == (2, 12)


@pytest.mark.parametrize("encoder", ["tiny", "short_chunk_resnet"])
def test_periodicity_encoders_embed_and_backprop(encoder):
    from omegaconf import OmegaConf

    from ssl_music.config import ModelConfig
    from ssl_music.models import build_encoder

    cfg = OmegaConf.structured(ModelConfig(encoder=encoder, width=8, embed_dim=16, periodicity=True))
    model = build_encoder(cfg, SR)
    out = model(torch.randn(2, 3 * SR))
    assert out.shape == (2, 16)
    out.pow(2).sum().backward()
    assert model.encoder.periodicity.proj[0].weight.grad.abs().sum() > 0


def test_periodicity_on_an_encoder_without_it_is_a_config_error():
    from omegaconf import OmegaConf

    from ssl_music.config import ConfigError, ModelConfig
    from ssl_music.models import validate_model

    with pytest.raises(ConfigError, match="model.periodicity"):
        validate_model(OmegaConf.structured(ModelConfig(encoder="samplecnn", frontend="raw", periodicity=True)))
