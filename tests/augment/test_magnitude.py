"""The two warps of a magnitude spectrogram, on signals with a known period or pitch."""
import numpy as np
import pytest
import torch

from ssl_music.augment.magnitude import magnitude, stretch_frames, stretched_frames, warp_bins
from ssl_music.models.frontends import LogMel
from tests.augment.helpers import SR, click_track

FRONTEND = LogMel(SR)          # n_fft 512 (31.25 Hz bins), hop 160
HOP_S = FRONTEND.hop_length / SR


def _mag(y: np.ndarray) -> torch.Tensor:
    """[1, T, F] magnitudes."""
    mag = magnitude(FRONTEND.stft(torch.from_numpy(y)[None]))
    torch.testing.assert_close(mag, FRONTEND.stft(torch.from_numpy(y)[None]).abs().transpose(1, 2))
    return mag


def _period_frames(mag: torch.Tensor, lo: float, hi: float) -> float:
    """The frame-energy autocorrelation peak between lo and hi frames, refined by a parabola."""
    env = mag[0].square().sum(1).numpy()
    env = env - env.mean()
    ac = np.correlate(env, env, "full")[len(env) - 1:]
    k = int(lo) + int(np.argmax(ac[int(lo):int(hi) + 1]))
    a, b, c = ac[k - 1:k + 2]
    return k + 0.5 * (a - c) / (a - 2 * b + c)


@pytest.mark.parametrize("rate", [0.8, 1.25])
def test_a_stretch_by_r_divides_the_frame_count_and_a_click_period_by_r(rate):
    interval = 0.25                                   # 25 frames
    mag = _mag(click_track(4.0, interval))
    n_src = mag.shape[1]
    out = stretch_frames(mag, torch.tensor([rate]))   # no crop: every frame the source allows
    assert out.shape[1] == stretched_frames(n_src, rate) == int((n_src - 1) / rate) + 1
    assert abs(out.shape[1] - n_src / rate) <= 1
    period = interval / HOP_S
    measured = _period_frames(out, 0.6 * period / rate, 1.4 * period / rate)
    assert abs(measured - period / rate) / (period / rate) < 0.02
    assert abs(_period_frames(mag, 0.6 * period, 1.4 * period) - period) / period < 0.02


@pytest.mark.parametrize("semitones,factor", [(12.0, 2.0), (-12.0, 0.5)])
def test_an_octave_shift_moves_a_sines_peak_bin_by_an_octave(semitones, factor):
    t = np.arange(SR) / SR
    mag = _mag((0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32))   # bin 32
    out = warp_bins(mag, torch.tensor([2 ** (semitones / 12)]))
    peak = lambda m: int(m[0, 10:-10].mean(0).argmax())  # noqa: E731
    assert peak(mag) == 32 and peak(out) == round(32 * factor)
    # the sine keeps its power: the warp spreads it over `factor` times as many bins at 1/factor the level
    power = lambda m: float(m[0, 10:-10].square().sum())  # noqa: E731
    assert power(out) == pytest.approx(power(mag), rel=0.1)


def test_unit_rate_and_ratio_are_exact_identities():
    mag = torch.rand(3, 40, 257)
    assert torch.equal(stretch_frames(mag, torch.ones(3), 40), mag)
    assert torch.equal(warp_bins(mag, torch.ones(3)), mag)


def test_rows_take_their_own_rate_and_ratio():
    mag = torch.rand(1, 60, 257).expand(2, -1, -1).contiguous()
    out = stretch_frames(mag, torch.tensor([1.0, 2.0]), 20)
    assert torch.equal(out[0], mag[0, :20]) and torch.allclose(out[1], mag[1, 0:40:2])
    warped = warp_bins(mag, torch.tensor([1.0, 0.5]))
    assert torch.equal(warped[0], mag[0])
    assert torch.allclose(warped[1, :, :129], mag[1, :, 0::2] * 2 ** 0.5) and (warped[1, :, 129:] == 0).all()
