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
           str(trained_checkpoint), "--out", str(out), "--batch-files", "2", "--threads", "1", "--quiet"]
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
    assert f"{12 - 2 * done} added, 0 changed, 0 removed, {2 * done} unchanged; embedded {12 - 2 * done} tracks" \
        in res.stdout, res.stdout
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


# ------------------------------------------------------------------------ bad inputs and an index that follows
def test_a_folder_with_no_audio_is_refused_and_leaves_nothing(small_ckpt, tmp_path, capsys):
    empty = tmp_path / "no_audio"
    empty.mkdir()
    (empty / "notes.txt").write_text("not audio")
    assert cli(["index", "build", str(empty), "--checkpoint", str(small_ckpt), "--out", str(tmp_path / "i")]) == 2
    err = capsys.readouterr().err
    assert f"no audio files in {empty}" in err and "Traceback" not in err
    assert not (tmp_path / "i").exists()
    assert cli(["index", "merge", str(tmp_path / "i")]) == 2
    assert "no parts to merge" in capsys.readouterr().err


def test_merge_refuses_a_corrupt_batch_or_no_track_and_keeps_the_index(small_ckpt, corpus_audio, tmp_path, capsys):
    import soundfile as sf

    folder = _corpus_copy(corpus_audio, tmp_path / "audio", 4)
    build_index(folder, small_ckpt, tmp_path / "i", batch_files=2)
    before = index_digest(tmp_path / "i")
    batch = committed_batches(part_dir(tmp_path / "i", 0, 1))[1]
    (batch / "tracks.parquet").write_bytes(b"PAR1 not parquet")
    assert cli(["index", "merge", str(tmp_path / "i")]) == 2
    err = capsys.readouterr().err
    assert f"{batch}: unreadable batch" in err and "delete this folder and re-run" in err
    assert index_digest(tmp_path / "i") == before   # the merged index is untouched
    shutil.rmtree(batch)                             # what the message says: the re-run embeds its tracks again
    r = build_index(folder, small_ckpt, tmp_path / "i", batch_files=2)
    assert r["stats"]["added"] == 2 and index_digest(tmp_path / "i") == before
    # every file skipped: a clear error, not an AttributeError
    quiet = tmp_path / "quiet"
    quiet.mkdir()
    sf.write(str(quiet / "q.wav"), np.zeros(32000, np.float32), 16000)
    with pytest.raises(CatalogueError, match=r"no track to index: 1 file\(s\) skipped \(.*silent"):
        build_index(quiet, small_ckpt, tmp_path / "q")


def _tone(path: Path, seconds: float, freq: float, amp: float = 0.3, sr: int = 16000) -> None:
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    sf.write(str(path), (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr, subtype="FLOAT")


def test_the_index_follows_its_folder(small_ckpt, corpus_audio, tmp_path, capsys):
    """A re-run embeds added and changed files, drops deleted ones and counts each; skip rules are the shard
    build's (silent, too short); with nothing to do it says so and writes nothing."""
    from ssl_music.api import load_encoder
    from ssl_music.data.audio import load_audio

    folder = _corpus_copy(corpus_audio, tmp_path / "audio", 4)
    files = sorted(folder.glob("*.flac"))
    out = tmp_path / "i"
    build_index(folder, small_ckpt, out, batch_files=2)
    gone, replaced = files[0], files[1]
    gone.unlink()
    _tone(replaced.with_suffix(".tmp.wav"), 6.0, 440.0)
    import soundfile as sf

    x, sr = sf.read(replaced.with_suffix(".tmp.wav"))
    replaced.with_suffix(".tmp.wav").unlink()
    sf.write(str(replaced), x, sr, format="FLAC")
    _tone(folder / "new.wav", 5.0, 220.0)
    _tone(folder / "quiet.wav", 3.0, 220.0, amp=10 ** (-97 / 20))   # -97 dBFS
    _tone(folder / "blip.wav", 0.2, 220.0)
    assert cli(["index", "build", str(folder), "--checkpoint", str(small_ckpt), "--out", str(out)]) == 0
    std = capsys.readouterr()
    assert "3 added, 1 changed, 1 removed, 2 unchanged; embedded 2 tracks" in std.out, std.out
    assert f"[1/4] {folder / 'blip.wav'}: skipped, too short (0.200 s < 1.0 s)" in std.err, std.err
    cat = open_index(out)
    ids = cat.tracks.column("track_id").to_pylist()
    assert gone.stem not in ids and "new" in ids and replaced.stem in ids and len(ids) == 4
    model = load_encoder(small_ckpt)
    np.testing.assert_allclose(cat.track_vectors[ids.index(replaced.stem)],
                               model.embed(load_audio(replaced, 16000), 16000), rtol=1e-4, atol=1e-5)
    reasons = {s["track_id"]: s["reason"] for s in cat.meta["skipped"]}
    assert set(reasons) == {"quiet", "blip"} and "silent (peak -97.0 dBFS" in reasons["quiet"]
    # the shard build skips the same files with the same words (data.audio.skip_reason)
    from ssl_music.data.shards import build_shards

    m = build_shards(folder, tmp_path / "shards", sample_rate=16000, progress=False)
    assert {Path(s["path"]).stem: s["reason"] for s in m["skipped"]} == \
        {k: v.removeprefix(str(folder / f"{k}.wav") + ": ") for k, v in reasons.items()}
    # nothing to do: said, no throughput figure, the index untouched
    mtime = (out / "index.json").stat().st_mtime_ns
    assert cli(["index", "build", str(folder), "--checkpoint", str(small_ckpt), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "is up to date" in said and "0 added, 0 changed, 0 removed, 6 unchanged; nothing to do" in said
    assert "real time" not in said and (out / "index.json").stat().st_mtime_ns == mtime


def test_undecodable_files_are_worded_as_the_shard_build_words_them(small_ckpt, corpus_audio, tmp_path):
    from ssl_music.data.shards import build_shards

    folder = _corpus_copy(corpus_audio, tmp_path / "audio", 1)
    (folder / "text.ogg").write_text("hello, not audio\n")
    (folder / "junk.wav").write_bytes(bytes(range(256)) * 4)
    meta = build_index(folder, small_ckpt, tmp_path / "i")["index"]
    m = build_shards(folder, tmp_path / "shards", sample_rate=16000, progress=False)
    index_said = {s["track_id"]: s["reason"].removeprefix(s["path"] + ": ") for s in meta["skipped"]}
    assert index_said == {Path(s["path"]).stem: s["reason"] for s in m["skipped"]}
    assert index_said["text"] == "not decodable audio (a text file, starts 'hello, not audio')"
