"""Degradations for robustness evaluation: target SNRs, seeded and identical, each kind doing what it says."""
import numpy as np
import pytest

from ssl_music_eval.degrade import DEGRADATIONS, degrade, parse, snr_db
from ssl_music.errors import ConfigError

SR = 16000


def _music(seconds=2.0, seed=0):
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(seed)
    x = sum(0.2 * np.sin(2 * np.pi * f * t) for f in (220.0, 330.0, 440.0, 1760.0))
    return (x * (1 + 0.5 * np.sin(2 * np.pi * 2 * t)) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.mark.parametrize("kind", ["white", "pink"])
@pytest.mark.parametrize("snr", [20.0, 10.0, 0.0])
def test_noise_hits_its_snr_within_half_a_db(kind, snr):
    x = _music()
    y = degrade(x, SR, f"{kind}@{snr}", seed=0, item="a.wav")
    assert abs(snr_db(x, y) - snr) < 0.5
    assert y.dtype == x.dtype and y.shape == x.shape


def test_pink_noise_has_more_power_low_than_high():
    x = np.zeros(4 * SR, np.float32)
    x[0] = 1.0                                    # a click, so the clip has power
    noise = degrade(x, SR, "pink@0", seed=1) - x
    spec = np.abs(np.fft.rfft(noise)) ** 2
    f = np.fft.rfftfreq(noise.size, 1 / SR)
    low, high = spec[(f > 50) & (f < 200)].mean(), spec[(f > 3200) & (f < 6400)].mean()
    assert 10 * np.log10(low / high) > 10         # 1/f: ~15 dB over a factor of 16 in frequency


@pytest.mark.parametrize("spec", ["white@10", "pink@0", "mp3@0.9", "reverb@0.8", "lowpass@3000"])
def test_same_seed_same_copy_other_seed_or_item_another(spec):
    x = _music()
    a = degrade(x, SR, spec, seed=3, item="a.wav")
    assert np.array_equal(a, degrade(x, SR, spec, seed=3, item="a.wav"))
    assert np.isfinite(a).all() and a.shape == x.shape and not np.array_equal(a, x)
    if spec.split("@")[0] in ("white", "pink", "reverb"):   # random ones: another seed or clip, other noise
        assert not np.array_equal(a, degrade(x, SR, spec, seed=4, item="a.wav"))
        assert not np.array_equal(a, degrade(x, SR, spec, seed=3, item="b.wav"))


def test_lowpass_removes_what_is_above_the_cutoff():
    x = _music()
    y = degrade(x, SR, "lowpass@1000", seed=0)
    spec_x, spec_y = np.abs(np.fft.rfft(x)), np.abs(np.fft.rfft(y))
    f = np.fft.rfftfreq(x.size, 1 / SR)
    band = (f > 1700) & (f < 1820)                # the 1760 Hz partial
    assert spec_y[band].max() < 0.01 * spec_x[band].max()
    keep = (f > 200) & (f < 240)                  # the 220 Hz partial
    assert spec_y[keep].max() == pytest.approx(spec_x[keep].max(), rel=0.05)


def test_reverb_keeps_power_and_smears_in_time():
    x = np.zeros(SR, np.float32)
    x[100] = 1.0
    y = degrade(x, SR, "reverb@0.5", seed=0)
    assert np.mean(y.astype(np.float64) ** 2) == pytest.approx(np.mean(x.astype(np.float64) ** 2), rel=1e-3)
    assert np.abs(y[100 + SR // 4:]).max() > 0    # energy a quarter second after the click


def test_mp3_keeps_length_and_most_of_the_signal():
    x = _music()
    y = degrade(x, SR, "mp3@0.9", seed=0)
    assert y.shape == x.shape and np.corrcoef(x[2000:-2000], y[2000:-2000])[0, 1] > 0.9


def test_specs_parse_and_bad_ones_name_the_key():
    assert parse("pink@10") == ("pink", 10.0) and parse("mp3") == ("mp3", DEGRADATIONS["mp3"].default)
    with pytest.raises(ConfigError, match="robustness.degradations.*unknown degradation 'hiss'"):
        parse("hiss@3")
    with pytest.raises(ConfigError, match="level of 'white@loud' must be a number"):
        parse("white@loud")
