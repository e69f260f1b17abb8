"""benchmarks/near_duplicates.py on a small synthetic index: copies are what they say, the control finds itself."""
from pathlib import Path

import numpy as np
import pytest

from tests.benchmarks import load_benchmark


def test_an_ogg_copy_is_gained_resampled_and_decodable():
    bench = load_benchmark("near_duplicates")
    t = np.arange(16000 * 3) / 16000
    x = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for db in (-6.0, 3.0):
        y = bench.ogg_copy(x, 16000, db, 22050)
        assert abs(len(y) - 3 * 22050) < 2048
        core = slice(4096, len(y) - 4096)   # away from the codec's edges
        ratio = np.sqrt(np.mean(y[core] ** 2) / np.mean(x[4096:-4096] ** 2))
        assert ratio == pytest.approx(10 ** (db / 20), rel=0.05)


def test_the_benchmark_runs_on_a_small_index_and_its_control_finds_its_own_track(tiny_corpus, tmp_path, capsys):
    from ssl_music.catalogue.build import build_index
    from tests.evaluation.fakes import tiny_checkpoint

    ckpt = tiny_checkpoint(tmp_path / "m.ckpt")                     # 16 kHz, 1 s crops
    audio = Path(tiny_corpus).parent / "audio"
    build_index(audio, ckpt, tmp_path / "idx")
    bench = load_benchmark("near_duplicates")
    # one-crop excerpts on the crop grid: the control is the very crop the index holds
    r = bench.run(str(tmp_path / "idx"), tracks=3, excerpt_s=1.0, rate=22050, seed=1)
    assert r["tracks"] == 3 and r["counts"]["control"] == (3, 3)
    assert set(r["top1"]) == {"control", "ogg -6 dB @22050", "ogg -3 dB @22050", "ogg +3 dB @22050"}
    assert r["gain_closer_counts"][1] == 6 and 0 <= r["gain_closer"] <= 1
    lo, mid, hi = r["spread"]
    assert -1 <= lo <= mid <= hi <= 1
    assert bench.main([str(tmp_path / "idx"), "--tracks", "2", "--excerpt-s", "2"]) == 0
    out = capsys.readouterr().out
    assert "top-1 own recording, control" in out and "±6 dB copies closer" in out
