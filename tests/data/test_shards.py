import csv
import io
import json
import os
import tarfile

import numpy as np
import pytest
import soundfile as sf

from ssl_music.cli import main
from ssl_music.data.audio import decode_bytes, decode_file, resample, to_mono
from ssl_music.data.shards import build_shards, inspect_shards, read_manifest, verify_shards
from ssl_music.data.synth import generate_corpus
from ssl_music.errors import ShardError

SR = 16000


def music(seconds, sr, seed, channels=1):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = [0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t) + 0.05 * rng.standard_normal(len(t)) for _ in range(channels)]
    return np.stack(x).astype(np.float32)


def samples_of(shard_dir):
    out = {}
    for name in sorted(os.listdir(shard_dir)):
        if name.endswith(".tar"):
            with tarfile.open(shard_dir / name) as tf:
                for m in tf:
                    key, _, ext = m.name.partition(".")
                    out.setdefault(key, {})[ext] = tf.extractfile(m).read()
    return out


def test_roundtrip_equals_resampled_source(tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    sf.write(src / "a.wav", music(5.0, 44100, 0, channels=2).T, 44100)   # stereo, other rate
    sf.write(src / "sub" / "b.flac", music(3.0, SR, 1)[0], SR)
    m = build_shards(src, tmp_path / "sh", segment_seconds=2.0, workers=1, progress=False)
    assert m["total_samples"] == 3 + 2 and m["skipped"] == [] and m["sample_rate"] == SR
    got = samples_of(tmp_path / "sh")
    for rel, tid in (("a.wav", "a"), ("sub/b.flac", "sub_b")):
        x, sr = decode_file(src / rel)
        ref = resample(to_mono(x), sr, SR)
        keys = sorted(k for k in got if k.startswith(tid + "__"))
        parts = []
        for k in keys:
            meta = json.loads(got[k]["json"])
            assert meta["track_id"] == tid and meta["source"] == rel and meta["sample_rate"] == SR
            y, ysr = decode_bytes(got[k]["flac"])
            assert ysr == SR and abs(meta["offset_s"] * SR - sum(map(len, parts))) < 1
            parts.append(y)
        y = np.concatenate(parts)
        assert len(y) == len(ref)
        assert np.max(np.abs(y - ref)) <= 1.01 / 32768  # PCM16 quantisation only
    assert verify_shards(tmp_path / "sh") == []


def test_bad_inputs_are_skipped_with_reasons(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    sf.write(src / "good.wav", music(2.0, SR, 0)[0], SR)
    sf.write(src / "rate.wav", music(2.0, 22050, 1)[0], 22050)         # handled by resampling
    (src / "empty.wav").write_bytes(b"")
    buf = io.BytesIO()
    sf.write(buf, music(2.0, SR, 2)[0], SR, format="FLAC")
    (src / "cut.flac").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (src / "junk.mp3").write_bytes(os.urandom(5000))
    sf.write(src / "silent.wav", np.zeros(SR * 2, np.float32), SR)
    sf.write(src / "short.wav", music(0.3, SR, 3)[0], SR)
    manifest = tmp_path / "list.csv"
    rows = [{"path": f"in/{n}", "genre": "x"} for n in sorted(os.listdir(src))] + [{"path": "in/gone.wav", "genre": "y"}]
    with open(manifest, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "genre"])
        w.writeheader()
        w.writerows(rows)
    m = build_shards(manifest, tmp_path / "sh", workers=2, progress=False)
    reasons = {os.path.basename(s["path"]): s["reason"] for s in m["skipped"]}
    assert set(reasons) == {"empty.wav", "cut.flac", "junk.mp3", "silent.wav", "short.wav", "gone.wav"}
    assert "zero-length" in reasons["empty.wav"] and "truncated" in reasons["cut.flac"]
    assert "not decodable audio" in reasons["junk.mp3"] and "silent" in reasons["silent.wav"]
    assert "too short" in reasons["short.wav"] and "no such file" in reasons["gone.wav"]
    assert json.loads((tmp_path / "sh" / "manifest.json").read_text())["skipped"] == m["skipped"]
    got = samples_of(tmp_path / "sh")
    assert sorted(got) == ["in_good__0000", "in_rate__0000"]
    assert json.loads(got["in_rate__0000"]["json"])["labels"] == {"genre": "x"}
    y, sr = decode_bytes(got["in_rate__0000"]["flac"])
    assert sr == SR and len(y) == 2 * SR
    assert verify_shards(tmp_path / "sh") == []


def test_synthetic_labels_csv_is_a_manifest(tmp_path):
    labels = generate_corpus(tmp_path / "c", 3, 2.0, seed=0)
    build_shards(labels, tmp_path / "sh", progress=False)
    got = samples_of(tmp_path / "sh")
    rows = {r["track_id"]: r for r in csv.DictReader(open(labels))}
    assert len(got) == 3
    for k, s in got.items():
        meta = json.loads(s["json"])
        row = rows[meta["track_id"]]
        assert k == f"{row['track_id']}__0000"
        assert meta["labels"]["key"] == row["key"] and meta["labels"]["tempo"] == pytest.approx(float(row["tempo"]))
    summary = inspect_shards(tmp_path / "sh")
    assert "samples:      3" in summary and "key" in summary and "tempo_class" in summary


def _corpus(tmp_path, n=6):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(n):
        sf.write(src / f"t{i}.wav", music(3.0, SR, i)[0], SR)
    return src


def _state(d):
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(d.glob("*.tar"))}


def test_resume_keeps_finished_shards(tmp_path):
    src = _corpus(tmp_path)
    out = tmp_path / "sh"
    full = build_shards(src, out, shard_size_mb=0.1, progress=False)  # ~1 track per shard
    assert len(full["shards"]) >= 3
    before = _state(out)
    # simulate an interruption after two shards
    m = json.loads((out / "manifest.json").read_text())
    m["shards"], m["complete"] = m["shards"][:2], False
    m["skipped"] = []
    (out / "manifest.json").write_text(json.dumps(m))
    for s in full["shards"][2:]:
        (out / s["name"]).unlink()
    with pytest.raises(ShardError, match="did not finish"):
        read_manifest(out)
    again = build_shards(src, out, shard_size_mb=0.1, progress=False)
    after = _state(out)
    for s in full["shards"][:2]:
        assert after[s["name"]][:2] == before[s["name"]][:2]  # same inode and mtime: not rewritten
    assert {k: v[2] for k, v in after.items()} == {k: v[2] for k, v in before.items()}
    assert [s["sha256"] for s in again["shards"]] == [s["sha256"] for s in full["shards"]]
    # a finished build is left alone entirely
    build_shards(src, out, shard_size_mb=0.1, progress=False)
    assert _state(out) == after


def test_different_settings_on_existing_output_is_an_error(tmp_path):
    src = _corpus(tmp_path, 2)
    build_shards(src, tmp_path / "sh", progress=False)
    with pytest.raises(ShardError, match="segment_seconds"):
        build_shards(src, tmp_path / "sh", segment_seconds=30, progress=False)


def test_verify_catches_corruption_and_cli_exit_codes(tmp_path, capsys):
    src = _corpus(tmp_path, 3)
    out = tmp_path / "sh"
    assert main(["shards", "build", str(src), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    assert main(["shards", "verify", str(out)]) == 0
    assert main(["shards", "inspect", str(out)]) == 0
    assert "hours" in capsys.readouterr().out
    shard = out / "shard-000000.tar"
    data = bytearray(shard.read_bytes())
    data[3000:3100] = b"\x00" * 100  # inside the first FLAC payload
    shard.write_bytes(bytes(data))
    problems = verify_shards(out)
    assert any("sha256" in p for p in problems)
    assert main(["shards", "verify", str(out)]) == 1


def test_read_manifest_errors_name_the_path(tmp_path):
    with pytest.raises(ShardError, match=str(tmp_path / "manifest.json")):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ShardError, match="malformed"):
        read_manifest(tmp_path)
    assert main(["shards", "verify", str(tmp_path)]) == 1


def test_lossy_files_shorter_than_their_header_are_kept_with_notes(tmp_path, capsys):
    # the mismatches of real catalogues (mp3 without Info frame, Ogg granule past the end) are kept and
    # noted; a file cut by seconds, a corrupt and a silent one are still skipped, naming the file
    from tests.data.lossy import mp3_bytes, mp3_without_info_frame, ogg_vorbis_with_long_last_granule
    from tests.data.lossy import music as lossy_music

    src = tmp_path / "in"
    src.mkdir()
    (src / "a_estimated.mp3").write_bytes(mp3_without_info_frame(lossy_music(8.0, 22050), 22050))
    (src / "b_granule.ogg").write_bytes(ogg_vorbis_with_long_last_granule(lossy_music(5.0, 44100), 44100, 5806))
    cut = mp3_bytes(lossy_music(8.0, 22050, seed=1), 22050)
    (src / "c_cut.mp3").write_bytes(cut[: len(cut) // 2])
    (src / "d_junk.ogg").write_bytes(os.urandom(4000))
    sf.write(src / "e_silent.wav", np.zeros(SR * 2, np.float32), SR)
    sf.write(src / "f_good.wav", music(2.0, SR, 0)[0], SR)
    out = tmp_path / "sh"
    m = build_shards(src, out, segment_seconds=4.0, workers=2, progress=False)
    reasons = {os.path.basename(s["path"]): s["reason"] for s in m["skipped"]}
    assert set(reasons) == {"c_cut.mp3", "d_junk.ogg", "e_silent.wav"}
    assert "truncated" in reasons["c_cut.mp3"] and "silent" in reasons["e_silent.wav"]
    assert {k.split("__")[0] for k in samples_of(out)} == {"a_estimated", "b_granule", "f_good"}
    assert m["total_hours"] * 3600 == pytest.approx(8.0 + 5.0 + 2.0, abs=0.1)
    notes = {os.path.basename(n["path"]): n for n in m["notes"]}
    assert set(notes) == {"a_estimated.mp3", "b_granule.ogg"}
    for name, n in notes.items():
        info = sf.info(src / name)
        assert n["kind"] == "length_mismatch" and n["format"] == info.subtype and n["header_frames"] == info.frames
        assert 0 < n["header_frames"] - n["decoded_frames"] < info.samplerate // 2
        short = (n["header_frames"] - n["decoded_frames"]) / info.samplerate
        assert n["seconds_short"] == pytest.approx(short, abs=1e-6)
    assert json.loads((out / "manifest.json").read_text())["notes"] == m["notes"]
    assert verify_shards(out) == []
    summary = inspect_shards(out)
    assert "notes:        2 file(s)" in summary and "a_estimated.mp3: length_mismatch: MPEG_LAYER_III" in summary
    assert main(["shards", "build", str(src), "--out", str(out), "--segment-seconds", "4", "--quiet"]) == 0
    assert "3 file(s) skipped, 2 kept with a note" in capsys.readouterr().out


def test_resume_keeps_the_notes_of_finished_shards(tmp_path):
    from tests.data.lossy import mp3_without_info_frame, music as lossy_music

    src = _corpus(tmp_path, 4)
    (src / "t1x.mp3").write_bytes(mp3_without_info_frame(lossy_music(3.0, 22050), 22050))
    out = tmp_path / "sh"
    full = build_shards(src, out, shard_size_mb=0.1, progress=False)  # ~1 track per shard
    assert [os.path.basename(n["path"]) for n in full["notes"]] == ["t1x.mp3"] and len(full["shards"]) >= 4
    m = json.loads((out / "manifest.json").read_text())
    assert full["shards"][2]["inputs"][1] > full["notes"][0]["index"]  # the mp3 is in the first 3 shards
    m["shards"], m["complete"] = m["shards"][:3], False  # interrupted after them
    (out / "manifest.json").write_text(json.dumps(m))
    for s in full["shards"][3:]:
        (out / s["name"]).unlink()
    again = build_shards(src, out, shard_size_mb=0.1, progress=False)
    assert again["notes"] == full["notes"] and again["skipped"] == full["skipped"]
    assert [s["sha256"] for s in again["shards"]] == [s["sha256"] for s in full["shards"]]


def test_every_build_reports_hours_of_audio_per_minute_per_worker(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        sf.write(src / f"t{i}.wav", music(4.0, 22050, i)[0], 22050)
    assert main(["shards", "build", str(src), "--out", str(tmp_path / "sh"), "--workers", "2"]) == 0
    err = capsys.readouterr().err
    last = read_manifest(tmp_path / "sh")["last_build"]
    assert last["hours"] == pytest.approx(12.0 / 3600, rel=1e-3) and last["workers"] == 2 and last["seconds"] > 0
    assert last["hours_per_min_per_worker"] == pytest.approx(last["hours_per_min"] / 2, rel=0.01)
    assert f"{last['hours_per_min']:.2f} h of audio per minute, {last['hours_per_min_per_worker']:.2f} per worker" in err
    # a finished build re-run says so and leaves the manifest, its last_build figure included, as it was
    manifest = (tmp_path / "sh" / "manifest.json").read_text()
    assert main(["shards", "build", str(src), "--out", str(tmp_path / "sh"), "--quiet"]) == 0
    assert "already complete" in capsys.readouterr().err
    assert (tmp_path / "sh" / "manifest.json").read_text() == manifest


# ------------------------------------------------------------------------------ builds that say what happened
def test_a_build_that_writes_no_sample_fails_naming_why_and_verify_agrees(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "notes.mp3").write_text("these are my notes, not a song\n")
    sf.write(src / "silent.wav", np.zeros(SR * 2, np.float32), SR)
    out = tmp_path / "sh"
    assert main(["shards", "build", str(src), "--out", str(out), "--workers", "1", "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "0 samples" in err and "2 input(s) skipped" in err and "silent" in err and "not decodable audio" in err
    with pytest.raises(ShardError, match="0 samples"):   # and again, however often it is re-run
        build_shards(src, out, progress=False)
    problems = verify_shards(out)
    assert any("no samples" in p for p in problems)
    assert main(["shards", "verify", str(out)]) == 1


def test_a_text_file_named_mp3_is_not_decodable_audio(tmp_path):
    (tmp_path / "song.mp3").write_text("not a song\n")
    from ssl_music.errors import AudioError

    with pytest.raises(AudioError) as err:
        decode_file(tmp_path / "song.mp3")
    msg = str(err.value)
    assert "not decodable audio" in msg and "text" in msg and "does not exist" not in msg and str(tmp_path) in msg


def test_decoder_notes_stay_out_of_a_quiet_build(tmp_path, capfd):
    # libsndfile's mpg123 writes "Note: Illegal Audio-MPEG-Header ..." straight to file descriptor 2
    src = _corpus(tmp_path, 1)
    (src / "junk.mp3").write_bytes(bytes(range(256)) * 4 + b"\xff\xfb\x90\x00" + bytes(3000))
    for workers in ("1", "2"):
        out = tmp_path / f"sh{workers}"
        assert main(["shards", "build", str(src), "--out", str(out), "--workers", workers, "--quiet"]) == 0
        err = capfd.readouterr().err
        assert "Note:" not in err and "Illegal" not in err, err
        assert "junk.mp3" in err   # the skip itself is still reported


def test_a_changed_input_set_is_described_by_its_files(tmp_path):
    src = _corpus(tmp_path, 4)
    out = tmp_path / "sh"
    build_shards(src, out, progress=False)
    (src / "t1.wav").unlink()
    sf.write(src / "t2.wav", music(5.0, SR, 9)[0], SR)    # same name, other audio
    with pytest.raises(ShardError) as err:
        build_shards(src, out, progress=False)
    msg = str(err.value)
    assert "1 removed (t1.wav)" in msg and "1 changed (t2.wav)" in msg and str(out) in msg
    assert "inputs_sha256" not in msg


def test_added_files_grow_a_finished_build(tmp_path):
    src = _corpus(tmp_path, 3)
    out = tmp_path / "sh"
    first = build_shards(src, out, shard_size_mb=0.1, progress=False)
    before = _state(out)
    sf.write(src / "a_new.wav", music(3.0, SR, 7)[0], SR)   # sorts first: the old shards must not move
    sf.write(src / "z_new.wav", music(3.0, SR, 8)[0], SR)
    grown = build_shards(src, out, shard_size_mb=0.1, progress=False)
    after = _state(out)
    assert all(after[name] == state for name, state in before.items())   # untouched
    assert grown["shards"][: len(first["shards"])] == first["shards"]
    assert grown["total_samples"] == first["total_samples"] + 2 and len(after) > len(before)
    assert {"a_new__0000", "z_new__0000"} <= set(samples_of(out))
    assert verify_shards(out) == []
