"""Which objective trains which part of the embedding."""
import pytest
import torch
from omegaconf import OmegaConf

from ssl_music.config import CONFIG_DIR, load_config
from ssl_music.errors import SSLMusicError
from ssl_music.module import PretrainModule


def _module(*overrides):
    cfg = load_config(CONFIG_DIR / "pretrain" / "demo.yaml", [
        "data.shards=unused", "monitor.every_n_steps=0", "model.width=8", "model.embed_dim=32", "augment.preset=none", *overrides])
    return PretrainModule(OmegaConf.to_container(cfg, resolve=True))


def _batch(module, b=3):
    n = int(module.cfg.data.crop_s * module.cfg.data.sample_rate)
    g = torch.Generator().manual_seed(0)
    views = {"contrastive": 2, "triplet": 3, "tempo": 2}
    batch = {name: torch.randn(b, v, n, generator=g) * 0.1 for name, v in views.items()}
    batch["tempo_same"] = torch.tensor([1.0, 0.0, 1.0])[:b]
    return batch


@pytest.mark.parametrize("objective", ["contrastive", "triplet"])
def test_projector_objectives_train_the_learned_block_not_the_periodicity_block(objective):
    others = [f"objectives.{o}.weight=0" for o in ("contrastive", "triplet", "tempo") if o != objective]
    module = _module(*others)
    enc = module.encoder
    assert enc.content_dim == enc.embed_dim - enc.encoder.periodicity.out_dim < enc.embed_dim
    assert module.projector[0].in_features == enc.content_dim
    module.compute_losses(_batch(module))[objective].backward()
    assert enc.encoder.head[-1].weight.grad.abs().sum() > 0
    grad = enc.encoder.periodicity.proj[0].weight.grad
    assert grad is None or grad.abs().sum() == 0


def test_tempo_objective_trains_both_blocks():
    module = _module("objectives.contrastive.weight=0", "objectives.triplet.weight=0")
    module.compute_losses(_batch(module))["tempo"].backward()
    enc = module.encoder.encoder
    assert enc.periodicity.proj[0].weight.grad.abs().sum() > 0
    assert enc.head[-1].weight.grad.abs().sum() > 0


def test_without_periodicity_the_projector_reads_the_whole_embedding():
    module = _module("model.periodicity=false", "objectives.tempo.weight=0")
    assert module.encoder.content_dim == module.encoder.embed_dim == module.projector[0].in_features


def test_resuming_a_checkpoint_whose_projector_read_the_whole_embedding_is_refused_with_the_reason():
    module = _module()
    old = {k: v.clone() for k, v in module.state_dict().items()}
    old["projector.0.weight"] = torch.zeros(module.projector[0].out_features, module.encoder.embed_dim)
    with pytest.raises(SSLMusicError, match="ssl_music.checkpoint/1 checkpoint.*new trainer.root_dir"):
        module.on_load_checkpoint({"state_dict": old, "ssl_music": {"format": "ssl_music.checkpoint/1"}})
    module.on_load_checkpoint({"state_dict": module.state_dict(), "ssl_music": {"format": "ssl_music.checkpoint/2"}})
