import numpy as np
import pytest

from ssl_music_eval.probes.locality import chance_level, locality


def test_planted_clusters_score_one_and_random_scores_chance():
    rng = np.random.default_rng(0)
    genre = np.repeat(np.arange(4), 100)
    X = np.eye(4)[genre] * 10 + rng.standard_normal((400, 4)) * 0.2
    noise = rng.integers(0, 2, 400)  # an attribute the embedding does not encode
    res = locality(X, {"genre": genre, "noise": noise}, k=10)
    assert res["genre"]["share"] == pytest.approx(1.0)
    assert res["genre"]["chance"] == pytest.approx(0.25)
    assert res["noise"]["share"] == pytest.approx(res["noise"]["chance"], abs=0.04)
    Xr = rng.standard_normal((400, 16))
    assert locality(Xr, {"genre": genre}, k=10)["genre"]["share"] == pytest.approx(0.25, abs=0.04)


def test_same_track_neighbours_do_not_count_and_missing_labels_are_skipped():
    rng = np.random.default_rng(1)
    base = rng.standard_normal((200, 8))
    X = np.repeat(base, 2, axis=0) + rng.standard_normal((400, 8)) * 1e-3
    lab = np.repeat(rng.integers(0, 2, 200), 2).astype(object)
    tracks = np.repeat(np.arange(200), 2)
    assert locality(X, {"a": lab}, k=1)["a"]["share"] == 1.0
    assert locality(X, {"a": lab}, k=1, track_ids=tracks)["a"]["share"] == pytest.approx(0.5, abs=0.1)
    lab[:10] = None
    res = locality(X, {"a": lab}, k=3)
    assert res["a"]["n"] == 390


def test_chance_level_and_length_check():
    assert chance_level(["a", "a", "b", "b"]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="'a'"):
        locality(np.zeros((5, 2)), {"a": [1, 2]})


def test_tempo_locality_matches_within_tolerance_and_chance_is_the_window_share():
    rng = np.random.default_rng(2)
    bpm = rng.uniform(60, 180, 300)
    # embedding = log tempo as an angle (search is cosine): neighbours have near-identical tempi; a shuffled
    # copy scores about chance
    theta = np.log(bpm / 60) / np.log(3) * np.pi / 2
    X = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    res = locality(X, {"tempo": bpm}, k=5, tolerances={"tempo": 0.04})
    assert res["tempo"]["share"] > 0.95
    chance = res["tempo"]["chance"]
    brute = np.mean([(np.sum(np.abs(bpm - b) <= 0.04 * b) - 1) / 299 for b in bpm])
    assert chance == pytest.approx(brute)
    assert 0.02 < chance < 0.2
    shuffled = locality(X[rng.permutation(300)], {"tempo": bpm}, k=5, tolerances={"tempo": 0.04})
    assert shuffled["tempo"]["share"] == pytest.approx(chance, abs=0.04)
    # exact matching of continuous BPMs would find no agreeing neighbour at all
    assert locality(X, {"tempo": bpm}, k=5)["tempo"]["share"] == 0.0
