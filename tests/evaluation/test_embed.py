import os

import numpy as np
import soundfile as sf

from ssl_music_eval.embed import embed_dataset
from tests.evaluation.fakes import SpectralModel, write_tone


def _files(tmp_path, n=4):
    return [write_tone(tmp_path / f"t{i}.wav", seconds=2.5, freq=220 * (i + 1)) for i in range(n)]


def test_mean_pooled_embedding_per_file(tmp_path):
    paths = _files(tmp_path, 3)
    m = SpectralModel()
    X, kept, skipped = embed_dataset(m, paths, cache_dir=None, progress=False)
    assert X.shape == (3, m.embed_dim) and kept == paths and skipped == []
    wave, _ = sf.read(paths[1], dtype="float32")
    np.testing.assert_allclose(X[1], m.embed_windows(wave, 16000).mean(axis=0), rtol=1e-5)


def test_resamples_to_model_rate(tmp_path):
    t = np.arange(44100 * 2) / 44100
    sf.write(tmp_path / "a.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 44100)
    write_tone(tmp_path / "b.wav", seconds=2.0, freq=440)
    X, _, _ = embed_dataset(SpectralModel(), [str(tmp_path / "a.wav"), str(tmp_path / "b.wav")], progress=False)
    # level and zero-crossing rate survive 44.1 -> 16 kHz; they would be off by 2.76x without resampling
    np.testing.assert_allclose(X[0][[0, 3, 4]], X[1][[0, 3, 4]], rtol=0.02)


def test_cache_reused_then_invalidated(tmp_path):
    paths = _files(tmp_path)
    cache = tmp_path / "cache"
    m = SpectralModel(identity="ckpt-a")
    X1, _, _ = embed_dataset(m, paths, cache_dir=cache, progress=False)
    assert m.calls == len(paths)
    X2, kept, _ = embed_dataset(m, paths, cache_dir=cache, progress=False)
    assert m.calls == len(paths), "second run with nothing changed must read the cache"
    np.testing.assert_array_equal(X1, X2)
    assert kept == paths

    other = SpectralModel(identity="ckpt-b")  # a changed checkpoint
    embed_dataset(other, paths, cache_dir=cache, progress=False)
    assert other.calls == len(paths)

    write_tone(paths[0], seconds=3.0, freq=330)  # a changed file
    os.utime(paths[0], ns=(1, 1))
    embed_dataset(m, paths, cache_dir=cache, progress=False)
    assert m.calls == 2 * len(paths)


def test_missing_and_unreadable_files_are_skipped(tmp_path):
    paths = _files(tmp_path, 2)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wav file")
    empty = tmp_path / "empty.flac"
    empty.write_bytes(b"")
    missing = str(tmp_path / "nope.wav")
    X, kept, skipped = embed_dataset(SpectralModel(), paths + [str(bad), missing, str(empty)],
                                     cache_dir=tmp_path / "c", progress=False)
    assert X.shape[0] == 2 and kept == paths
    assert len(skipped) == 3
    assert {p for p, _ in skipped} == {str(bad), missing, str(empty)}
    assert all(reason for _, reason in skipped)
    # the skip list survives the cache round trip
    _, _, skipped2 = embed_dataset(SpectralModel(), paths + [str(bad), missing, str(empty)],
                                   cache_dir=tmp_path / "c", progress=False)
    assert skipped2 == skipped


def test_keep_windows(tmp_path):
    paths = _files(tmp_path, 2)
    X, kept, skipped, windows = embed_dataset(SpectralModel(), paths, cache_dir=tmp_path / "c",
                                              keep_windows=True, progress=False)
    assert [w.shape[0] for w in windows] == [1, 1]
    _, _, _, windows2 = embed_dataset(SpectralModel(), paths, cache_dir=tmp_path / "c", keep_windows=True,
                                      progress=False)
    np.testing.assert_array_equal(np.concatenate(windows), np.concatenate(windows2))


def test_embed_cli_with_real_checkpoint(tmp_path, capsys):
    from ssl_music.cli import main
    from tests.evaluation.fakes import tiny_checkpoint

    ckpt = tiny_checkpoint(tmp_path / "tiny.ckpt")
    paths = _files(tmp_path, 2)
    csv_path = tmp_path / "list.csv"
    csv_path.write_text("path,track_id\nt0.wav,a\nmissing.wav,b\n")
    out = tmp_path / "emb.npz"
    assert main(["embed", "--checkpoint", ckpt, paths[1], str(csv_path), "--out", str(out), "--quiet"]) == 0
    z = np.load(out)
    assert z["X"].shape == (2, 16) and np.all(np.isfinite(z["X"]))
    assert sorted(z["track_ids"].tolist()) == ["a", "t1"]
    assert len(z["skipped_paths"]) == 1 and "missing.wav" in z["skipped_paths"][0]
    assert "skipped 1" in capsys.readouterr().out
    bogus = tmp_path / "bogus.ckpt"
    bogus.write_bytes(b"xx")
    assert main(["embed", "--checkpoint", str(bogus), paths[0], "--out", str(out)]) == 2


def test_silent_and_empty_files_are_skipped_with_the_reason(tmp_path):
    from tests.evaluation.fakes import write_silence

    paths = _files(tmp_path, 2)
    silent = write_silence(tmp_path / "silent.wav", seconds=10.0)
    near = write_silence(tmp_path / "near.wav", seconds=3.0, level=5e-5)  # -86 dBFS: below the shard builder's -80
    quiet = write_silence(tmp_path / "quiet.wav", seconds=3.0, level=1e-3)  # -60 dBFS: quiet, not silent: kept
    empty = str(tmp_path / "empty.wav")
    sf.write(empty, np.zeros(0, dtype=np.float32), 16000)  # a valid header and no samples
    m = SpectralModel()
    X, kept, skipped = embed_dataset(m, paths + [silent, near, quiet, empty], cache_dir=tmp_path / "c",
                                     progress=False)
    assert kept == paths + [quiet] and X.shape == (3, m.embed_dim)
    reasons = dict(skipped)
    assert set(reasons) == {silent, near, empty}
    assert "silent" in reasons[silent] and "dBFS" in reasons[silent] and silent in reasons[silent]
    assert "silent" in reasons[near]
    assert m.calls == 3, "a silent file must not reach the model"
    _, kept2, skipped2 = embed_dataset(SpectralModel(), paths + [silent, near, quiet, empty],
                                       cache_dir=tmp_path / "c", progress=False)
    assert kept2 == kept and skipped2 == skipped


def test_embed_cli_leaves_silent_files_out_and_says_why(tmp_path, capsys):
    from ssl_music.cli import main
    from tests.evaluation.fakes import tiny_checkpoint, write_silence

    ckpt = tiny_checkpoint(tmp_path / "tiny.ckpt")
    tone = write_tone(tmp_path / "tone.wav", seconds=2.5)
    silent = write_silence(tmp_path / "silent.wav", seconds=10.0)
    out = tmp_path / "emb.npz"
    assert main(["embed", "--checkpoint", ckpt, tone, silent, "--out", str(out), "--quiet"]) == 0
    z = np.load(out)
    assert z["X"].shape == (1, 16) and z["paths"].tolist() == [tone]
    assert z["skipped_paths"].tolist() == [silent] and "silent" in z["skipped_reasons"][0]
    printed = capsys.readouterr().out
    assert f"skipped {silent}: silent (peak -inf dBFS < -80 dBFS)" in printed
    assert main(["embed", "--checkpoint", ckpt, silent, "--out", str(tmp_path / "none.npz"), "--quiet"]) == 1


def test_models_that_embed_on_threads_give_the_same_rows_in_order(tmp_path):
    """embeds_on_threads moves embed_windows onto the decode threads: same embeddings, file order, skips."""
    import threading

    class Threaded(SpectralModel):
        embeds_on_threads = True

        def __init__(self):
            super().__init__(identity="fake-threads")
            self.threads = set()

        def embed_windows(self, wave, sample_rate, hop_s=None):
            self.threads.add(threading.current_thread().name)
            return super().embed_windows(wave, sample_rate, hop_s)

    paths = _files(tmp_path, 5)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wav file")
    files = paths[:2] + [str(bad)] + paths[2:]
    ref, ref_kept, ref_skipped = embed_dataset(SpectralModel(), files, cache_dir=None, progress=False, batch_size=2)
    m = Threaded()
    X, kept, skipped = embed_dataset(m, files, cache_dir=None, progress=False, batch_size=2)
    np.testing.assert_array_equal(X, ref)
    assert kept == ref_kept == paths and skipped == ref_skipped and skipped[0][0] == str(bad)
    assert threading.main_thread().name not in m.threads and m.calls == len(paths)


def test_mfcc_chroma_baseline_embeds_on_threads():
    from ssl_music_eval.runner import MfccChromaFeatures

    assert MfccChromaFeatures(16000, 3.0).embeds_on_threads is True
