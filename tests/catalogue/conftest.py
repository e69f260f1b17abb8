"""A checkpoint after 2 real training steps on the tiny shards, its index of the tiny corpus, built once."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def trained_checkpoint(tiny_shards, tmp_path_factory):
    from ssl_music.config import CONFIG_DIR, load_config
    from ssl_music.train import pretrain
    from tests.test_train import tiny_overrides

    root = tmp_path_factory.mktemp("catalogue_run") / "run"
    overrides = tiny_overrides(tiny_shards, root, **{"trainer.max_steps": 2, "trainer.ckpt_every_n_steps": 2})
    pretrain(load_config(CONFIG_DIR / "pretrain" / "multitask.yaml", overrides))
    return root / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="session")
def corpus_audio(tiny_corpus):
    from pathlib import Path

    return Path(tiny_corpus).parent / "audio"


@pytest.fixture(scope="session")
def built_index(trained_checkpoint, corpus_audio, tmp_path_factory):
    from ssl_music.catalogue.build import build_index

    out = tmp_path_factory.mktemp("index") / "idx"
    build_index(corpus_audio, trained_checkpoint, out, batch_files=5)
    return out


@pytest.fixture(scope="session")
def small_ckpt(tmp_path_factory):
    """An untrained tiny checkpoint (16 kHz, 1 s crops, 16 dims): no training, for tests of the index's plumbing."""
    from tests.evaluation.fakes import tiny_checkpoint

    return tiny_checkpoint(tmp_path_factory.mktemp("small") / "m.ckpt")
