"""Cosine k-nearest-neighbour search: many queries against a bank, best ``k`` per query, with exclusions.

Shared by the evaluation (k-NN probe, locality, translation) and anything of the library that needs
neighbours of many queries at once; it depends on torch and numpy only.

Two searches, picked by size and machine (``method="auto"``: exact up to ``EXACT_MAX_PAIRS`` query x bank pairs,
and above that too on a CPU without native bf16 arithmetic, see :func:`fast_bf16`) or by name:

``exact``: query chunks are multiplied with the whole (L2-normalised, float32) bank and ``torch.topk`` keeps
the best ``k`` per row, so memory stays at ``chunk x N`` floats.

``bf16`` (catalogue scale): bfloat16 similarities (AMX on recent Xeons, tensor cores on a GPU) choose
``k + RERANK_MARGIN`` candidates per query; the candidates are then scored again in float32 and the best ``k``
kept, so returned similarities are float32 and the only approximation is a true neighbour missing from the
bf16 candidate set (recall against exact search is measured, see ``search(info=...)`` and ``benchmarks/knn.py``).
On CUDA this is a chunked bf16 matmul + top-k. On CPU a per-block top-k costs more than the matmul, so
candidates are found without one: each query keeps a floor (a lower bound of its candidate set's worst
similarity, raised as blocks are seen), a max over strided groups of 8 columns finds the few groups that
reach the floor, and only those are read; a self-search computes each block pair once and reads it both
ways (similarity is symmetric). Queries whose floor never turns positive (tiny or degenerate sets) are
searched exactly.

Leave-one-out and leave-same-track-out are applied by writing ``-inf`` into the excluded (row, column) pairs
of each block before selection, so an excluded neighbour can never be picked, whatever its similarity.
Window-level embeddings of one track are near-duplicates; without leave-same-track-out they make k-NN look
perfect.
"""
from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np
import torch


def _normalised(X: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(X, dtype=np.float32))
    return torch.nn.functional.normalize(t, dim=1)


class _Groups:
    """Column indices grouped by integer code, to list a row's excluded columns without an N x N mask."""

    def __init__(self, codes: np.ndarray, n_codes: int):
        self.order = np.argsort(codes, kind="stable")
        self.size = np.bincount(codes, minlength=n_codes)
        self.start = np.r_[0, np.cumsum(self.size)[:-1]]

    def pairs(self, row_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row position, column) for every column sharing the row's code."""
        counts = self.size[row_codes]
        rows = np.repeat(np.arange(len(row_codes)), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        cols = self.order[np.repeat(self.start[row_codes], counts) + offsets]
        return rows, cols


def _codes(*id_arrays: Sequence) -> tuple[list[np.ndarray], int]:
    joined = np.concatenate([np.asarray(a).astype(str) for a in id_arrays])
    _, codes = np.unique(joined, return_inverse=True)
    out, pos = [], 0
    for a in id_arrays:
        out.append(codes[pos:pos + len(a)])
        pos += len(a)
    return out, int(codes.max()) + 1 if len(codes) else 0


SEARCHES = ("exact", "bf16")
EXACT_MAX_PAIRS = 20_000 * 20_000  # auto: exact up to this many query x bank pairs (20k x 20k: ~4 s on 2 cores)
RERANK_MARGIN = 8                   # bf16 candidates kept beyond k, re-scored in float32
_GROUP = 8                          # CPU bf16 path: columns per strided group
_NEG = -32768                       # int16 key below every admissible similarity (bf16 bits of -0.0)


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


# oneDNN ISA names (ONEDNN_MAX_CPU_ISA) whose kernels lack bf16 dot products
_ONEDNN_NO_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI")


def fast_bf16(device: str = "cpu", flags: set[str] | None = None, capability: str | None = None,
              env: dict | None = None) -> tuple[bool, str]:
    """Whether bf16 similarities are faster than float32 here, and why (for the benchmark and reports).

    Decided from what the machine dispatches, not from a timing: a calibration run is noisy on a shared
    machine and costs seconds on every new one. On a GPU bf16 runs on tensor cores. On a CPU, bf16 pays off
    only with native bf16 dot products (AVX512-BF16 or AMX): without them oneDNN converts to float32 and the
    bf16 path's extra passes make it ~3x slower than exact float32 (benchmarks/results/knn_auto_avx2.txt). The
    kernels torch actually runs can be capped below what the CPU has (``ATEN_CPU_CAPABILITY``,
    ``ONEDNN_MAX_CPU_ISA``), so both caps are read too.
    """
    import os
    if torch.device(device).type == "cuda":
        return True, "cuda"
    env = os.environ if env is None else env
    flags = _cpu_flags() if flags is None else flags
    capability = torch.backends.cpu.get_cpu_capability() if capability is None else capability
    native = sorted(flags & {"avx512_bf16", "amx_bf16"})
    isa = str(env.get("ONEDNN_MAX_CPU_ISA", "")).upper()
    if not native:
        return False, f"cpu {capability}, no avx512_bf16/amx_bf16"
    if not capability.upper().startswith(("AVX512", "AMX")):
        return False, f"cpu capability {capability} (capped), {'+'.join(native)} unused"
    if isa in _ONEDNN_NO_BF16:
        return False, f"ONEDNN_MAX_CPU_ISA={isa} caps below bf16"
    return True, f"cpu {capability}, {'+'.join(native)}"


def choose_search(n_queries: int, n_bank: int, method: str = "auto", device: str = "cpu") -> str:
    """The search ``search(method=...)`` runs for these sizes on ``device``: ``"exact"`` or ``"bf16"``."""
    if method == "auto":
        if int(n_queries) * int(n_bank) <= EXACT_MAX_PAIRS:
            return "exact"
        return "bf16" if fast_bf16(device)[0] else "exact"
    if method not in SEARCHES:
        raise ValueError(f"unknown k-NN search '{method}': choose auto, {', '.join(SEARCHES)}")
    return method


def describe_search(method: str, device: str = "cpu") -> str:
    """One line naming a search, for reports."""
    if method == "exact":
        return f"exact (float32 cosine, all pairs, {device})"
    return (f"bf16 candidates (k + {RERANK_MARGIN} per query, all pairs) re-scored in float32, {device}; "
            f"approximate: recall against exact search is stated beside it")


def search_rule() -> str:
    """What ``method="auto"`` does, for the protocol section of reports."""
    side = int(round(EXACT_MAX_PAIRS ** 0.5))
    return (f"auto: {describe_search('exact')} up to {side} x {side} query x bank pairs; above, "
            f"{describe_search('bf16')} where the machine has native bf16 (GPU, AVX512-BF16 or AMX), else exact")


def recall_at(idx: np.ndarray, ref_idx: np.ndarray, k: int) -> float:
    """Mean share of ``ref_idx``'s first ``k`` neighbours (the exact ones) found in ``idx``'s first ``k``."""
    a, b = np.asarray(idx)[:, :k], np.asarray(ref_idx)[:, :k]
    hit = (a[:, :, None] == b[:, None, :]) & (b[:, None, :] >= 0)
    n_ref = np.maximum((b >= 0).sum(axis=1), 1)
    return float(np.mean(hit.any(axis=1).sum(axis=1) / n_ref))


def search(bank: np.ndarray, k: int, queries: np.ndarray | None = None, bank_track_ids: Sequence | None = None,
           query_track_ids: Sequence | None = None, chunk: int = 4096, method: str = "auto", device: str = "cpu",
           info: dict | None = None, recall_sample: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Cosine top-``k`` neighbours of each query in ``bank``.

    With ``queries=None`` the bank is queried against itself, leaving each item out (a query never
    matches itself). With track ids, every bank item sharing the query's track id is left out too
    (for self-search pass ``bank_track_ids`` only). Returns ``(sims [Q, k] float32, idx [Q, k] int64)``
    best first; slots that could not be filled (fewer than ``k`` admissible items) have idx -1, sim -inf.
    ``method``: ``auto`` | ``exact`` | ``bf16`` (module docstring); ``device``: where the similarities are
    computed (``cpu``, ``cuda``). A dict passed as ``info`` receives ``search`` (the method run), ``device``
    and, for ``bf16``, ``recall`` ({k: recall@k}) against exact search on up to ``recall_sample`` queries.
    """
    dev = torch.device(device)
    B = _normalised(bank).to(dev)
    self_search = queries is None
    Q = B if self_search else _normalised(queries).to(dev)
    if self_search:
        query_track_ids = bank_track_ids
    groups, q_codes = None, None
    if bank_track_ids is not None and query_track_ids is not None:
        (b_codes, q_codes), n_codes = _codes(bank_track_ids, query_track_ids)
        groups = _Groups(b_codes, n_codes)
    name = choose_search(Q.shape[0], B.shape[0], method, dev.type)
    if k + RERANK_MARGIN >= B.shape[0]:
        name = "exact"  # candidates would be the whole bank
    excl = _Exclusions(groups, q_codes, self_search)
    if name == "exact":
        sims, idx = _exact(Q, B, k, excl, chunk)
    elif dev.type == "cuda":
        sims, idx = _bf16_topk(Q, B, k, excl, chunk)
    else:
        sims, idx = _bf16_floor(Q, B, k, excl, chunk, self_search)
    if info is not None:
        info.update(search=name, device=dev.type)
        if name == "bf16":
            rows = np.unique(np.linspace(0, Q.shape[0] - 1, min(recall_sample, Q.shape[0])).astype(np.int64))
            _, ref = _exact(Q, B, k, excl, chunk, rows=torch.from_numpy(rows).to(dev))
            info["recall"] = {int(kk): recall_at(idx[rows], ref, kk) for kk in sorted({1, min(5, k), k})}
            info["recall_queries"] = int(len(rows))
    return sims, idx


class _Exclusions:
    """The (query, bank) pairs a search must not return: the query itself, and items of its track."""

    def __init__(self, groups: _Groups | None, q_codes: np.ndarray | None, self_search: bool):
        self.groups, self.q_codes, self.self_search = groups, q_codes, self_search
        self._by_rows: dict = {}  # same-track pairs of a query block, sorted by column (blocks recur)

    def _track_pairs(self, rows: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        key = (int(rows[0]), int(rows[-1]), len(rows)) if len(rows) else None
        if key not in self._by_rows:
            r, c = self.groups.pairs(self.q_codes[rows.cpu().numpy()])
            order = np.argsort(c, kind="stable")
            self._by_rows[key] = (r[order], c[order])
        return self._by_rows[key]

    def pairs(self, rows: torch.Tensor, cs: int, ce: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(position in ``rows``, column - cs) of excluded pairs with the column in [cs, ce)."""
        r_out, c_out = [], []
        if self.groups is not None:
            r, c = self._track_pairs(rows)
            lo, hi = np.searchsorted(c, [cs, ce])
            r_out.append(torch.from_numpy(r[lo:hi]))
            c_out.append(torch.from_numpy(c[lo:hi] - cs))
        if self.self_search:
            pos = torch.nonzero((rows >= cs) & (rows < ce)).flatten().cpu()
            r_out.append(pos)
            c_out.append(rows.cpu()[pos] - cs)
        if not r_out:
            return torch.empty(0, dtype=torch.int64), torch.empty(0, dtype=torch.int64)
        return torch.cat(r_out).to(rows.device), torch.cat(c_out).to(rows.device)

    def apply(self, block: torch.Tensor, rows: torch.Tensor, cs: int, ce: int, value) -> None:
        r, c = self.pairs(rows, cs, ce)
        if len(r):
            block[r, c] = value


def _exact(Q: torch.Tensor, B: torch.Tensor, k: int, excl: _Exclusions, chunk: int,
           rows: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Float32 all-pairs search for every query (or the query indices ``rows``)."""
    rows = torch.arange(Q.shape[0], device=Q.device) if rows is None else rows
    k_eff = min(k, B.shape[0])
    sims = np.full((len(rows), k), -np.inf, dtype=np.float32)
    idx = np.full((len(rows), k), -1, dtype=np.int64)
    for s in range(0, len(rows), chunk):
        e = min(s + chunk, len(rows))
        block = Q[rows[s:e]] @ B.T
        excl.apply(block, rows[s:e], 0, B.shape[0], -torch.inf)
        v, i = torch.topk(block, k_eff, dim=1)
        sims[s:e, :k_eff] = v.cpu().numpy()
        idx[s:e, :k_eff] = i.cpu().numpy()
    idx[~np.isfinite(sims)] = -1
    return sims, idx


def _rerank(Q: torch.Tensor, B: torch.Tensor, cand: torch.Tensor, k: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Float32 similarities of each query's candidates (idx -1 = none), best ``k`` first."""
    sims = np.full((len(cand), k), -np.inf, dtype=np.float32)
    idx = np.full((len(cand), k), -1, dtype=np.int64)
    step = max(1, chunk // 4)
    for s in range(0, len(cand), step):
        e = min(s + step, len(cand))
        c = cand[s:e]
        v = torch.bmm(B.index_select(0, c.clamp(min=0).flatten()).view(*c.shape, -1), Q[s:e, :, None])[:, :, 0]
        v = torch.where(c >= 0, v, torch.full_like(v, -torch.inf))
        kk = min(k, v.shape[1])
        top, j = torch.topk(v, kk, dim=1)
        sims[s:e, :kk] = top.cpu().numpy()
        idx[s:e, :kk] = c.gather(1, j).cpu().numpy()
    idx[~np.isfinite(sims)] = -1
    return sims, idx


def _bf16_topk(Q: torch.Tensor, B: torch.Tensor, k: int, excl: _Exclusions, chunk: int):
    """Chunked bf16 matmul + top-(k + margin), then float32 re-scoring (the GPU path)."""
    Qb, Bb = Q.bfloat16(), B.bfloat16()
    m = min(k + RERANK_MARGIN, B.shape[0])
    cand = torch.empty(Q.shape[0], m, dtype=torch.int64, device=Q.device)
    all_rows = torch.arange(Q.shape[0], device=Q.device)
    for s in range(0, Q.shape[0], chunk):
        e = min(s + chunk, Q.shape[0])
        block = Qb[s:e] @ Bb.T
        excl.apply(block, all_rows[s:e], 0, B.shape[0], -torch.inf)
        v, i = torch.topk(block, m, dim=1)
        cand[s:e] = torch.where(torch.isfinite(v), i, torch.full_like(i, -1))
    return _rerank(Q, B, cand, k, chunk)


def _padded_bf16(X: torch.Tensor) -> torch.Tensor:
    pad = (-X.shape[0]) % _GROUP
    return torch.nn.functional.pad(X.bfloat16(), (0, 0, 0, pad))


def _bf16_floor(Q: torch.Tensor, B: torch.Tensor, k: int, excl: _Exclusions, chunk: int, symmetric: bool):
    """The CPU path: bf16 blocks, candidates found through per-query floors and group maxima (module doc).

    Similarities are compared as the int16 bit patterns of their bf16 values, which order positive values
    correctly and put every negative one below every positive one; a floor is therefore only trusted once
    positive, and queries whose floor ends at or below zero are searched exactly.
    """
    nq, nb = Q.shape[0], B.shape[0]
    m = min(k + RERANK_MARGIN, nb)
    block = max(_GROUP, min(chunk, 2048) // _GROUP * _GROUP)  # 2048: fastest of 1024-8192 on 2 cores
    Qb = _padded_bf16(Q)
    Bb = Qb if symmetric else _padded_bf16(B)
    r_blocks = [(s, min(s + block, Qb.shape[0])) for s in range(0, Qb.shape[0], block)]
    c_blocks = r_blocks if symmetric else [(s, min(s + block, Bb.shape[0])) for s in range(0, Bb.shape[0], block)]
    floor = torch.full((Qb.shape[0],), _NEG + 1, dtype=torch.int16)  # admits every key but the excluded
    floor[nq:] = torch.iinfo(torch.int16).max  # padding rows take nothing
    # candidates per query block: (query, bank item, int16 key) triples, consolidated now and then
    pools: list[list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = [[] for _ in r_blocks]
    lanes = torch.arange(_GROUP)

    def keys(bi: int, bj: int) -> torch.Tensor:
        (rs, re_), (cs, ce) = r_blocks[bi], c_blocks[bj]
        key = (Qb[rs:re_] @ Bb[cs:ce].T).view(torch.int16)
        excl.apply(key, torch.arange(rs, min(re_, nq)), cs, min(ce, nb), _NEG)
        if re_ > nq:
            key[nq - rs:] = _NEG
        if ce > nb:
            key[:, nb - cs:] = _NEG
        return key

    def gather(key: torch.Tensor, qfloor: torch.Tensor, transpose: bool):
        """(query position, item position, key) of entries >= the query's floor; queries along rows,
        or along columns with ``transpose``."""
        r, c = key.shape
        flat = key.view(-1)
        if transpose:  # group = rows {g + t * r/G}, one group max per (row group, column)
            q_stride, i_stride, n_items = 1, c, r
            gmax = key.view(_GROUP, r // _GROUP, c).amax(0)
            g, q = torch.nonzero(gmax >= qfloor[None, :], as_tuple=True)
        else:          # group = columns {g + t * c/G}, one group max per (row, column group)
            q_stride, i_stride, n_items = c, 1, c
            gmax = key.view(r, _GROUP, c // _GROUP).amax(1)
            q, g = torch.nonzero(gmax >= qfloor[:, None], as_tuple=True)
        items = g[:, None] + lanes * (n_items // _GROUP)
        vals = flat[(q * q_stride)[:, None] + items * i_stride]
        a, lane = torch.nonzero(vals >= qfloor[q][:, None], as_tuple=True)
        return q[a], items[a, lane], vals[a, lane]

    def visit(bi: int, bj: int, first: bool):
        """One block: [(query block, (query, item, key))] found in it."""
        (rs, _), (cs, _) = r_blocks[bi], c_blocks[bj]
        key = keys(bi, bj)
        if first:  # the first block each query sees: its exact top-m sets the floor
            v, i = torch.topk(key, min(m, key.shape[1]), dim=1)
            if v.shape[1] == m:
                floor[rs:rs + key.shape[0]] = torch.maximum(floor[rs:rs + key.shape[0]], v[:, -1])
            ok = v > _NEG
            q = torch.arange(key.shape[0])[:, None].expand_as(i)
            return [(bi, (q[ok] + rs, i[ok] + cs, v[ok]))]
        q, it, v = gather(key, floor[rs:rs + key.shape[0]], transpose=False)
        out = [(bi, (q + rs, it + cs, v))]
        if symmetric:
            q, it, v = gather(key, floor[cs:cs + key.shape[1]], transpose=True)
            out.append((bj, (q + cs, it + rs, v)))
        return out

    def consolidate(b: int) -> None:
        """Keep each query's best ``m`` pooled candidates; raise its floor to the m-th."""
        if not pools[b]:
            return
        rs, re_ = r_blocks[b]
        q = torch.cat([p[0] for p in pools[b]])
        it = torch.cat([p[1] for p in pools[b]])
        v = torch.cat([p[2] for p in pools[b]])
        # one int32 sort key: query position (< 2^15 in a block) above the key's 16 bits, best first
        order = torch.argsort((q - rs).to(torch.int32) * 65536 + (32767 - v.to(torch.int32)))
        q, it, v = q[order], it[order], v[order]
        count = torch.bincount(q - rs, minlength=re_ - rs)
        rank = torch.arange(len(q)) - (torch.cumsum(count, 0) - count)[q - rs]
        keep = rank < m
        q, it, v, rank = q[keep], it[keep], v[keep], rank[keep]
        last = rank == m - 1
        floor[q[last]] = torch.maximum(floor[q[last]], v[last])
        pools[b] = [(q, it, v)]

    n_rounds = len(c_blocks)
    with _workers() as pool:
        for d in range(n_rounds):
            if symmetric:
                todo = [(bi, bi + d) for bi in range(len(r_blocks)) if bi + d < len(c_blocks)]
            else:
                todo = [(bi, (bi + d) % len(c_blocks)) for bi in range(len(r_blocks))]
            for found in pool.map(lambda ij: visit(*ij, first=d == 0), todo):
                for b, triple in found:
                    pools[b].append(triple)
            if d < 4 or d & (d - 1) == 0 or d == n_rounds - 1:  # after rounds 0-4, 8, 16, ...
                list(pool.map(consolidate, range(len(r_blocks))))
        list(pool.map(consolidate, range(len(r_blocks))))
        cand = torch.full((len(floor), m), -1, dtype=torch.int64)
        for (q, it, _), in (p for p in pools if p):
            count = torch.bincount(q - q.min(), minlength=1)
            cand[q, torch.arange(len(q)) - (torch.cumsum(count, 0) - count)[q - q.min()]] = it
        cand = cand[:nq]
        step = max(1, chunk // 4)
        parts = list(pool.map(lambda s: _rerank(Q[s:s + step], B, cand[s:s + step], k, step), range(0, nq, step)))
    sims, idx = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    unsure = torch.nonzero(floor[:nq] <= 0).flatten()
    if len(unsure):
        sims[unsure.numpy()], idx[unsure.numpy()] = _exact(Q, B, k, excl, chunk, rows=unsure)
    return sims, idx


@contextlib.contextmanager
def _workers():
    """A pool of one thread per torch thread, each running torch single-threaded: on a CPU shared with
    other processes, small ops in parallel regions wait on descheduled threads (5x slower here), while
    whole blocks per thread keep every core busy."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=n) as pool:
            yield pool
    finally:
        torch.set_num_threads(n)
