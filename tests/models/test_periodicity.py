"""model.periodicity: fixed | learned | off, and model.part_norm (each named part normalised on its own)."""
import pytest
import torch
from omegaconf import OmegaConf

from ssl_music.config import ConfigError, ModelConfig
from ssl_music.models import build_encoder
from ssl_music.models.pooling import periodicity_mode

SR = 16000


def _encoder(**kw):
    base = dict(encoder="tiny", width=8, embed_dim=32, hop_ms=20.0, n_mels=32)
    return build_encoder(OmegaConf.structured(ModelConfig(**{**base, **kw})), SR)


def _cnn_grad(enc, encoder: str) -> torch.Tensor:
    """The summed |gradient| that the periodicity block's output sends into the CNN's first conv."""
    torch.manual_seed(0)
    e = enc(torch.randn(3, SR * 2) * 0.1)
    e[:, enc.content_dim:].pow(2).sum().backward()
    first = enc.encoder.blocks[0][0] if encoder == "tiny" else enc.encoder.layers[0].conv1
    return torch.zeros(()) if first.weight.grad is None else first.weight.grad.abs().sum()


@pytest.mark.parametrize("encoder", ["tiny", "short_chunk_resnet"])
def test_learned_periodicity_passes_gradient_into_the_encoder_and_fixed_does_not(encoder):
    learned = _encoder(encoder=encoder, periodicity="learned")
    fixed = _encoder(encoder=encoder, periodicity="fixed")
    assert learned.content_dim == fixed.content_dim < learned.embed_dim   # same layout, other source
    assert _cnn_grad(learned, encoder) > 0
    assert _cnn_grad(fixed, encoder) == 0


def test_learned_periodicity_lives_in_the_trailing_block_and_reads_its_onset_channels():
    enc = _encoder(periodicity="learned").eval()
    block = enc.encoder.periodicity
    assert block.out_dim == enc.embed_dim - enc.content_dim
    x = torch.randn(2, SR * 2) * 0.1
    before = enc(x)
    with torch.no_grad():
        block.onset.weight.mul_(-1)   # other onset channels: another periodicity block, same learned dims
    after = enc(x)
    torch.testing.assert_close(after[:, :enc.content_dim], before[:, :enc.content_dim])
    assert not torch.allclose(after[:, enc.content_dim:], before[:, enc.content_dim:])


@pytest.mark.parametrize("value,mode", [(True, "fixed"), (False, "off"), ("fixed", "fixed"), ("learned", "learned"),
                                        ("off", "off"), ("Learned", "learned")])
def test_configs_before_learned_hold_a_bool(value, mode):
    assert periodicity_mode(value) == mode


def test_a_bad_periodicity_is_a_config_error_naming_the_key():
    with pytest.raises(ConfigError, match="model.periodicity.*fixed | learned | off"):
        _encoder(periodicity="lerned")
    with pytest.raises(ConfigError, match="model.periodicity"):
        _encoder(encoder="samplecnn", frontend="raw", periodicity="learned")


def test_an_old_bool_config_builds_the_fixed_block_with_the_same_weights():
    torch.manual_seed(0)
    old = _encoder(periodicity=True)
    torch.manual_seed(0)
    new = _encoder(periodicity="fixed")
    assert type(old.encoder.periodicity) is type(new.encoder.periodicity)
    assert old.state_dict().keys() == new.state_dict().keys()


# ------------------------------------------------------------------------------------------ part_norm
PARTS = dict(periodicity="fixed", head_split=[12, 8, 8], part_norm=True, periodicity_weight=0.2)


def test_each_part_is_unit_length_with_the_periodicity_block_weighted_inside_the_last():
    enc = _encoder(**PARTS).eval()
    e = enc(torch.randn(3, SR) * 0.1)
    c = enc.content_dim
    for a, b in ((0, 12), (12, 20), (20, 32)):
        torch.testing.assert_close(e[:, a:b].norm(dim=1), torch.ones(3))
    torch.testing.assert_close(e[:, c:].norm(dim=1), torch.full((3,), 0.2))


@pytest.mark.parametrize("periodicity", ["fixed", "learned", "off"])
def test_a_part_does_not_depend_on_another_parts_layers(periodicity):
    """Changing the content part's dense head changes the content part only; with one norm over the learned
    block (block_norm) it changed the pitch part too."""
    def outputs(**kw):
        torch.manual_seed(0)
        split = [12, 8, 8] if periodicity != "off" else [12, 8, 12]   # off: no periodicity block
        enc = _encoder(**{**PARTS, "periodicity": periodicity, "head_split": split, **kw}).eval()
        x = torch.randn(2, SR) * 0.1
        before = enc(x)
        with torch.no_grad():
            enc.encoder.head.parts[0][-1].weight.mul_(3.0).add_(0.5)
        return before, enc(x)

    before, after = outputs()
    assert not torch.allclose(after[:, :12], before[:, :12])
    torch.testing.assert_close(after[:, 12:], before[:, 12:], rtol=0, atol=0)
    before, after = outputs(part_norm=False, block_norm=True)
    assert not torch.allclose(after[:, 12:20], before[:, 12:20])


def test_part_norm_needs_the_parts_and_names_its_key():
    with pytest.raises(ConfigError, match="model.part_norm"):
        _encoder(periodicity="fixed", part_norm=True)
