"""index build: resumable after a real SIGKILL, bad files named and skipped, parts merged into the same index."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ssl_music.catalogue.build import build_index
from ssl_music.catalogue.store import CatalogueError, committed_batches, index_digest, merge_index, open_index, part_dir
from ssl_music.cli import main as cli

ROOT = Path(__file__).resolve().parents[2]


def test_an_index_holds_tracks_and_their_crops(built_index, corpus_audio, trained_checkpoint):
    from ssl_music.api import load_encoder
    from ssl_music.data.audio import load_audio

    cat = open_index(built_index)
    n = len(list(corpus_audio.glob("*.flac")))
    assert cat.tracks.num_rows == n and cat.crops.num_rows == n * 20   # 20 s tracks, 1 s crops
    assert cat.meta["identity"] == load_encoder(trained_checkpoint).identity
    ids = cat.tracks.column("track_id").to_pylist()
    assert ids == sorted(ids)
    # a track's vector is the mean of its crops', and equals the one-pass embedding of its file
    row = 3
    crops = np.flatnonzero(np.asarray(cat.crops.column("track")) == row)
    assert np.asarray(cat.crops.column("start_s"))[crops].tolist() == [float(s) for s in range(20)]
    np.testing.assert_allclose(cat.crop_vectors[crops].mean(axis=0), cat.track_vectors[row], rtol=1e-6, atol=1e-7)
    model = load_encoder(trained_checkpoint)
    path = cat.tracks.column("path")[row].as_py()
    one_pass = model.embed(load_audio(path, 16000), 16000)
    np.testing.assert_allclose(cat.track_vectors[row], one_pass, rtol=1e-5, atol=1e-6)


def _corpus_copy(corpus_audio, dest: Path, n: int | None = None) -> Path:
    dest.mkdir(parents=True)
    for f in sorted(corpus_audio.glob("*.flac"))[:n]:
        shutil.copy(f, dest / f.name)
    return dest


def test_bad_files_are_named_skipped_and_listed(trained_checkpoint, corpus_audio, tmp_path, capsys):
    folder = _corpus_copy(corpus_audio, tmp_path / "audio", 3)
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really")
    import soundfile as sf

    sf.write(str(folder / "quiet.wav"), np.zeros(32000, np.float32), 16000)
    assert cli(["index", "build", str(folder), "--checkpoint", str(trained_checkpoint), "--out", str(tmp_path / "i"),
                "--quiet"]) == 0
    out = capsys.readouterr().out
    meta = open_index(tmp_path / "i").meta
    assert meta["tracks"] == 3
    reasons = {s["track_id"]: s["reason"] for s in meta["skipped"]}
    assert set(reasons) == {"broken", "quiet"}
    assert str(folder / "broken.wav") in reasons["broken"] and "silent" in reasons["quiet"]
    assert f"skipped {reasons['broken']}" in out
    # a re-run settles nothing again: skipped files are done too
    r = build_index(folder, trained_checkpoint, tmp_path / "i")
    assert r["stats"]["tracks"] == 0 and r["stats"]["resumed_from"] == 5


def test_parts_merge_into_the_single_build(built_index, trained_checkpoint, corpus_audio, tmp_path):
    out = tmp_path / "parts"
    for i in range(3):
        r = build_index(corpus_audio, trained_checkpoint, out, part=i, parts=3, batch_files=2)
        assert "index" not in r
        if i == 1:
            with pytest.raises(CatalogueError, match=r"parts \[2\] of 3 not started"):
                merge_index(out)
    with pytest.raises(CatalogueError, match="not merged; run `ssl-music index merge"):
        open_index(out)
    assert cli(["index", "merge", str(out)]) == 0
    assert_same_index(out, built_index)


def assert_same_index(a, b) -> None:
    """The same rows, vectors equal to float tolerance: crops packed into other encoder batches (another
    split into parts) change the last bits only."""
    x, y = open_index(a), open_index(b)
    assert x.tracks.drop(["path"]).equals(y.tracks.drop(["path"])) or x.tracks.equals(y.tracks)
    assert x.crops.equals(y.crops)
    np.testing.assert_allclose(x.track_vectors, y.track_vectors, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.crop_vectors, y.crop_vectors, rtol=1e-5, atol=1e-6)


def test_a_part_refuses_another_checkpoint(built_index, corpus_audio, tmp_path):
    from tests.evaluation.fakes import tiny_checkpoint

    other = tiny_checkpoint(tmp_path / "other.ckpt")
    with pytest.raises(CatalogueError, match=r"part.json: this part was built with identity="):
        build_index(corpus_audio, other, built_index)


def test_shards_are_an_input_too(trained_checkpoint, corpus_audio, built_index, tmp_path):
    from ssl_music.data.shards import build_shards

    # 8 s segments: every 20 s track is 3 segments (8 + 8 + 4 s), its crops restarting at each
    build_shards(corpus_audio, tmp_path / "shards", sample_rate=16000, segment_seconds=8, shard_size_mb=1, workers=1,
                 progress=False)
    build_index(tmp_path / "shards", trained_checkpoint, tmp_path / "s")
    cat, ref = open_index(tmp_path / "s"), open_index(built_index)
    assert cat.tracks.column("track_id").equals(ref.tracks.column("track_id"))
    assert cat.crops.column("start_s").equals(ref.crops.column("start_s"))
    assert cat.tracks.column("duration_s").to_pylist() == ref.tracks.column("duration_s").to_pylist()
    sources = cat.crops.column("source").to_pylist()[:20]
    assert all("#" in s for s in sources) and len(set(sources)) == 3
    assert cat.crops.column("source_start_s").to_pylist()[:20] == [float(s) for s in [*range(8), *range(8), *range(4)]]
    # the shards hold the same 16 kHz audio (as FLAC): the same embeddings up to FLAC's 16-bit rounding
    np.testing.assert_allclose(cat.track_vectors, ref.track_vectors, atol=2e-2)


def _batches(out: Path) -> int:
    return len(committed_batches(part_dir(out, 0, 1)))


@pytest.mark.slow
def test_a_killed_build_resumes_to_the_same_index(trained_checkpoint, corpus_audio, tmp_path):
    """A real subprocess, SIGKILLed once it has committed a batch and before it finishes; the re-run embeds only
    the rest and the result is byte-identical (hash of sorted rows) to an uninterrupted build."""
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "ssl_music.cli", "index", "build", str(corpus_audio), "--checkpoint",
           str(trained_checkpoint), "--out", str(out), "--batch-files", "2", "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _batches(out) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the build finished before it could be killed: " + proc.stderr.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = _batches(out)
    assert 1 <= done < 6 and not (out / "index.json").exists()
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"embedded {12 - 2 * done} tracks" in res.stdout and f"{2 * done} already done" in res.stdout, res.stdout
    batches = committed_batches(part_dir(out, 0, 1))
    items = [t for b in batches for t in json.loads((b / "batch.json").read_text())["items"]]
    assert len(items) == len(set(items)) == 12   # nothing embedded twice, nothing lost
    build_index(corpus_audio, trained_checkpoint, tmp_path / "whole", batch_files=2, workers=1)
    assert index_digest(out) == index_digest(tmp_path / "whole")


def test_a_bug_while_decoding_stops_the_build_and_keeps_committed_batches(trained_checkpoint, corpus_audio,
                                                                            tmp_path, monkeypatch):
    """Not a bad file (those are skipped) but an unexpected error in a decode thread: the build raises instead of
    waiting forever for the thread, and the batches committed before it stay."""
    import ssl_music.catalogue.build as build

    folder = _corpus_copy(corpus_audio, tmp_path / "audio", 4)
    real = build.file_blocks

    def flaky(path, *a, **kw):
        if Path(str(path)).name == sorted(p.name for p in folder.iterdir())[2]:
            raise KeyError("a bug")
        return real(path, *a, **kw)

    monkeypatch.setattr(build, "file_blocks", flaky)
    with pytest.raises(KeyError, match="a bug"):
        build_index(folder, trained_checkpoint, tmp_path / "i", batch_files=2)
    assert len(committed_batches(part_dir(tmp_path / "i", 0, 1))) == 1
    monkeypatch.setattr(build, "file_blocks", real)
    r = build_index(folder, trained_checkpoint, tmp_path / "i", batch_files=2)
    assert r["stats"]["tracks"] == 2 and r["stats"]["resumed_from"] == 2 and r["index"]["tracks"] == 4
