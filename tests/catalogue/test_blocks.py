"""Streaming a file in blocks of crops gives the one-pass windows and embedding, in memory flat in file length."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ssl_music.api import load_encoder
from ssl_music.catalogue.blocks import FileInfo, file_blocks, read_excerpt
from ssl_music.data.audio import load_audio
from ssl_music.errors import AudioError

ROOT = Path(__file__).resolve().parents[2]


def _noise(path, sr, channels, seconds, seed=0):
    x = np.random.default_rng(seed).standard_normal((int(sr * seconds), channels)).astype(np.float32) * 0.1
    sf.write(str(path), x, sr, subtype="FLOAT")
    return path


@pytest.mark.parametrize("sr,channels,seconds", [(16000, 1, 70.3), (44100, 2, 41.7), (22050, 1, 0.4), (8000, 1, 12.0)])
@pytest.mark.parametrize("block_crops", [64, 5])
def test_chunked_equals_one_pass(trained_checkpoint, tmp_path, sr, channels, seconds, block_crops):
    model = load_encoder(trained_checkpoint)
    path = _noise(tmp_path / "a.wav", sr, channels, seconds)
    whole = load_audio(path, model.sample_rate)
    ref_windows = model.windows(whole, model.sample_rate).numpy()
    blocks = list(file_blocks(path, model.sample_rate, model.crop_len, block_crops))
    crops = np.concatenate([b.crops for b in blocks])
    # resampling a block with a margin on both sides lands on the whole-file samples exactly
    np.testing.assert_array_equal(crops, ref_windows)
    assert [b.first for b in blocks] == list(np.cumsum([0] + [len(b.crops) for b in blocks])[:-1])
    emb = np.concatenate([model.encode(torch.from_numpy(b.crops)).numpy() for b in blocks])
    np.testing.assert_allclose(emb.mean(axis=0), model.embed(whole, model.sample_rate), rtol=1e-5, atol=1e-6)


def test_a_time_range_and_an_excerpt_are_the_same_samples(tmp_path):
    path = _noise(tmp_path / "a.wav", 44100, 2, 20.0)
    whole = load_audio(path, 16000)
    got = np.concatenate([b.crops for b in file_blocks(path, 16000, 16000, 3, start_s=4.0, end_s=9.0)])
    np.testing.assert_array_equal(got.reshape(-1), whole[4 * 16000:9 * 16000])
    np.testing.assert_array_equal(read_excerpt(path, 16000, 6.5, 2.0), whole[int(6.5 * 16000):int(8.5 * 16000)])


def test_undecodable_and_missing_files_name_the_file(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....not audio")
    for path in (bad, tmp_path / "missing.flac"):
        with pytest.raises(AudioError, match=str(path)):
            list(file_blocks(path, 16000, 16000))
    info = FileInfo()
    sf.write(str(tmp_path / "quiet.wav"), np.zeros(32000, np.float32), 16000)
    list(file_blocks(tmp_path / "quiet.wav", 16000, 16000, info=info))
    assert info.peak == 0.0 and info.frames == 32000


# VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across exec, so a child would report the
# parent's (pytest's) peak at fork time
_PEAK = """
import json, re, sys
from ssl_music.catalogue.build import build_index
r = build_index(sys.argv[1], sys.argv[2], sys.argv[3], workers=1, block_crops=8)
hwm = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
print(json.dumps({"rss_mb": hwm / 1024, "tracks": r["stats"]["tracks"]}))
"""


def _peak_rss(folder, ckpt, out) -> float:
    res = subprocess.run([sys.executable, "-c", _PEAK, str(folder), str(ckpt), str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["tracks"] == 1
    return got["rss_mb"]


@pytest.mark.slow
def test_a_long_file_embeds_in_the_memory_of_a_short_one(trained_checkpoint, tmp_path):
    """Peak RSS of a whole build process for a 30 s and a 300 s 44.1 kHz stereo file, in blocks of 8 crops so
    that both files span several blocks (at 64 crops of 1 s the short file would be a single, smaller
    encoder batch): a one-pass decode of the long file alone would hold 106 MB of float32 samples, plus
    its mono mix and resampled copy."""
    rss = {}
    for name, seconds in (("short", 30.0), ("long", 300.0)):
        folder = tmp_path / name
        folder.mkdir()
        x = (np.random.default_rng(0).standard_normal((int(44100 * seconds), 2)) * 0.1).astype(np.float32)
        sf.write(str(folder / "a.wav"), x, 44100, subtype="PCM_16")
        del x
        rss[name] = _peak_rss(folder, trained_checkpoint, tmp_path / f"idx-{name}")
    # half the long file's float32 samples: a one-pass decode adds all of them (plus its mono and resampled
    # copies), while a streamed build's peak varies by ~10-45 MB from run to run with how far the decode
    # thread runs ahead and which malloc arena it lands in (seen: 39 and 47 MB on a loaded 2-core machine)
    one_pass_mb = 44100 * 300.0 * 2 * 4 / 2 ** 20
    assert rss["long"] - rss["short"] < one_pass_mb / 2, rss
