import io
import json
import logging
import random
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import webdataset as wds
from omegaconf import OmegaConf

from ssl_music.config import schema
from ssl_music.data.datamodule import ShardDataModule
from ssl_music.data.stream import assign_shards, make_loader, resampled_shards, shard_urls
from ssl_music.objectives import view_samplers
from ssl_music.errors import ShardError

SR = 16000
SECONDS = 2.0


def _flac(x, sr=SR):
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def write_shards(root: Path, sizes, sr=SR, seconds=SECONDS, corrupt=(), no_json=()):
    """Shards in the contract's format; sample i of shard j is track f"t{j}_{i}". ``corrupt`` and
    ``no_json`` are (shard, index) pairs written with garbage FLAC bytes / without metadata."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    entries = []
    for j, n in enumerate(sizes):
        name = f"shard-{j:06d}.tar"
        with wds.TarWriter(str(root / name)) as w:
            for i in range(n):
                tid = f"t{j}_{i}"
                x = (0.2 * rng.standard_normal(int(seconds * sr))).astype(np.float32)
                sample = {"__key__": f"{tid}__0000",
                          "flac": b"not a flac file" * 10 if (j, i) in corrupt else _flac(x, sr)}
                if (j, i) not in no_json:
                    sample["json"] = json.dumps({"track_id": tid, "segment": 0, "offset_s": 0.0,
                                                 "duration_s": seconds, "sample_rate": sr, "channels": 1,
                                                 "source": f"{tid}.wav", "labels": {}}).encode()
                w.write(sample)
        entries.append({"name": name, "samples": n, "hours": n * seconds / 3600, "sha256": "0" * 64})
    manifest = {"format": "ssl_music.shards/1", "sample_rate": sr, "channels": 1, "settings": {},
                "shards": entries, "total_samples": sum(sizes),
                "total_hours": sum(sizes) * seconds / 3600, "skipped": []}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def cfg_for(root, **kw):
    cfg = schema().data
    base = {"shards": str(root), "crop_s": 0.25, "batch_size": 2, "num_workers": 0,
            "batches_per_epoch": 4, "shuffle_buffer": 4}
    base.update(kw)
    cfg.merge_with(OmegaConf.from_dotlist([f"{k}={v}" for k, v in base.items()]))
    return cfg


def shard_of(url):
    return Path(url).name


def test_assign_shards_disjoint_and_fallbacks():
    urls = [f"s{i}" for i in range(8)]
    parts = [assign_shards(urls, r, 2, w, 2) for r in range(2) for w in range(2)]
    assert sorted(sum(parts, [])) == sorted(urls)                     # a partition ...
    assert all(len(p) == 2 for p in parts)                            # ... into equal disjoint parts
    assert assign_shards(urls[:1], 1, 2, 0, 1) == urls[:1]            # fewer shards than ranks: share
    assert assign_shards(urls[:3], 0, 2, 1, 4) == ["s0", "s2"]        # fewer than workers: rank's whole set


def test_resampling_is_weighted_by_sample_count():
    it = resampled_shards([("small", 1), ("big", 9)], random.Random(0))
    counts = Counter(next(it)["url"] for _ in range(5000))
    assert 0.87 < counts["big"] / 5000 < 0.93


def test_two_ranks_two_workers_read_disjoint_shards(tmp_path):
    root = write_shards(tmp_path / "shards", [3] * 8)
    cfg = cfg_for(root, num_workers=2, batch_size=3, batches_per_epoch=12)
    assert len(shard_urls(cfg)) == 8
    seen = {}
    for rank in range(2):
        # strided: rank r takes shards r, r+2, r+4, r+6; its worker w every other one of those
        worker_sets = [{f"shard-{j:06d}.tar" for j in range(rank, 8, 2) if (j // 2) % 2 == w}
                       for w in range(2)]
        seen[rank] = set()
        for batch in make_loader(cfg, view_samplers(["contrastive"]), rank=rank, world_size=2):
            shards = set(map(shard_of, batch["__url__"]))
            # a batch is built inside one worker, so it must lie within that worker's shards
            assert any(shards <= ws for ws in worker_sets), (rank, shards, worker_sets)
            seen[rank] |= shards
        assert all(seen[rank] & ws for ws in worker_sets)   # both workers contributed
    assert not seen[0] & seen[1]
    assert len(seen[0] | seen[1]) == 8


@pytest.mark.timeout(60)
def test_uneven_shards_give_every_rank_the_same_batch_count(tmp_path):
    root = write_shards(tmp_path / "shards", [1, 7, 2, 11])
    cfg = cfg_for(root, num_workers=2, batches_per_epoch=5)
    for rank in range(2):
        loader = make_loader(cfg, view_samplers(["contrastive", "tempo"]), rank=rank, world_size=2)
        assert len(loader) == 5
        counts = [sum(1 for _ in loader) for _epoch in range(2)]
        assert counts == [5, 5], (rank, counts)


def test_batch_shapes_without_augmenter(tmp_path):
    root = write_shards(tmp_path / "shards", [4, 4])
    cfg = cfg_for(root, **{"contrastive.n_views": 3, "contrastive.max_gap_s": 0.5,
                           "triplet.pos_max_s": 0.25, "triplet.neg_min_s": 0.5, "triplet.neg_max_s": 1.0})
    batch = next(iter(make_loader(cfg, view_samplers(["contrastive", "triplet", "tempo"]))))
    L = 4000
    assert tuple(batch["contrastive"].shape) == (2, 3, L)
    assert tuple(batch["triplet"].shape) == (2, 3, L)
    assert tuple(batch["tempo"].shape) == (2, 2, L)
    assert str(batch["contrastive"].dtype) == "torch.float32"
    assert len(batch["track_id"]) == 2 and all(t.startswith("t") for t in batch["track_id"])
    assert "bad_samples" not in batch


class FakeAugmenter:
    """Contract stand-in: source_factor 1.25 for every view; cpu apply_sample cuts to L."""

    def __init__(self, backend, L):
        self.backend, self.L, self.calls = backend, L, 0

    def source_factor(self, view):
        return 1.25

    def apply_sample(self, sample, rng):
        out = dict(sample)
        for v in ("contrastive", "triplet", "tempo"):
            if v in out:
                out[v] = out[v][:, : self.L]
        if "tempo" in out:
            out["tempo_same"] = np.float32(rng.random() < 0.5)
            out["tempo_rates"] = np.array([1.0, 1.1], dtype=np.float32)
        return out


@pytest.mark.parametrize("backend, length", [("cpu", 4000), ("gpu", 5000)])
def test_augmenter_backend_decides_where_views_are_cut(tmp_path, backend, length):
    root = write_shards(tmp_path / "shards", [4, 4])
    cfg = cfg_for(root)
    batch = next(iter(make_loader(cfg, view_samplers(["contrastive", "tempo"]), augmenter=FakeAugmenter(backend, 4000))))
    assert tuple(batch["contrastive"].shape) == (2, 2, length)   # source length S_c = ceil(0.25*16k*1.25)
    assert tuple(batch["tempo"].shape) == (2, 2, length)
    assert ("tempo_same" in batch) == (backend == "cpu")
    if backend == "cpu":
        assert tuple(batch["tempo_same"].shape) == (2,) and tuple(batch["tempo_rates"].shape) == (2, 2)


def test_corrupt_and_incomplete_samples_are_skipped_and_counted(tmp_path, caplog):
    root = write_shards(tmp_path / "shards", [6], corrupt={(0, 1), (0, 4)}, no_json={(0, 2)})
    cfg = cfg_for(root, batches_per_epoch=6, shuffle_buffer=1)
    loader = make_loader(cfg, view_samplers(["contrastive"]))
    with caplog.at_level(logging.WARNING, logger="ssl_music.data.stream"):
        ids = [t for batch in loader for t in batch["track_id"]]
    assert len(ids) == 12
    assert set(ids) == {"t0_0", "t0_3", "t0_5"}
    # 6 batches of 2 good samples = 4 passes over the shard, each with 3 bad samples
    assert loader.bad_sample_count >= 9
    assert "t0_1__0000" in caplog.text and "shard-000000.tar" in caplog.text
    assert "t0_2__0000" in caplog.text


def test_unreadable_shard_is_skipped(tmp_path, caplog):
    root = write_shards(tmp_path / "shards", [3, 3])
    (root / "shard-000001.tar").write_bytes(b"\x00garbage" * 100)
    cfg = cfg_for(root, batches_per_epoch=6)
    loader = make_loader(cfg, view_samplers(["contrastive"]))
    with caplog.at_level(logging.WARNING, logger="ssl_music.data.stream"):
        ids = {t for batch in loader for t in batch["track_id"]}
    assert ids <= {"t0_0", "t0_1", "t0_2"}
    assert loader.bad_sample_count > 0
    assert "shard-000001.tar" in caplog.text


@pytest.mark.timeout(60)
def test_all_shards_unreadable_raises_instead_of_hanging(tmp_path):
    root = write_shards(tmp_path / "shards", [2, 2], corrupt={(0, 0), (0, 1), (1, 0), (1, 1)})
    with pytest.raises(ShardError, match="no readable sample"):
        next(iter(make_loader(cfg_for(root), view_samplers(["contrastive"]))))


def test_wrong_sample_rate_is_refused_naming_both(tmp_path):
    root = write_shards(tmp_path / "shards", [2], sr=8000)
    with pytest.raises(ShardError) as exc:
        make_loader(cfg_for(root), view_samplers(["contrastive"]))
    msg = str(exc.value)
    assert "8000" in msg and "16000" in msg and str(root) in msg


def test_missing_or_empty_shards_dir_raises_with_path(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ShardError, match=str(missing)):
        make_loader(cfg_for(missing), view_samplers(["contrastive"]))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ShardError, match="empty"):
        make_loader(cfg_for(empty), view_samplers(["contrastive"]))


def test_epochs_reseed_and_runs_reproduce(tmp_path):
    root = write_shards(tmp_path / "shards", [5, 5])
    cfg = cfg_for(root, batches_per_epoch=3)

    def epochs(loader, n=2):
        return [np.concatenate([b["contrastive"].numpy().ravel() for b in loader]) for _ in range(n)]

    a, b = epochs(make_loader(cfg, view_samplers(["contrastive"]))), epochs(make_loader(cfg, view_samplers(["contrastive"])))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], a[1])


def test_datamodule_rank_from_trainer_or_kwargs(tmp_path):
    root = write_shards(tmp_path / "shards", [2, 2, 2, 2])
    cfg = cfg_for(root, batches_per_epoch=2)
    dm = ShardDataModule(cfg, view_samplers(["contrastive"]))
    dm.setup("fit")
    assert (dm.rank, dm.world_size) == (0, 1)
    dm.trainer = SimpleNamespace(global_rank=1, world_size=2)
    dm.setup("fit")
    assert (dm.rank, dm.world_size) == (1, 2)
    shards = {shard_of(u) for batch in dm.train_dataloader() for u in batch["__url__"]}
    assert shards <= {"shard-000001.tar", "shard-000003.tar"}
    assert dm.bad_sample_count == 0
    explicit = ShardDataModule(cfg, view_samplers(["contrastive"]), rank=0, world_size=4)
    explicit.trainer = SimpleNamespace(global_rank=1, world_size=2)
    explicit.setup("fit")
    assert (explicit.rank, explicit.world_size) == (0, 4)


def test_loader_reads_shards_from_build_shards(tmp_path):
    from ssl_music.data.shards import build_shards

    audio = tmp_path / "audio"
    audio.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        sf.write(audio / f"track {i}.wav", (0.2 * rng.standard_normal(int(3.5 * SR))).astype(np.float32), SR)
    build_shards(audio, tmp_path / "shards", sample_rate=SR, segment_seconds=2.0, progress=False)
    cfg = cfg_for(tmp_path / "shards", batches_per_epoch=3)
    loader = make_loader(cfg, view_samplers(["contrastive", "triplet", "tempo"]))
    batches = list(loader)
    assert len(batches) == 3 and loader.bad_sample_count == 0
    assert tuple(batches[0]["triplet"].shape) == (2, 3, 4000)
    keys = {k for b in batches for k in b["__key__"]}
    assert all(k.split("__")[1] in ("0000", "0001") for k in keys)
