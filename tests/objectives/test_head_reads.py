"""A head reads the named parts its objective declares (objectives.<name>.reads) and nothing else."""
import pytest
import torch

from ssl_music.config import ConfigError, load_config, to_container
from ssl_music.module import PretrainModule


def _module(*extra):
    cfg = load_config(overrides=["model.encoder=tiny", "model.width=8", "model.embed_dim=32", "data.crop_s=0.5",
                                 "model.periodicity=fixed", "model.tempo_hidden=8", "model.head_split=[12,8,8]",
                                 "objectives.contrastive.weight=0", "objectives.tempo.weight=1",
                                 "objectives.subspaces.weight=1", "objectives.subspaces.dims=[12,8,8]", *extra])
    torch.manual_seed(0)
    return PretrainModule(to_container(cfg))


def _tempo_grads(module) -> dict[str, float]:
    """Summed |grad| of the tempo loss on each part's own dense head."""
    b = 4
    batch = {"tempo": torch.randn(b, 2, module.augmenter.out_len) * 0.1,
             "tempo_same": torch.tensor([1.0, 0.0, 1.0, 0.0])}
    module.objectives = ["tempo"]    # the tempo loss alone
    module.compute_losses(batch)["tempo"].backward()
    parts = module.encoder.encoder.head.parts
    return {name: sum(float(p.grad.abs().sum()) if p.grad is not None else 0.0 for p in part.parameters())
            for name, part in zip(("content", "pitch", "tempo"), parts)}


@pytest.mark.parametrize("periodicity", ["fixed", "learned"])
def test_the_tempo_head_given_the_tempo_part_trains_no_other_part(periodicity):
    module = _module("objectives.tempo.reads=[tempo]", "model.part_norm=true", f"model.periodicity={periodicity}")
    head = module.heads["tempo_head"]
    assert head.mlp[0].in_features == 4 * (8 + 4)       # the tempo part: 8 learned + 4 periodicity dims
    grads = _tempo_grads(module)
    assert grads["tempo"] > 0
    assert grads["content"] == 0 and grads["pitch"] == 0


def test_reading_the_whole_embedding_trains_every_part():
    """The default (and every config written before the key): the tempo loss reaches content and pitch."""
    module = _module("model.part_norm=true")
    assert module.heads["tempo_head"].mlp[0].in_features == 4 * 32
    grads = _tempo_grads(module)
    assert grads["content"] > 0 and grads["pitch"] > 0 and grads["tempo"] > 0


def test_one_norm_over_the_learned_block_leaks_between_parts():
    """Without part_norm the shared norm carries the tempo loss into the other parts even when the head reads
    the tempo part alone: why the two come together."""
    grads = _tempo_grads(_module("objectives.tempo.reads=[tempo]", "model.block_norm=true"))
    assert grads["content"] > 0 and grads["pitch"] > 0


def test_a_part_the_layout_lacks_is_a_config_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"objectives.tempo.reads.*\['rhythm'\].*content, pitch, tempo|"
                                          r"objectives.tempo.reads.*rhythm"):
        _module("objectives.tempo.reads=[rhythm]")
