"""Shared fixtures: a tiny synthetic corpus and its shards, built once per test session."""
import os

import pytest

os.environ.setdefault("WANDB_MODE", "disabled")


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    from ssl_music.data.synth import generate_corpus

    out = tmp_path_factory.mktemp("corpus")
    return generate_corpus(out, n_tracks=12, seconds=20.0, seed=3)


@pytest.fixture(scope="session")
def tiny_shards(tiny_corpus, tmp_path_factory):
    from ssl_music.data.shards import build_shards

    out = tmp_path_factory.mktemp("shards")
    build_shards(tiny_corpus, out, sample_rate=16000, segment_seconds=60, shard_size_mb=1, workers=1, progress=False)
    return out
