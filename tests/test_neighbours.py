"""The neighbour search: exact against brute force, bf16 against exact (recall bound), exclusions."""
import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

from ssl_music import neighbours as knn_mod
from ssl_music.neighbours import choose_search, recall_at, search, search_rule

RECALL_BOUND = 0.99  # stated bound for the bf16 search against exact, on random data


def test_search_matches_sklearn_brute_force():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 16)).astype(np.float32)
    sims, idx = search(X, 5, chunk=64)  # several chunks, so chunk offsets are exercised
    ref = NearestNeighbors(n_neighbors=6, metric="cosine", algorithm="brute").fit(X)
    dist, ref_idx = ref.kneighbors(X)
    assert np.array_equal(idx, ref_idx[:, 1:])  # sklearn returns the point itself first
    np.testing.assert_allclose(sims, 1 - dist[:, 1:], atol=1e-5)


def test_unfillable_slots_are_marked():
    X = np.random.default_rng(4).standard_normal((4, 3))
    sims, idx = search(X, 5, bank_track_ids=["a", "a", "b", "b"])
    assert (idx[:, 2:] == -1).all() and np.isneginf(sims[:, 2:]).all()
    assert (idx[:, :2] >= 0).all()


def _both(X, k, **kw):
    exact = search(X, k, method="exact", **kw)
    info = {}
    fast = search(X, k, method="bf16", info=info, **kw)
    return exact, fast, info


def _check_agrees(exact, fast, k):
    (se, ie), (sf, i_f) = exact, fast
    for kk in sorted({1, min(5, k), k}):
        assert recall_at(i_f, ie, kk) >= RECALL_BOUND
    # every neighbour returned carries its float32 similarity (re-scored, not the bf16 estimate)
    found = i_f >= 0
    assert np.array_equal(found, ie >= 0)
    same = i_f == ie
    np.testing.assert_allclose(sf[same & found], se[same & found], atol=1e-5)
    assert np.all(np.diff(sf, axis=1)[np.isfinite(sf[:, 1:])] <= 1e-6)  # best first


@pytest.mark.parametrize("with_tracks", [False, True])
def test_bf16_self_search_agrees_with_exact(with_tracks):
    # chunk 256 -> 12 blocks: symmetric pairs, both reading directions and several floor consolidations run
    rng = np.random.default_rng(5)
    X = rng.standard_normal((3000, 64)).astype(np.float32)
    tracks = np.repeat(np.arange(1000), 3) if with_tracks else None
    exact, fast, info = _both(X, 20, bank_track_ids=tracks, chunk=256)
    _check_agrees(exact, fast, 20)
    assert info["search"] == "bf16" and info["device"] == "cpu"
    assert info["recall"][20] >= RECALL_BOUND and info["recall_queries"] == 1000
    assert not np.any(fast[1] == np.arange(3000)[:, None])  # leave-one-out
    if with_tracks:
        assert not np.any(tracks[fast[1]] == tracks[:, None])


def test_bf16_queries_against_a_bank_agree_with_exact():
    rng = np.random.default_rng(6)
    bank, queries = rng.standard_normal((2500, 48)), rng.standard_normal((700, 48))
    exact, fast, _ = _both(bank, 10, queries=queries, chunk=256)
    _check_agrees(exact, fast, 10)


def test_bf16_gpu_algorithm_agrees_with_exact_on_cpu():
    # the CUDA path (chunked bf16 matmul + top-k + float32 re-scoring) is device-agnostic: check it here
    rng = np.random.default_rng(7)
    X = rng.standard_normal((1500, 32)).astype(np.float32)
    tracks = np.repeat(np.arange(500), 3)
    (b_codes, q_codes), n = knn_mod._codes(tracks, tracks)
    excl = knn_mod._Exclusions(knn_mod._Groups(b_codes, n), q_codes, self_search=True)
    Xn = knn_mod._normalised(X)
    fast = knn_mod._bf16_topk(Xn, Xn, 20, excl, chunk=256)
    _check_agrees(search(X, 20, bank_track_ids=tracks, method="exact"), fast, 20)


def test_bf16_is_exact_where_floors_stay_non_positive():
    # Two opposite clusters of 40: a query's 20th+8 neighbour is in the other cluster (similarity < 0),
    # so no floor turns positive and every query is searched exactly: identical to exact search.
    rng = np.random.default_rng(8)
    c = rng.standard_normal(16)
    X = np.concatenate([c + 0.01 * rng.standard_normal((40, 16)), -c + 0.01 * rng.standard_normal((40, 16))])
    exact, fast, _ = _both(X.astype(np.float32), 45, chunk=32)
    assert np.array_equal(exact[1], fast[1]) and np.array_equal(exact[0], fast[0])


def test_auto_is_exact_for_small_sets_and_bf16_at_catalogue_scale(monkeypatch):
    import ssl_music.neighbours as nb
    monkeypatch.setattr(nb, "fast_bf16", lambda device="cpu": (True, "test"))
    assert choose_search(20_000, 20_000) == "exact"
    assert choose_search(20_001, 20_000) == "bf16"
    # without native bf16, exact float32 is the faster search at every size (issue #38: 3x on AVX2)
    monkeypatch.setattr(nb, "fast_bf16", lambda device="cpu": (False, "test"))
    assert choose_search(20_001, 20_000) == "exact" and choose_search(10 ** 6, 10 ** 6) == "exact"
    assert choose_search(10, 10, "bf16") == "bf16" and choose_search(10 ** 6, 10 ** 6, "exact") == "exact"
    with pytest.raises(ValueError, match="unknown k-NN search 'faiss'"):
        choose_search(10, 10, "faiss")
    info = {}
    X = np.random.default_rng(9).standard_normal((200, 8))
    sims, idx = search(X, 5, info=info)
    assert info == {"search": "exact", "device": "cpu"}
    assert np.array_equal(idx, search(X, 5, method="exact")[1])
    assert "exact" in search_rule() and "bf16" in search_rule() and "20000 x 20000" in search_rule()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bf16_cuda_agrees_with_exact():
    X = np.random.default_rng(11).standard_normal((5000, 128)).astype(np.float32)
    exact, fast, info = _both(X, 20, device="cuda")
    assert info["device"] == "cuda"
    _check_agrees(exact, fast, 20)


def test_fast_bf16_reads_the_cpu_flags_and_the_kernel_caps():
    from ssl_music.neighbours import fast_bf16
    amx = {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}
    assert fast_bf16("cpu", flags=amx, capability="AVX512", env={})[0]
    # an AVX2-only CPU (or an AVX-512 one without bf16 dot products) converts bf16 in software
    assert not fast_bf16("cpu", flags={"avx2"}, capability="AVX2", env={})[0]
    assert not fast_bf16("cpu", flags={"avx2", "avx512f"}, capability="AVX512", env={})[0]
    # the kernels can be capped below what the CPU has: the cap decides
    ok, why = fast_bf16("cpu", flags=amx, capability="AVX2", env={})
    assert not ok and "capped" in why
    assert not fast_bf16("cpu", flags=amx, capability="AVX512", env={"ONEDNN_MAX_CPU_ISA": "avx2"})[0]
    assert fast_bf16("cuda", flags=set(), capability="AVX2", env={})[0]
