"""Catalogue figures: index build speed per stage, the storage choice, query latency, approximate vs exact.

    python benchmarks/index.py build   FOLDER --checkpoint CKPT [--workers 1 2]
    python benchmarks/index.py memory  --checkpoint CKPT [--minutes 6 30 60]
    python benchmarks/index.py storage [--rows 200000 --dim 128]
    python benchmarks/index.py query   INDEX [--rows 100000 1000000] [--queries 50] [--dim 128]
    python benchmarks/index.py ann     INDEX [--rows 0 100000 1000000] [--queries 200] [--nprobe ...] [--ef ...]
    python benchmarks/index.py tempo   INDEX --checkpoint CKPT --labels LABELS.csv [--ratios 0.9 1.1]

build: ``index build`` of FOLDER into a temporary index per worker count; prints audio hours, wall time and
x real time, and per stage (decode on the worker threads, frame, encode, write) the seconds and x real
time (audio seconds / stage seconds). Decode seconds are summed over threads, so decode x real time per
worker is printed too.

memory: peak RSS (VmHWM of a build subprocess: getrusage's ru_maxrss survives exec and would report the
parent's) of ``index build`` of one 44.1 kHz stereo noise file per length: flat in file length once a file
fills an encoder batch (64 crops).

storage: the vectors of an index as a ``.npy`` (memory-mapped) against a Parquet FixedSizeList<float32>
column: bytes on disk, write, open + read everything, and 1000 random rows (what search and the page do).

query: single-query latency of ``ssl_music.catalogue.search.search`` (exact float32 cosine, best crop per
track) on N-row catalogues made from INDEX's real crop embeddings: its rows, then copies moved by a random
offset of the index's own per-dimension spread and perturbed with 10 % noise (a synthetic catalogue with
the real embeddings' structure, not Gaussian noise). Then a bf16 shortlist re-scored in float32
(``--shortlist`` rows) as the approximate alternative: its latency and recall@10 against exact.

ann: the catalogue's exact search against faiss approximate indexes (faiss-cpu; skipped with a message when
it is not installed) on the same synthetic catalogues as ``query`` (``--rows 0``: INDEX's real crops as they
are). One set of L2-normalised rows, inner product, serves both levels: track level (every row a track, the
query a row, its own row left out) and crop level (tracks of ``--per`` consecutive rows, the query a track's
mean, ``--crop-k`` crops fetched and reduced to each track's best, the query's own track left out). Per
index: build seconds (train + add) and serialized bytes (~ its memory); per search setting (IVF-Flat nprobe
with nlist = sqrt(N), HNSW efSearch with M = ``--hnsw-m``, efConstruction 40): recall@10 of track ids
against the catalogue's exact ``search`` and median / p95 latency of one query at a time, one thread.

tempo: ``search --tempo-ratio`` on an index of labelled audio (a ``path`` and a ``tempo`` column, paths
relative to the CSV): every indexed track with a tempo is a query, searched as it is and moved by the
checkpoint's tempo translator to each ratio; among the top ``-k`` other tracks, the share within
``--tol`` (4 %) of the target tempo (ratio x the query's), over the queries some other track is that near
the target for (as the tempo-translation benchmark's retrieval).
"""
from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ssl_music.catalogue.build import build_index  # noqa: E402
from ssl_music.catalogue.search import Query, search  # noqa: E402
from ssl_music.catalogue.store import Catalogue, open_index  # noqa: E402


def bench_build(args) -> None:
    from ssl_music.api import load_encoder

    model = load_encoder(args.checkpoint)
    for workers in args.workers:
        out = Path(tempfile.mkdtemp(prefix="ssl_music_index_bench_"))
        try:
            r = build_index(args.folder, args.checkpoint, out / "idx", workers=workers, model=model,
                            batch_files=args.batch_files)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        s = r["stats"]
        audio = s["seconds"]
        print(f"build {args.folder}: {s['tracks']} tracks, {audio / 3600:.3f} h, skipped {s['skipped']}; "
              f"workers {workers}: wall {s['wall']:.2f} s = {audio / s['wall']:.0f}x real time")
        for stage in ("decode", "frame", "encode", "write"):
            x = audio / s[stage] if s[stage] > 0 else float("inf")
            extra = f"  ({x / workers:.0f}x per worker thread)" if stage == "decode" else ""
            print(f"  {stage:<7} {s[stage]:8.2f} s  {x:10.0f}x real time{extra}")
        print(f"  encoder waited for decode {s['wait']:.2f} s")


_PEAK = """
import json, re, sys
from ssl_music.catalogue.build import build_index
r = build_index(sys.argv[1], sys.argv[2], sys.argv[3], workers=2)
hwm = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
print(json.dumps({"rss_mb": hwm / 1024, "wall": r["stats"]["wall"], "seconds": r["stats"]["seconds"]}))
"""


def bench_memory(args) -> None:
    import json
    import subprocess

    import soundfile as sf

    root = Path(tempfile.mkdtemp(prefix="ssl_music_memory_"))
    try:
        for minutes in args.minutes:
            folder = root / f"m{minutes}"
            folder.mkdir()
            rng = np.random.default_rng(0)
            with sf.SoundFile(str(folder / "a.wav"), "w", 44100, 2, "PCM_16") as f:
                for _ in range(minutes):
                    f.write((rng.standard_normal((44100 * 60, 2)) * 0.1).astype(np.float32))
            res = subprocess.run([sys.executable, "-c", _PEAK, str(folder), args.checkpoint, str(root / f"i{minutes}")],
                                 capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
            if res.returncode:
                raise SystemExit(res.stderr[-3000:])
            r = json.loads(res.stdout.strip().splitlines()[-1])
            print(f"{minutes:>4} min 44.1 kHz stereo: peak RSS {r['rss_mb']:7.1f} MB  "
                  f"({r['seconds'] / r['wall']:.0f}x real time; a one-pass float32 decode alone: "
                  f"{minutes * 60 * 44100 * 2 * 4 / 2**20:.0f} MB)")
            (folder / "a.wav").unlink()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def bench_storage(args) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.rows, args.dim)).astype(np.float32)
    pick = np.sort(rng.choice(args.rows, 1000, replace=False))
    folder = Path(tempfile.mkdtemp(prefix="ssl_music_storage_"))
    try:
        t = time.perf_counter()
        np.save(folder / "v.npy", x)
        npy_write = time.perf_counter() - t
        t = time.perf_counter()
        m = np.load(folder / "v.npy", mmap_mode="r")
        float(np.asarray(m).sum())
        npy_read = time.perf_counter() - t
        t = time.perf_counter()
        np.asarray(np.load(folder / "v.npy", mmap_mode="r")[pick]).sum()
        npy_rows = time.perf_counter() - t
        col = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), args.dim)
        t = time.perf_counter()
        pq.write_table(pa.table({"v": col}), folder / "v.parquet", compression=args.compression)
        pq_write = time.perf_counter() - t
        t = time.perf_counter()
        tab = pq.read_table(folder / "v.parquet")
        y = tab.column("v").combine_chunks().flatten().to_numpy().reshape(-1, args.dim)
        float(y.sum())
        pq_read = time.perf_counter() - t
        t = time.perf_counter()
        tab = pq.read_table(folder / "v.parquet")
        tab.take(pick).column("v").combine_chunks().flatten().to_numpy().sum()
        pq_rows = time.perf_counter() - t
        sizes = {p.suffix: p.stat().st_size for p in folder.iterdir()}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    mb = 1 << 20
    print(f"storage of {args.rows} x {args.dim} float32 ({x.nbytes / mb:.1f} MiB in memory):")
    print(f"  .npy (mmap)         {sizes['.npy'] / mb:8.1f} MiB  write {npy_write:6.3f} s  read all {npy_read:6.3f} s  "
          f"1000 random rows {1000 * npy_rows:8.2f} ms")
    print(f"  parquet ({args.compression:<6})    {sizes['.parquet'] / mb:8.1f} MiB  write {pq_write:6.3f} s  "
          f"read all {pq_read:6.3f} s  1000 random rows {1000 * pq_rows:8.2f} ms")


def _synthetic(cat: Catalogue, rows: int, seed: int = 0, per: int = 60, dim: int | None = None,
               shift: float = 1.0) -> Catalogue:
    """``rows`` crops: the real ones, then moved and perturbed copies; tracks of ``per`` crops. Each copy is
    moved by ``shift`` times the per-dimension spread (a random direction per copy) and perturbed by 10 %."""
    import pyarrow as pa

    real = np.asarray(cat.crop_vectors, np.float32)
    if dim and dim != real.shape[1]:  # a fixed random projection keeps the neighbourhoods (Johnson-Lindenstrauss)
        real = real @ np.random.default_rng(123).standard_normal((real.shape[1], dim)).astype(np.float32)
    spread = real.std(axis=0) + 1e-6
    rng = np.random.default_rng(seed)
    out = np.empty((rows, real.shape[1]), np.float32)
    for start in range(0, rows, len(real)):
        n = min(len(real), rows - start)
        move = rng.standard_normal(real.shape[1]).astype(np.float32) * spread * shift if start else 0
        noise = rng.standard_normal((n, real.shape[1])).astype(np.float32) * 0.1 * spread if start else 0
        out[start:start + n] = real[:n] + move + noise
    n_tracks = -(-rows // per)
    track = np.arange(rows) // per
    ids = [f"t{i:07d}" for i in range(n_tracks)]
    tracks = pa.table({"track_id": ids, "path": ids, "duration_s": np.zeros(n_tracks),
                       "n_crops": np.full(n_tracks, per), "sample_rate": np.zeros(n_tracks, np.int64)})
    crops = pa.table({"track_id": pa.array(ids).take(pa.array(track)), "start_s": (np.arange(rows) % per) * 3.0,
                      "source": pa.array(ids).take(pa.array(track)), "source_start_s": (np.arange(rows) % per) * 3.0,
                      "track": track})
    tv = out if per == 1 else np.stack([out[i * per:(i + 1) * per].mean(axis=0) for i in range(n_tracks)])
    return Catalogue(cat.path, dict(cat.meta, embed_dim=out.shape[1]), tracks, crops, tv, out)


def _shortlist_search(crops: torch.Tensor, crops_bf16: torch.Tensor, inv_norm: torch.Tensor, track: torch.Tensor,
                      n_tracks: int, q: torch.Tensor, k: int, shortlist: int) -> list[int]:
    """bf16 scores for every crop, the best ``shortlist`` re-scored in float32, best crop per track."""
    approx = (crops_bf16 @ q.to(torch.bfloat16)).float() * inv_norm
    cand = torch.topk(approx, shortlist).indices
    sims = (crops[cand] @ q) * inv_norm[cand]
    best = torch.full((n_tracks,), -float("inf")).scatter_reduce(0, track[cand], sims, reduce="amax")
    return torch.topk(best, k).indices.tolist()


def bench_query(args) -> None:
    base = open_index(args.index)
    print(f"real crop embeddings: {base.crops.num_rows} x {base.meta['embed_dim']} from {args.index}"
          + (f", projected to {args.dim} dimensions" if args.dim else ""))
    rng = np.random.default_rng(1)
    for rows in args.rows:  # track level: every row a track, the query a track vector of the index
        cat = _synthetic(base, rows, per=1, dim=args.dim)
        picks = rng.choice(rows, args.queries, replace=False)
        queries = [Query(f"t{i}", np.asarray(cat.track_vectors[i]), track_id=f"t{i:07d}") for i in picks]
        search(cat, queries[0], k=10, level="track")
        times = []
        for q in queries:
            t = time.perf_counter()
            search(cat, q, k=10, level="track")
            times.append(time.perf_counter() - t)
        print(f"{rows:>9} tracks: exact track-level search median {1000 * statistics.median(times):7.1f} ms  "
              f"p90 {1000 * float(np.percentile(times, 90)):7.1f} ms")
    for rows in args.rows:
        cat = _synthetic(base, rows, dim=args.dim)
        picks = rng.choice(cat.tracks.num_rows, args.queries, replace=False)
        ids = cat.tracks.column("track_id")
        queries = [Query(f"t{i}", np.asarray(cat.track_vectors[i]), track_id=ids[int(i)].as_py()) for i in picks]
        search(cat, queries[0], k=10)  # warm-up
        times, exact = [], []
        for q in queries:
            t = time.perf_counter()
            res = search(cat, q, k=10)
            times.append(time.perf_counter() - t)
            exact.append([cat.track_row(h.track_id) for h in res.hits])
        print(f"{rows:>9} crops ({cat.tracks.num_rows} tracks): exact search median "
              f"{1000 * statistics.median(times):7.1f} ms"
              f"  p90 {1000 * float(np.percentile(times, 90)):7.1f} ms  (k=10, best crop per track, own track out)")
        crops = torch.from_numpy(np.ascontiguousarray(cat.crop_vectors))
        crops_bf16 = crops.to(torch.bfloat16)
        inv = 1 / crops.norm(dim=1).clamp_min(1e-12)
        track = torch.from_numpy(cat.crop_track)
        times, recall = [], []
        for q, ref, row in zip(queries, exact, picks):
            qv = torch.nn.functional.normalize(torch.tensor(q.vector), dim=0)
            t = time.perf_counter()
            with _one_torch_thread():
                got = _shortlist_search(crops, crops_bf16, inv, track, cat.tracks.num_rows, qv, 11, args.shortlist)
            times.append(time.perf_counter() - t)
            got = [g for g in got if g != row][:10]
            recall.append(len(set(got) & set(ref)) / max(1, len(ref)))
        print(f"{'':>9} bf16 shortlist {args.shortlist} + float32 re-score: median "
              f"{1000 * statistics.median(times):7.1f} ms"
              f"  recall@10 vs exact {np.mean(recall):.3f} (vectors already in memory)")


@contextlib.contextmanager
def _one_torch_thread():
    """The bf16 shortlist is torch (search itself is numpy on the CLI's one BLAS thread): one thread, likewise."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _latency(times: list[float]) -> str:
    return f"median {1000 * statistics.median(times):8.2f} ms  p95 {1000 * float(np.percentile(times, 95)):8.2f} ms"


def _faiss():
    try:
        import faiss
    except ImportError:
        print("faiss is not installed: approximate indexes skipped, exact search only "
              "(`pip install faiss-cpu` to measure them; it is not a dependency of ssl_music)")
        return None
    return faiss


def _ann_indexes(faiss, x: np.ndarray, args):
    """(name, index, build seconds, knob, settings) of every index measured on ``x``, one at a time (a
    million-row HNSW graph and the IVF lists need not be in memory together)."""
    n, d = x.shape
    t = time.perf_counter()
    flat = faiss.IndexFlatIP(d)
    flat.add(x)
    yield "faiss Flat (exact)", flat, time.perf_counter() - t, None, [None]
    del flat
    nlist = max(1, int(round(np.sqrt(n))))
    t = time.perf_counter()
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.train(x)
    ivf.add(x)
    yield f"IVF-Flat nlist {nlist}", ivf, time.perf_counter() - t, "nprobe", [p for p in args.nprobe if p <= nlist]
    del ivf
    t = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(d, args.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = args.ef_construction
    hnsw.add(x)
    yield f"HNSW M {args.hnsw_m}", hnsw, time.perf_counter() - t, "efSearch", list(args.ef)


def _runs(track: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end row of every track's crops (crops are stored track by track)."""
    starts = np.flatnonzero(np.r_[True, track[1:] != track[:-1]])
    assert np.array_equal(track[starts], np.arange(len(starts))), "crops not stored track by track"
    return starts, np.r_[starts[1:], len(track)]


def _scores_of(x: np.ndarray, qn: np.ndarray, level: str, runs) -> np.ndarray:
    """Exact cosine of every row (track level) or every track's best crop (crop level) with the unit ``qn``."""
    sims = x @ qn
    return sims if level == "track" else np.maximum.reduceat(sims, runs[0])


def _recall(got: list[int], ref: set[int], scores: np.ndarray, own: int) -> tuple[float, float]:
    """recall@10 of ``got`` against the exact answer ``ref``: as sets, and counting ties (an answer scoring at
    least the exact 10th best, less 1e-6, is as right as the one exact search happened to pick: the real
    corpus repeats loops, so many crops have identical embeddings)."""
    k = max(1, len(ref))
    others = np.delete(scores, own)
    tenth = np.partition(others, len(others) - k)[len(others) - k] if len(others) >= k else -np.inf
    tied = sum(1 for g in got[:k] if scores[g] >= tenth - 1e-6)
    return len(set(got) & ref) / k, tied / k


def _set(index, knob: str | None, value) -> None:
    if knob == "nprobe":
        index.nprobe = int(value)
    elif knob == "efSearch":
        index.hnsw.efSearch = int(value)


def bench_ann(args) -> None:
    faiss = _faiss()
    if faiss is not None:
        faiss.omp_set_num_threads(args.threads)
    base = open_index(args.index)
    real = base.crops.num_rows
    print(f"real crop embeddings: {real} x {base.meta['embed_dim']} ({base.tracks.num_rows} tracks) from {args.index}, "
          f"checkpoint {base.meta.get('checkpoint')}; {args.queries} single queries per setting, "
          f"{args.threads} faiss thread(s)" + (f", faiss {faiss.__version__}" if faiss is not None else ""))
    rng = np.random.default_rng(1)
    for rows in args.rows:
        rows = rows or real
        # the real index keeps its own tracks; a synthetic one has tracks of ``per`` consecutive rows
        crop_cat = base if rows == real else _synthetic(base, rows, per=args.per, shift=args.shift)
        track_cat = _synthetic(base, rows, per=1, shift=args.shift)   # the same rows (same seed), a track each
        assert np.array_equal(np.asarray(crop_cat.crop_vectors[:3]), track_cat.track_vectors[:3])
        kind = "real" if rows <= real else f"{real} real + moved/perturbed copies"
        per = "their real crops" if rows == real else f"{args.per} crops"
        print(f"\n== {rows} rows ({kind}); crop level: {crop_cat.tracks.num_rows} tracks of {per}; "
              f"float32 matrix {rows * crop_cat.crop_vectors.shape[1] * 4 / 2**20:.0f} MiB")
        levels = {}
        # track level: a row's vector finds other rows; crop level: a track's mean finds other tracks' best crops
        picks = rng.choice(rows, min(args.queries, rows), replace=False)
        ids = track_cat.tracks.column("track_id")
        levels["track"] = (track_cat, [Query(f"t{i}", np.asarray(track_cat.track_vectors[i]),
                                             track_id=ids[int(i)].as_py()) for i in picks], picks)
        picks = rng.choice(crop_cat.tracks.num_rows, min(args.queries, crop_cat.tracks.num_rows), replace=False)
        ids = crop_cat.tracks.column("track_id")
        levels["crop"] = (crop_cat, [Query(f"t{i}", np.asarray(crop_cat.track_vectors[i]),
                                           track_id=ids[int(i)].as_py()) for i in picks], picks)
        exact = {}
        for level, (cat, queries, own) in levels.items():
            search(cat, queries[0], k=10, level=level)   # warm-up: the cached norms and maps
            times, ref = [], []
            for q in queries:
                t = time.perf_counter()
                res = search(cat, q, k=10, level=level)
                times.append(time.perf_counter() - t)
                ref.append({cat.track_row(h.track_id) for h in res.hits})
            exact[level] = ref
            # how much of the answer lies in the query's own copy: near 1 means the copies barely mix
            copy = (lambda r: r // real) if level == "track" else (lambda r: r * args.per // real)
            same = np.mean([np.mean([copy(r) == copy(int(m)) for r in ref]) for ref, m in zip(ref, own)])
            print(f"  {level:<5} level  exact (ssl_music search, float32)          {_latency(times)}"
                  + (f"  (exact top 10 in the query's own copy: {same:.2f})" if rows > real else ""))
        if faiss is None:
            continue
        x = np.ascontiguousarray(crop_cat.crop_vectors, np.float32) * crop_cat.crop_inv_norm[:, None]
        track_of_row = crop_cat.crop_track
        runs = _runs(track_of_row)
        unit = {level: [np.asarray(q.vector, np.float32) / max(float(np.linalg.norm(q.vector)), 1e-12)
                        for q in queries] for level, (_, queries, _) in levels.items()}
        scores = {level: [_scores_of(x, qn, level, runs) for qn in unit[level]] for level in levels}
        for name, index, build_s, knob, settings in _ann_indexes(faiss, x, args):
            size = faiss.serialize_index(index).nbytes
            print(f"  {name}: build {build_s:7.1f} s, serialized {size / 2**20:7.1f} MiB")
            for value in settings:
                _set(index, knob, value)
                line = []
                for level, (cat, queries, own) in levels.items():
                    times, recall, tied = [], [], []
                    k = 11 if level == "track" else args.crop_k
                    for q, ref, mine, sc in zip(queries, exact[level], own, scores[level]):
                        qv = np.asarray(q.vector, np.float32)[None, :]
                        t = time.perf_counter()
                        qv = qv / max(float(np.linalg.norm(qv)), 1e-12)
                        _, found = index.search(qv, k)
                        found = found[0][found[0] >= 0]
                        if level == "track":
                            got = [int(r) for r in found if r != mine][:10]
                        else:   # rows come best first: the first time a track appears is its best crop
                            tracks = track_of_row[found]
                            _, first = np.unique(tracks, return_index=True)
                            got = [int(tr) for tr in tracks[np.sort(first)] if tr != mine][:10]
                        times.append(time.perf_counter() - t)
                        r, r_tied = _recall(got, ref, sc, int(mine))
                        recall.append(r)
                        tied.append(r_tied)
                    line.append(f"{level:<5} recall@10 {np.mean(recall):.3f} ({np.mean(tied):.3f} with ties)  "
                                f"{_latency(times)}")
                label = f"{knob} {value}" if knob else "exact"
                print(f"    {label:<13} " + "\n    {:<13} ".format("").join(line))


def bench_tempo(args) -> None:
    import csv
    import os

    from ssl_music.api import load_encoder
    from ssl_music.catalogue.search import check_model, translate_query

    cat = open_index(args.index)
    model = load_encoder(args.checkpoint)
    check_model(cat, model)
    root = Path(args.labels).resolve().parent
    with open(args.labels, newline="") as f:
        tempo = {os.path.abspath(root / r["path"]): float(r["tempo"]) for r in csv.DictReader(f) if r.get("tempo")}
    paths = cat.tracks.column("path").to_pylist()
    ids = cat.tracks.column("track_id").to_pylist()
    bpm = np.array([tempo.get(os.path.abspath(p), np.nan) for p in paths])
    rows = np.flatnonzero(np.isfinite(bpm))
    print(f"{len(rows)} of {len(paths)} indexed tracks have a tempo in {args.labels}; k = {args.k}, "
          f"within {100 * args.tol:g} % of the target tempo")
    near = lambda a, b: np.abs(np.log(a / b)) <= np.log1p(args.tol)  # noqa: E731
    for ratio in args.ratios:
        shares = {"untranslated": [], "translated": []}
        for i in rows:
            target = bpm[i] * ratio
            others = rows[rows != i]
            if not np.any(near(bpm[others], target)):
                continue   # no other track is near the target tempo: nothing to find
            for name in shares:
                q = Query(ids[i], np.asarray(cat.track_vectors[i], np.float32), track_id=ids[i])
                if name == "translated":
                    q = translate_query(q, model, ratio)
                hits = [cat.track_row(h.track_id) for h in search(cat, q, k=args.k, level=args.level).hits]
                found = bpm[hits]
                shares[name].append(float(np.mean(near(found[np.isfinite(found)], target))) if len(hits) else 0.0)
        un, tr = np.array(shares["untranslated"]), np.array(shares["translated"])
        chance = np.mean([np.mean(near(bpm[rows[rows != i]], bpm[i] * ratio)) for i in rows
                          if np.any(near(bpm[rows[rows != i]], bpm[i] * ratio))])
        diff = tr - un   # paired over queries: a bootstrap 95 % interval of the mean difference
        boot = np.random.default_rng(0).choice(diff, (2000, len(diff))).mean(axis=1)
        lo, hi = np.percentile(boot, [2.5, 97.5])
        verdict = "target met" if lo > 0 else ("not met" if hi <= 0 else "not shown (the interval holds 0)")
        print(f"ratio {ratio:g}: {len(diff)} queries; share of the top {args.k} within {100 * args.tol:g} % of the "
              f"target tempo: untranslated {un.mean():.4f}, translated {tr.mean():.4f} (any other track: "
              f"{chance:.4f}); translated - untranslated {diff.mean():+.4f} [95 % CI {lo:+.4f}, {hi:+.4f}], "
              f"better / worse / equal on {np.sum(diff > 0)} / {np.sum(diff < 0)} / {np.sum(diff == 0)} queries "
              f"-> {verdict}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    b = sub.add_parser("build")
    b.add_argument("folder")
    b.add_argument("--checkpoint", required=True)
    b.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    b.add_argument("--batch-files", type=int, default=32)
    b.set_defaults(func=bench_build)
    m = sub.add_parser("memory")
    m.add_argument("--checkpoint", required=True)
    m.add_argument("--minutes", type=int, nargs="+", default=[6, 30, 60])
    m.set_defaults(func=bench_memory)
    s = sub.add_parser("storage")
    s.add_argument("--rows", type=int, default=200_000)
    s.add_argument("--dim", type=int, default=128)
    s.add_argument("--compression", default="none")
    s.set_defaults(func=bench_storage)
    q = sub.add_parser("query")
    q.add_argument("index")
    q.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    q.add_argument("--queries", type=int, default=50)
    q.add_argument("--shortlist", type=int, default=2000)
    q.add_argument("--dim", type=int, default=None, help="project the real embeddings to this many dimensions")
    q.set_defaults(func=bench_query)
    a = sub.add_parser("ann", help="exact search against faiss IVF-Flat and HNSW on real embeddings")
    a.add_argument("index")
    a.add_argument("--rows", type=int, nargs="+", default=[0, 100_000, 1_000_000],
                   help="catalogue sizes; 0 = the index's real crops as they are")
    a.add_argument("--queries", type=int, default=200)
    a.add_argument("--per", type=int, default=60, help="crops per synthetic track (crop level)")
    a.add_argument("--shift", type=float, default=1.0,
                   help="how far each copy is moved, in per-dimension spreads (smaller: copies overlap more)")
    a.add_argument("--crop-k", type=int, default=256, help="crops an approximate index returns at crop level")
    a.add_argument("--nprobe", type=int, nargs="+", default=[1, 4, 8, 16, 32, 64])
    a.add_argument("--ef", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    a.add_argument("--hnsw-m", type=int, default=32)
    a.add_argument("--ef-construction", type=int, default=40)
    a.add_argument("--threads", type=int, default=1, help="faiss threads (build and search)")
    a.set_defaults(func=bench_ann)
    t = sub.add_parser("tempo", help="search --tempo-ratio: share of the top k near the target tempo")
    t.add_argument("index")
    t.add_argument("--checkpoint", required=True, help="the index's checkpoint, with a tempo translator")
    t.add_argument("--labels", required=True, help="CSV with path and tempo columns (paths relative to it)")
    t.add_argument("--ratios", type=float, nargs="+", default=[0.9, 1.1])
    t.add_argument("-k", type=int, default=10)
    t.add_argument("--tol", type=float, default=0.04)
    t.add_argument("--level", default="crop", choices=["crop", "track"])
    t.set_defaults(func=bench_tempo)
    args = p.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    args.func(args)


if __name__ == "__main__":
    main()
