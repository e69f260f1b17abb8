import numpy as np
import pytest

from ssl_music_eval.tempo import TempoEstimator, acc1, acc2, bpm_grid, librosa_tempo, pick_tempo
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
    from ssl_music_eval.tempo import TempoEstimator, same_prob_curve, target_windows
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


def test_tempo_cli_says_a_silent_file_is_silent_and_keeps_going(tmp_path, capsys):
    import soundfile as sf

    from ssl_music.cli import main
    from tests.evaluation.fakes import tiny_checkpoint, write_silence

    ckpt = tiny_checkpoint(tmp_path / "tiny.ckpt")
    silent = write_silence(tmp_path / "silent.wav", seconds=10.0)
    clicks = str(tmp_path / "c.wav")
    sf.write(clicks, click_track(100.0, 2.0, 16000), 16000)
    empty = str(tmp_path / "empty.wav")
    sf.write(empty, np.zeros(0, dtype=np.float32), 16000)
    args = ["tempo", "estimate", "--checkpoint", ckpt, "--windows", "1", "--step", "0.03"]
    assert main(args + [silent, clicks, empty]) == 0  # one file estimated
    lines = dict(line.split("\t", 1) for line in capsys.readouterr().out.strip().splitlines())
    assert lines[silent] == "skipped: silent (peak -inf dBFS < -80 dBFS)"  # no BPM for silence
    assert 60.0 <= float(lines[clicks].split("\t")[0]) <= 200.0
    assert lines[empty].startswith("skipped: ")
    assert main(args + [silent]) == 1  # nothing could be estimated
    assert capsys.readouterr().out.strip() == f"{silent}\tskipped: silent (peak -inf dBFS < -80 dBFS)"


def test_evaluate_tempo_skips_silent_files(tmp_path):
    import soundfile as sf

    from ssl_music_eval.tempo import evaluate_tempo
    from tests.evaluation.fakes import write_silence

    silent = write_silence(tmp_path / "silent.wav", seconds=6.0)
    clicks = str(tmp_path / "c.wav")
    sf.write(clicks, click_track(92.5, 6.0, 16000, kind="click"), 16000)
    est = TempoEstimator(SpectralModel(crop_s=3.0), n_windows=1)
    res = evaluate_tempo(est, [silent, clicks], [92.5, 92.5], with_librosa=False)
    assert res["n"] == 1 and res["paths"] == [clicks] and res["model"]["acc1"] == 1.0
    assert [p for p, _ in res["skipped"]] == [silent] and "silent" in res["skipped"][0][1]


def test_grouped_estimates_equal_one_file_at_a_time(tmp_path):
    """evaluate_tempo scores files a group per encoder call; clips of different lengths (one shorter than a
    crop, so fewer windows) must get the estimates they get one by one, in file order."""
    import soundfile as sf

    from ssl_music_eval.tempo import evaluate_tempo
    from ssl_music.api import EmbeddingModel
    from ssl_music.config import CONFIG_DIR, load_config

    cfg = load_config(CONFIG_DIR / "pretrain" / "tempo.yaml",
                      ["model.encoder=tiny", "model.width=8", "model.embed_dim=16", "model.tempo_hidden=8",
                       "data.crop_s=1.0"])
    est = TempoEstimator(EmbeddingModel.from_config(cfg, seed=0), lo=80, hi=160, step=0.04)
    bpms, paths = [84.0, 97.0, 121.0, 150.0, 133.0], []
    for i, (b, secs) in enumerate(zip(bpms, [4.0, 0.7, 3.0, 5.0, 2.5])):
        paths.append(str(tmp_path / f"{i}.wav"))
        sf.write(paths[-1], click_track(b, secs, 16000, kind="click"), 16000)
    waves = [sf.read(p, dtype="float32")[0] for p in paths]
    one_by_one = [est.estimate(w, 16000) for w in waves]
    assert est.estimates(waves, 16000) == one_by_one
    for group in (1, 2, 16):
        res = evaluate_tempo(est, paths, bpms, with_librosa=False, group=group)
        assert res["model"]["estimates"] == one_by_one, group
