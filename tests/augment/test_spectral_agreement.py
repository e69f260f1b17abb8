"""The spectral backend against the waveform path, preset by preset, on synthetic music with one draw.

Measure: the front-end's log-mel of each view, per view the Pearson correlation between backends and the
mean absolute difference (log10 units of MULE's compression; a view's log-mel has a std of about 1.8).

Measured here (1.5 s crops, 6 tracks x 2 views, seed 0; `python benchmarks/spectral_agreement.py --crop-s 1.5
--tracks 6` prints the same table, its default is 3 s and 16 tracks), median correlation / median difference:

    preset              spectral~gpu    spectral~cpu    gpu~cpu
    time_stretch        0.971 / 0.27    0.982 / 0.16    0.970 / 0.29
    pitch_shift         0.947 / 0.36    0.977 / 0.19    0.956 / 0.33
    stretch_pitch       0.961 / 0.30    0.973 / 0.22    0.955 / 0.30
    mild_stretch_pitch  0.959 / 0.33    0.979 / 0.20    0.954 / 0.32
    clmr                0.925 / 0.35    0.953 / 0.29    0.927 / 0.38
    full                0.967 / 0.26    0.977 / 0.24    0.963 / 0.27

The gap to the gpu backend is below the 0.98 one might hope for, and it is the gpu backend's: its phase
vocoder smears and loses energy (a view of noise loses more than half its power), and it is as far from
audiomentations' Signalsmith (the cpu backend, replayed with the same draws) as from the spectral path,
which is the closest of the two to Signalsmith in every preset. What the spectral path has of its own:
a shift up widens each partial's spectral peak by the shift ratio (the analysis window stays the same), so
a +7 semitone shift blurs low harmonics across mel bands (clmr's +-7 semitones is its lowest figure).
The bounds below leave a margin for other platforms' arithmetic.
"""
import importlib.util
from pathlib import Path

import pytest

from ssl_music.config import CONFIG_DIR
from ssl_music.data.synth import render_track
from tests.augment.helpers import SR

_spec = importlib.util.spec_from_file_location(
    "spectral_agreement", Path(__file__).resolve().parents[2] / "benchmarks" / "spectral_agreement.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

PRESETS = sorted(p.stem for p in (CONFIG_DIR / "augment").glob("*.yaml"))
CROP_S, TRACKS = 1.5, 6
MIN_CORR, MAX_DIFF = 0.90, 0.45                 # spectral against gpu: median over views
CPU_CORR_SLACK, CPU_DIFF_SLACK = 0.01, 0.05     # spectral against cpu, no worse than gpu against cpu by more


@pytest.fixture(scope="module")
def music():
    return [render_track(i, 2 + 2 * CROP_S, seed=0, sample_rate=SR)[0] for i in range(TRACKS)]


@pytest.mark.parametrize("preset", [p for p in PRESETS if p != "none"])
def test_spectral_views_agree_with_the_waveform_path(music, preset):
    spec, wave, audiomentations = bench.log_views(preset, music, CROP_S)
    corr, _, diff = bench.measures(spec, wave)
    assert corr >= MIN_CORR and diff <= MAX_DIFF, (corr, diff)
    (corr_s, _, diff_s), (corr_g, _, diff_g) = bench.measures(spec, audiomentations), bench.measures(wave, audiomentations)
    assert corr_s >= corr_g - CPU_CORR_SLACK and diff_s <= diff_g + CPU_DIFF_SLACK, (corr_s, diff_s, corr_g, diff_g)
