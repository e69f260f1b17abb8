"""Streaming loader: resampled WebDataset shards -> seek-decoded views -> (CPU augment) -> batches.

Per worker the pipeline is

    resampled shards (this rank's and worker's) -> tar samples (raw bytes) -> shuffle buffer
    -> view sampler (seek-decodes only the crops) -> augmenter.apply_sample (backend cpu) -> batch

and the loader (``StreamLoader``, a ``wds.WebLoader``) caps every epoch at ``data.batches_per_epoch``
batches, so all ranks run the same number of steps whatever the shard sizes (DESIGN §6).

Splitting is explicit, never webdataset's: its default nodesplitter raises when world size > 1 and its
rank lookup inside workers reads ``RANK``/``WORLD_SIZE``, which Lightning does not set. Rank and world
size come from the caller (the DataModule captures them from the Trainer); the worker id comes from
``torch.utils.data.get_worker_info()``.

Bad data (unreadable shard, corrupt FLAC, missing json) is skipped, logged with the shard and key, and
counted; counts ride along in each batch as ``bad_samples`` and the loader sums them in
``StreamLoader.bad_sample_count``.
"""
from __future__ import annotations

import io
import itertools
import json
import logging
import random
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import soundfile as sf
import torch
import webdataset as wds
from torch.utils.data import IterableDataset, get_worker_info

from ssl_music.data.audio import to_mono
from ssl_music.data.shards import read_manifest
from ssl_music.data.views import ViewSampler, source_lengths
from ssl_music.errors import AudioError, ShardError, SSLMusicError

log = logging.getLogger(__name__)

BAD_KEY = "bad_samples"   # per-batch count of samples skipped since the worker's previous batch


# ------------------------------------------------------------------------------------ shard selection
def shard_list(data_cfg) -> list[tuple[str, int]]:
    """(path, samples) of the shards listed in ``data.shards``/manifest.json, after checking they fit
    this config."""
    if not data_cfg.shards:
        raise ShardError("no shards directory given (config key 'data.shards')")
    root = Path(data_cfg.shards)
    if not root.is_dir():
        raise ShardError(f"shards directory not found: {root} (config key 'data.shards')")
    manifest = read_manifest(root)
    built_sr = int(manifest["sample_rate"])
    if built_sr != int(data_cfg.sample_rate):
        raise ShardError(f"{root / 'manifest.json'}: shards were built at {built_sr} Hz but "
                         f"data.sample_rate is {data_cfg.sample_rate} Hz; rebuild the shards or set "
                         f"data.sample_rate={built_sr}")
    shards = [(str(root / s["name"]), int(s["samples"])) for s in manifest["shards"] if int(s["samples"]) > 0]
    if not shards:
        raise ShardError(f"{root / 'manifest.json'}: lists no shard with samples")
    missing = [u for u, _ in shards if not Path(u).is_file()]
    if missing:
        raise ShardError(f"{root}: {len(missing)} shard(s) listed in manifest.json are missing, "
                         f"e.g. {missing[0]}")
    return shards


def shard_urls(data_cfg) -> list[str]:
    """Just the paths of ``shard_list``."""
    return [u for u, _ in shard_list(data_cfg)]


def assign_shards(items: Sequence, rank: int, world_size: int, worker: int, num_workers: int) -> list:
    """The shards one (rank, worker) resamples from.

    Ranks get disjoint strided subsets when there are at least ``world_size`` shards, and workers
    disjoint subsets of their rank's when there are enough; otherwise the whole (rank's) list is shared
    and the streams differ only through their seeds (which include rank and worker)."""
    mine = list(items)
    if len(mine) >= world_size:
        mine = mine[rank::world_size]
    if len(mine) >= num_workers:
        mine = mine[worker::num_workers]
    return mine


def resampled_shards(shards: Sequence[tuple[str, int]], rng: random.Random) -> Iterator[dict]:
    """Endless shard draws with replacement, weighted by sample count.

    webdataset's ResampledShards draws shards uniformly, which over-samples the segments of small
    shards (a 5 MB last shard next to 256 MB ones would be read as often as each of them); weighting by
    the manifest's sample counts makes every segment of a worker's shards equally likely."""
    urls = [u for u, _ in shards]
    cum = list(itertools.accumulate(n for _, n in shards))
    while True:
        yield {"url": rng.choices(urls, cum_weights=cum)[0]}


def stream_seed(seed: int, rank: int, worker: int, epoch: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(seed), int(rank), int(worker), int(epoch)])


# ------------------------------------------------------------------------------------ batching
def collate(samples: list[dict]) -> dict:
    """List of sample dicts -> dict of stacked tensors (float arrays as float32); strings stay lists."""
    out = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        if isinstance(values[0], str):
            out[key] = values
            continue
        arr = np.stack([np.asarray(v) for v in values])
        if arr.dtype.kind == "f":
            arr = arr.astype(np.float32, copy=False)
        out[key] = torch.from_numpy(np.ascontiguousarray(arr))
    return out


# ------------------------------------------------------------------------------------ the stream
def segment_reader(flac: bytes, name: str) -> tuple[int, int, Callable[[int, int], np.ndarray]]:
    """(n_frames, sample_rate, read) for one encoded segment; only the header is parsed here.

    One SoundFile stays open per segment and every ``read(start, frames)`` seeks in it: the same
    libsndfile seek as ``audio.decode_bytes(b, start, frames)``, without re-parsing the header (twice,
    there) for each crop -- that parsing was a third of the loader's per-crop cost."""
    try:
        f = sf.SoundFile(io.BytesIO(flac))
    except (sf.LibsndfileError, RuntimeError, ValueError, EOFError) as exc:
        raise AudioError(f"{name}: cannot read audio header ({exc})") from None

    def read(start: int, frames: int) -> np.ndarray:
        try:
            f.seek(start)
            x = f.read(frames, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, ValueError, EOFError) as exc:
            raise AudioError(f"{name}: cannot decode frames {start}..{start + frames} ({exc})") from None
        return to_mono(x.T)

    return int(f.frames), int(f.samplerate), read


class ShardStream(IterableDataset):
    """Infinite stream of batches for one rank; each DataLoader worker runs its own pipeline.

    ``epoch`` is bumped by ``StreamLoader`` before each epoch (workers are not persistent, so each
    epoch's workers receive the new value) and enters every seed: no two epochs, ranks or workers
    repeat a stream, and a run is reproducible from ``data.seed``."""

    def __init__(self, shards: Sequence[tuple[str, int]], data_cfg, views: Mapping[str, Callable], augmenter=None,
                 rank: int = 0, world_size: int = 1):
        super().__init__()
        self.shards = list(shards)
        self.data_cfg = data_cfg
        self.samplers = dict(views)  # view -> sampler factory (ssl_music.objectives.view_samplers)
        self.views = list(views)
        self.augmenter = augmenter
        self.rank, self.world_size = int(rank), int(world_size)
        self.epoch = 0
        self.source_len = source_lengths(data_cfg, self.views, augmenter)
        self._bad = 0                 # skipped since the last emitted batch (this worker)
        self._opens_since_good = 0    # shard opens since the last good sample
        self._max_opens = 0

    # -- error accounting --------------------------------------------------------------------------
    def _skip(self, exn: Exception) -> bool:
        """webdataset handler for shard-level failures: log, count, continue."""
        self._bad += 1
        log.warning("skipping unreadable shard data: %r", exn)
        return True

    def _count_opens(self, shards: Iterator[dict]) -> Iterator[dict]:
        # A worker whose every shard is unreadable would otherwise loop forever yielding nothing.
        for shard in shards:
            self._opens_since_good += 1
            if self._opens_since_good > self._max_opens:
                raise ShardError(f"no readable sample in {self._opens_since_good} shard reads from "
                                 f"{self.shards[0][0]} ... (rank {self.rank}); check the shards with "
                                 f"`ssl-music shards verify`")
            yield shard

    # -- per-sample work ---------------------------------------------------------------------------
    def _views(self, samples: Iterator[dict], rng: np.random.Generator) -> Iterator[dict]:
        sampler = ViewSampler(self.data_cfg, self.samplers, self.source_len)
        cpu_augment = self.augmenter is not None and self.augmenter.backend == "cpu"
        sr = int(self.data_cfg.sample_rate)
        for raw in samples:
            key, url = raw.get("__key__", "?"), raw.get("__url__", "?")
            name = f"{url}:{key}"
            try:
                if "flac" not in raw or "json" not in raw:
                    raise ShardError(f"{name}: missing {'flac' if 'flac' not in raw else 'json'} entry")
                meta = json.loads(raw["json"])
                n_frames, file_sr, read = segment_reader(raw["flac"], name)
                if file_sr != sr:
                    raise AudioError(f"{name}: sample rate {file_sr} Hz, expected {sr} Hz")
                sample = sampler(str(meta["track_id"]), n_frames, read, rng)
            except (SSLMusicError, KeyError, ValueError, TypeError) as exc:
                self._bad += 1
                log.warning("skipping bad sample %s from %s: %s", key, url, exc)
                continue
            self._opens_since_good = 0
            if cpu_augment:
                sample = self.augmenter.apply_sample(sample, rng)
            sample["__key__"], sample["__url__"] = key, url
            yield sample

    def _batches(self, samples: Iterator[dict]) -> Iterator[dict]:
        for batch in wds.batched(int(self.data_cfg.batch_size), collation_fn=collate, partial=False)(samples):
            batch[BAD_KEY], self._bad = self._bad, 0
            yield batch

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        shards = assign_shards(self.shards, self.rank, self.world_size, worker, num_workers)
        ss = stream_seed(self.data_cfg.seed, self.rank, worker, self.epoch)
        shard_seed, shuffle_seed = (int(x) for x in ss.generate_state(2))
        rng = np.random.default_rng(ss)
        buffer = int(self.data_cfg.shuffle_buffer)
        self._opens_since_good = 0
        self._max_opens = buffer + 10 * len(shards) + 20
        stages = [
            lambda: resampled_shards(shards, random.Random(shard_seed)),
            self._count_opens,
            wds.tarfile_to_samples(handler=self._skip),
            # Raw bytes are shuffled; nothing is decoded until the view sampler seeks.
            wds.shuffle(buffer, initial=buffer, rng=random.Random(shuffle_seed)) if buffer > 1 else None,
            lambda src: self._views(src, rng),
            self._batches,
        ]
        return iter(wds.DataPipeline(*stages))


class StreamLoader(wds.WebLoader):
    """WebLoader over a ShardStream: exactly ``batches_per_epoch`` batches per epoch (``with_epoch``
    counts on the loader, i.e. per rank, not per worker), a fresh seed each epoch, and a running
    ``bad_sample_count`` gathered from the workers."""

    def __init__(self, stream: ShardStream, num_workers: int):
        super().__init__(stream, batch_size=None, num_workers=num_workers, persistent_workers=False)
        self.stream = stream
        self.bad_sample_count = 0

    def iterator1(self):
        self.stream.epoch += 1
        for batch in super().iterator1():
            self.bad_sample_count += int(batch.pop(BAD_KEY))
            yield batch


def make_loader(data_cfg, views: Mapping[str, Callable], augmenter=None, rank: int = 0,
                world_size: int = 1) -> StreamLoader:
    """The training loader of one rank. ``len(loader) == data.batches_per_epoch``. ``views``: view name ->
    sampler factory, ``ssl_music.objectives.view_samplers(names)``."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world size {world_size}")
    stream = ShardStream(shard_list(data_cfg), data_cfg, views, augmenter, rank, world_size)
    n = int(data_cfg.batches_per_epoch)
    return StreamLoader(stream, int(data_cfg.num_workers)).with_epoch(n).with_length(n, silent=True)
