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
    assert module.heads["projector"][0].in_features == enc.content_dim
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
    assert module.encoder.content_dim == module.encoder.embed_dim == module.heads["projector"][0].in_features


def test_resuming_a_checkpoint_whose_projector_read_the_whole_embedding_is_refused_with_the_reason():
    module = _module()
    # a /1 checkpoint keeps its heads at the top level (projector.*), from before the heads mapping
    old = {k.removeprefix("heads."): v.clone() for k, v in module.state_dict().items()}
    old["projector.0.weight"] = torch.zeros(module.heads["projector"][0].out_features, module.encoder.embed_dim)
    with pytest.raises(SSLMusicError, match="ssl_music.checkpoint/1 checkpoint.*new trainer.root_dir"):
        module.on_load_checkpoint({"state_dict": old, "ssl_music": {"format": "ssl_music.checkpoint/1"}})
    module.on_load_checkpoint({"state_dict": module.state_dict(), "ssl_music": {"format": "ssl_music.checkpoint/2"}})


def test_perf_shares_split_the_step_into_waiting_augmenting_and_the_rest(monkeypatch):
    # between the previous batch's end (t=10.0) and this one's (11.0): augmentation 0.2 s, then the batch
    # started at 10.5, so 0.3 s went waiting for data and 0.5 s into the step itself
    module = _module("trainer.log_every_n_steps=1")
    logged = {}
    monkeypatch.setattr(module, "log", lambda name, value, **kw: logged.__setitem__(name, float(value)))
    monkeypatch.setattr("ssl_music.module.time.perf_counter", lambda: 11.0)
    module._t_batch_end, module._t_augment, module._t_batch_start = 10.0, 0.2, 10.5
    batch = _batch(module)
    module.on_train_batch_end(None, batch, 0)
    assert logged["perf/augment_share"] == pytest.approx(0.2)
    assert logged["perf/data_wait_share"] == pytest.approx(0.3)
    assert logged["perf/clips_per_s"] == pytest.approx(3 * (2 + 3 + 2) / 1.0)
