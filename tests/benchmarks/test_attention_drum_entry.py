"""benchmarks/attention_drum_entry.py: the drum-entry clips it builds and the attention shares it reports."""
import numpy as np
import pytest
import soundfile as sf

from tests.benchmarks import load_benchmark
from tests.evaluation.fakes import tiny_checkpoint

SR = 16000


def _bench():
    return load_benchmark("attention_drum_entry")


def _tone(seconds=8.0):
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)


def test_drums_come_in_at_the_entry_and_not_before():
    x = _tone()
    y = _bench().drum_entry(x, SR, 120.0, entry_s=4.0)
    before, after = slice(0, 4 * SR), slice(4 * SR, None)
    np.testing.assert_allclose(y[before], x[before], atol=1e-6)   # no renormalisation: the peak stays below 1
    assert np.abs(y[after] - x[after]).max() > 0.05 and np.abs(y).max() <= 1.0


def test_shares_against_uniform_by_hand():
    times = np.arange(10) + 0.5                      # frames at 0.5 .. 9.5 s
    weights = np.r_[np.full(5, 0.02), np.full(5, 0.18)]
    s = _bench().shares(times, weights, entry_s=5.0, near_s=1.0)
    assert s["near"] == pytest.approx(0.02 + 0.18) and s["near_uniform"] == pytest.approx(0.2)
    assert s["after"] == pytest.approx(0.9) and s["after_uniform"] == pytest.approx(0.5)


def test_end_to_end_on_a_tiny_attention_model(tmp_path, capsys):
    ckpt = tiny_checkpoint(tmp_path / "m.ckpt", overrides=["model.backend=attention", "model.backend_dim=16",
                                                            "model.backend_heads=2", "data.crop_s=2.0"])
    (tmp_path / "dev" / "audio").mkdir(parents=True)
    rows = ["path,instrument,tempo,drums"]
    for i in range(3):
        sf.write(tmp_path / "dev" / "audio" / f"{i}.wav", _tone(), SR)
        rows.append(f"audio/{i}.wav,piano,{100 + 10 * i},{'true' if i == 1 else 'false'}")
    (tmp_path / "dev" / "labels.csv").write_text("\n".join(rows) + "\n")
    assert _bench().main(["--checkpoint", ckpt, "--devset", str(tmp_path / "dev"), "--entry", "4", "--figures", "1",
                          "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "audio/0.wav" in out and "audio/2.wav" in out and "audio/1.wav" not in out   # clips without drums
    assert "attention near the entry minus uniform" in out
    assert len(list((tmp_path / "out").glob("*.png"))) == 1
