"""The k-NN probe: the weighted vote, leave-one-out / same-track-out accuracy, and the search it records."""
import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from ssl_music_eval.probes.knn import DEFAULT_TEMPERATURE, knn_accuracy, knn_predict, search, search_rule


def test_weighted_vote_matches_reference_and_train_test_variant():
    rng = np.random.default_rng(1)
    Xtr, Xq = rng.standard_normal((200, 8)), rng.standard_normal((50, 8))
    ytr = rng.integers(0, 3, 200)
    pred, _ = knn_predict(Xtr, ytr, Xq, k=7)
    dist, idx = NearestNeighbors(n_neighbors=7, metric="cosine", algorithm="brute").fit(Xtr).kneighbors(Xq)
    w = np.exp((1 - dist) / DEFAULT_TEMPERATURE)
    scores = np.zeros((50, 3))
    for q in range(50):
        np.add.at(scores[q], ytr[idx[q]], w[q])
    assert np.array_equal(pred, scores.argmax(1))


def test_leave_one_out_accuracy_on_clusters_and_chance():
    rng = np.random.default_rng(2)
    y = np.repeat(np.arange(5), 40)
    X = np.eye(5)[y] * 5 + rng.standard_normal((200, 5)) * 0.3
    assert knn_accuracy(X, y, ks=(1, 5)) == {1: 1.0, 5: 1.0}
    acc = knn_accuracy(rng.standard_normal((2000, 32)), rng.integers(0, 5, 2000), ks=(1, 20))
    for v in acc.values():
        assert v == pytest.approx(0.2, abs=0.05)  # 3 sigma of a binomial at n=2000 is 0.027


def test_leave_same_track_out_excludes_duplicates():
    # Each track appears 3 times as near-identical windows; labels are random per track, so only a
    # duplicate of the query can predict its label: 100 % with duplicates, chance without them.
    rng = np.random.default_rng(3)
    n_tracks, n_classes = 600, 4
    base = rng.standard_normal((n_tracks, 24))
    X = np.repeat(base, 3, axis=0) + rng.standard_normal((3 * n_tracks, 24)) * 1e-3
    y = np.repeat(rng.integers(0, n_classes, n_tracks), 3)
    tracks = np.repeat([f"t{i}" for i in range(n_tracks)], 3)
    assert knn_accuracy(X, y, ks=(1,))[1] == 1.0
    left_out = knn_accuracy(X, y, ks=(1, 5), track_ids=tracks)
    for v in left_out.values():
        assert v == pytest.approx(1 / n_classes, abs=0.06)
    _, idx = search(X, 5, bank_track_ids=tracks)
    assert not np.any(tracks[idx] == tracks[:, None])


def test_knn_accuracy_and_locality_record_the_search():
    from ssl_music_eval.probes.locality import locality

    rng = np.random.default_rng(10)
    X, y = rng.standard_normal((400, 16)), rng.integers(0, 3, 400)
    info = {}
    fast = knn_accuracy(X, y, ks=(1, 5), method="bf16", info=info)
    assert info["search"] == "bf16" and fast == knn_accuracy(X, y, ks=(1, 5), method="exact")
    info = {}
    locality(X, {"y": y}, k=5, method="bf16", info=info)
    assert info["search"] == "bf16" and set(info["recall"]) == {1, 5}


def test_report_names_the_search():
    from ssl_music_eval.reports.report import protocol_lines

    assert any("Neighbour search (k-NN, locality): auto: exact" in line
               for line in protocol_lines({"knn_search": search_rule()}))
