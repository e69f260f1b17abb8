"""benchmarks/embedding_blocks.py: the labels it pairs with an evaluation's cached embeddings."""
import numpy as np
import pytest

from tests.benchmarks import load_benchmark


def _bench():
    return load_benchmark("embedding_blocks")


@pytest.mark.parametrize("with_paths", [True, False], ids=["cache records paths", "older cache"])
def test_labels_follow_the_cached_rows_when_a_csv_row_was_dropped(tmp_path, with_paths):
    # b.wav is missing, so the suite's dataset holds a, c, d and the cache's kept indexes those three
    for name in ("a", "c", "d"):
        (tmp_path / f"{name}.wav").write_bytes(b"\0")
    csv = tmp_path / "labels.csv"
    csv.write_text("path,style\na.wav,rock\nb.wav,jazz\nc.wav,pop\nd.wav,folk\n")
    arrays = {"X": np.eye(3, dtype=np.float32), "kept": np.arange(3)}
    if with_paths:
        arrays["paths"] = np.asarray([str(tmp_path / f"{n}.wav") for n in "acd"])
    np.savez(tmp_path / "cache.npz", **arrays)
    X, labels = _bench().cached_labels(tmp_path / "cache.npz", str(csv), ["style"])
    assert X.shape == (3, 3) and labels == {"style": ["rock", "pop", "folk"]}


def test_cache_holding_objects_is_refused_not_unpickled(tmp_path):
    np.savez(tmp_path / "cache.npz", X=np.zeros((1, 2)), kept=np.asarray([{"x": 1}], dtype=object))
    (tmp_path / "labels.csv").write_text("path,style\na.wav,rock\n")
    with pytest.raises(ValueError, match="allow_pickle"):
        _bench().cached_labels(tmp_path / "cache.npz", str(tmp_path / "labels.csv"), ["style"])
