"""Time-stretch and pitch shift measured on signals with a known pitch / tempo, on both backends."""
import numpy as np
import pytest

from tests.augment.helpers import SR, click_track, inter_onset_interval, make_augmenter, measured_f0, run


@pytest.mark.parametrize("semitones", [-5.0, -2.0, 3.0, 7.0])
def test_pitch_shift_hits_target_pitch(backend, semitones):
    aug = make_augmenter({"pitch_shift": {"params": {"min_semitones": semitones, "max_semitones": semitones}}},
                         backend)
    t = np.arange(aug.source_len("contrastive")) / SR
    sine = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    out, _ = run(aug, sine[None, None], backend)
    y = out[0, 0, 2000:-2000]
    target = 440.0 * 2 ** (semitones / 12)
    assert abs(measured_f0(y) - target) / target < 0.01
    assert np.sqrt(np.mean(y ** 2)) > 0.1  # not silenced on the way


@pytest.mark.parametrize("rate", [0.8, 1.25])
def test_time_stretch_scales_inter_onset_interval(backend, rate):
    aug = make_augmenter({"time_stretch": {"params": {"min_rate": rate, "max_rate": rate}}}, backend, crop_s=3.0)
    interval = 0.25
    src = click_track(aug.source_len("contrastive") / SR, interval)
    out, _ = run(aug, src[None, None], backend)
    ioi = inter_onset_interval(out[0, 0], 0.6 * interval / rate, 1.4 * interval / rate)
    assert abs(ioi - interval / rate) / (interval / rate) < 0.02


def test_stretch_then_pitch_keeps_both(backend):
    aug = make_augmenter({"time_stretch": {"params": {"min_rate": 1.2, "max_rate": 1.2}},
                          "pitch_shift": {"params": {"min_semitones": -3.0, "max_semitones": -3.0}}}, backend)
    t = np.arange(aug.source_len("contrastive")) / SR
    sine = (0.5 * np.sin(2 * np.pi * 523.25 * t)).astype(np.float32)
    out, _ = run(aug, sine[None, None], backend)
    target = 523.25 * 2 ** (-3 / 12)
    assert abs(measured_f0(out[0, 0, 2000:-2000]) - target) / target < 0.01
