import numpy as np
import soundfile as sf

from ssl_music.cli import main
from ssl_music.config import CONFIG_DIR


def test_preview_writes_wavs_and_grid(tmp_path, backend):
    audio = tmp_path / "a.wav"
    t = np.arange(22050 * 4) / 22050
    sf.write(audio, (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), 22050)
    out = tmp_path / "out"
    preset = CONFIG_DIR / "augment" / "stretch_pitch.yaml"
    assert main(["augment", "preview", "--config", str(preset), str(audio), "--out", str(out),
                 "--n", "2", "--backend", backend, "--seed", "1"]) == 0
    wavs = sorted(p.name for p in out.glob("*.wav"))
    assert wavs == ["aug_00.wav", "aug_01.wav", "original.wav"]
    y, sr = sf.read(out / "aug_00.wav")
    assert sr == 16000 and len(y) == 48000
    assert (out / "grid.png").stat().st_size > 1000


def test_preview_reports_bad_config(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("chain:\n  pitch_shift: {p: 2.0}\n")
    assert main(["augment", "preview", "--config", str(bad), "x.wav", "--out", str(tmp_path)]) == 2
    assert "augment.chain.pitch_shift.p" in capsys.readouterr().err


def test_preview_refuses_spectrogram_only_transforms_naming_the_key(tmp_path, capsys):
    audio = tmp_path / "a.wav"
    sf.write(audio, np.zeros(16000 * 4, np.float32), 16000)
    config = CONFIG_DIR / "pretrain" / "byol_a.yaml"   # mixup and random-resize crop: no waveform to play
    assert main(["augment", "preview", "--config", str(config), str(audio), "--out", str(tmp_path / "out")]) == 2
    assert "augment.chain.mixup" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
