"""benchmarks/index.py ann: exact search alone without faiss (said so), and with faiss its exact Flat index
agrees with the catalogue's search (recall 1 with ties counted) at both levels: ``crop_k`` covers every row,
so the crop-level reduction to each track's best crop is checked too."""
from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "index.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_index", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _args(index, **kw):
    base = dict(index=str(index), rows=[0, 1500], queries=4, per=5, shift=1.0, crop_k=2000, nprobe=[1, 64],
                ef=[16], hnsw_m=8, ef_construction=40, threads=1)
    return argparse.Namespace(**{**base, **kw})


def test_ann_without_faiss_measures_exact_only(built_index, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "faiss", None)   # import faiss -> ImportError
    _bench().bench_ann(_args(built_index))
    out = capsys.readouterr().out
    assert "faiss is not installed: approximate indexes skipped" in out
    assert len(re.findall(r"level  exact \(ssl_music search", out)) == 4   # 2 sizes x 2 levels
    assert "IVF" not in out and "HNSW" not in out


def test_ann_faiss_exact_index_agrees_with_the_catalogue(built_index, capsys):
    pytest.importorskip("faiss")
    _bench().bench_ann(_args(built_index))
    out = capsys.readouterr().out
    flat = out.split("faiss Flat (exact)")[1:]
    assert len(flat) == 2
    for block in flat:
        ties = re.findall(r"recall@10 [\d.]+ \(([\d.]+) with ties\)", block.split("IVF-Flat")[0])
        assert ties and all(float(t) == 1.0 for t in ties), block
    assert "IVF-Flat nlist" in out and "HNSW M 8" in out
