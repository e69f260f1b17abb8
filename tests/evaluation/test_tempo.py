import numpy as np
import pytest

from evaluation.tempo import TempoEstimator, acc1, acc2, bpm_grid, librosa_tempo, pick_tempo
from ssl_music.data.synth import click_track
from tests.evaluation.fakes import SpectralModel


def test_acc1_acc2_known_values():
    ref = [100.0, 100.0, 100.0, 100.0, 100.0, 120.0]
    est = [103.9, 104.1, 200.0, 50.0, 310.0, 40.0]
    assert acc1(est, ref) == pytest.approx(1 / 6)
    # 103.9 ok; 104.1 > 4 %; 200 = ×2; 50 = ½; 310 within 4 % of ×3 (300); 40 = ⅓ of 120
    assert acc2(est, ref) == pytest.approx(5 / 6)
    assert acc1(96.0, 100.0) == 1.0 and acc1(95.9, 100.0) == 0.0
    assert acc2(33.0, 100.0) == 1.0 and acc2(150.0, 100.0) == 0.0


def test_grid_is_geometric_and_spans_range():
    g = bpm_grid(60, 200, 0.02)
    assert g[0] == 60 and g[-1] <= 200 and g[-1] * 1.02 > 200
    np.testing.assert_allclose(g[1:] / g[:-1], 1.02)


def test_octave_correction_prefers_typical_range_when_close():
    grid = np.array([50.0, 100.0, 200.0])
    assert pick_tempo(grid, np.array([0.90, 0.85, 0.1]), octave_correction=False) == 50.0
    assert pick_tempo(grid, np.array([0.90, 0.85, 0.1]), octave_correction=True) == 100.0
    assert pick_tempo(grid, np.array([0.90, 0.30, 0.1]), octave_correction=True) == 50.0


def test_head_that_knows_tempo_meets_acc1_on_click_tracks():
    model = SpectralModel(crop_s=3.0)
    est = TempoEstimator(model, lo=60, hi=200, step=0.02, kind="click", n_windows=2)
    refs = [67.0, 92.5, 121.0, 143.0, 175.0]
    # targets: off-grid tempi, longer than one window, beat phase shifted against the references
    estimates = [est.estimate(np.roll(click_track(b, 6.0, 16000, kind="click"), 1234), 16000) for b in refs]
    assert acc1(estimates, refs) == 1.0, estimates


def test_untrained_style_head_fails_acc1():
    """Guard: a head with no tempo knowledge must not pass the same check (the test can fail)."""
    class Blind(SpectralModel):
        def tempo_same_prob(self, a, b):
            return np.full(len(a), 0.5)

    est = TempoEstimator(Blind(crop_s=3.0), n_windows=1)
    refs = [67.0, 92.5, 143.0, 175.0]
    estimates = [est.estimate(click_track(b, 3.0, 16000, kind="click"), 16000) for b in refs]
    assert acc1(estimates, refs) < 0.5


def test_no_tempo_head_is_refused():
    m = SpectralModel()
    m.has_tempo_head = False
    with pytest.raises(Exception, match="tempo head"):
        TempoEstimator(m)


def test_librosa_baseline_on_clicks():
    est = librosa_tempo(click_track(120.0, 8.0, 22050, kind="click"), 22050)
    assert acc2(est, 120.0) == 1.0


def test_tempo_cli_prints_bpm_per_file(tmp_path, capsys):
    import soundfile as sf

    from ssl_music.cli import main
    from tests.evaluation.fakes import tiny_checkpoint

    ckpt = tiny_checkpoint(tmp_path / "tiny.ckpt")
    sf.write(tmp_path / "c.wav", click_track(100.0, 2.0, 16000), 16000)
    rc = main(["tempo", "estimate", "--checkpoint", ckpt, str(tmp_path / "c.wav"), "--windows", "1", "--step", "0.03"])
    assert rc == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    path, bpm = line.split("\t")[:2]
    assert path.endswith("c.wav") and 60.0 <= float(bpm) <= 200.0  # untrained head: any grid tempo
    no_head = tiny_checkpoint(tmp_path / "nohead.ckpt", tempo=False)
    assert main(["tempo", "estimate", "--checkpoint", no_head, str(tmp_path / "c.wav")]) == 2
    assert "tempo head" in capsys.readouterr().err


def test_embedding_path_matches_crop_path_for_a_real_model():
    """TempoEstimator embeds references once; its curve must equal pairing the raw crops."""
    from evaluation.tempo import TempoEstimator, same_prob_curve, target_windows
    from ssl_music.api import EmbeddingModel
    from ssl_music.config import CONFIG_DIR, load_config
    from ssl_music.data.synth import click_track

    cfg = load_config(CONFIG_DIR / "pretrain" / "tempo.yaml",
                      ["model.encoder=tiny", "model.width=8", "model.embed_dim=16", "model.tempo_hidden=8",
                       "data.crop_s=1.0"])
    model = EmbeddingModel.from_config(cfg, seed=0)
    est = TempoEstimator(model, lo=90, hi=130, step=0.04)
    wave = click_track(110.0, 4.0, 16000, kind="click")
    crops = target_windows(wave, 16000, model.sample_rate, model.crop_s, est.n_windows)
    np.testing.assert_allclose(est.curve(wave, 16000), same_prob_curve(model.tempo_same_prob, crops, est.references),
                               rtol=1e-5, atol=1e-6)
