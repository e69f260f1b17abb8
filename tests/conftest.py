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


@pytest.fixture(scope="session")
def translator_checkpoint(tiny_shards, tmp_path_factory):
    """A tiny checkpoint whose encoder hears tempo (periodicity block) with a tempo translator trained beside
    it by `ssl-music tempo translate-train` on the tiny shards (a few steps)."""
    import torch

    from ssl_music.api import EmbeddingModel
    from ssl_music.checkpoint import metadata
    from ssl_music.cli import main
    from ssl_music.config import load_config, to_container

    cfg = load_config(overrides=["model.encoder=tiny", "model.width=8", "model.embed_dim=16", "data.crop_s=1.0",
                                 "model.periodicity=true", "objectives.tempo.weight=0"])
    m = EmbeddingModel.from_config(cfg, seed=1)
    path = tmp_path_factory.mktemp("translator") / "m.ckpt"
    torch.save({"ssl_music": metadata(to_container(cfg)),
                "state_dict": {f"encoder.{k}": v for k, v in m.encoder.state_dict().items()}}, str(path))
    rc = main(["tempo", "translate-train", "--checkpoint", str(path), "--shards", str(tiny_shards),
               "--segments-per-batch", "8", "--workers", "0", "--quiet", "crops=64", "rates_per_crop=2", "steps=300",
               "batch_size=64", "hidden=64", "holdout=0.25"])
    assert rc == 0
    return path
