"""BYOL-A's mixup and random-resize crop (issue #34): spectral backend only, refused naming the key on the
others; seeded; mixup mixes powers with the drawn lam and partner; the crop at scale 1 is the identity and
its virtual canvas pads with silence."""
import numpy as np
import pytest
import torch

from ssl_music.augment.chain import TRANSFORMS
from ssl_music.augment.spectral import SpectralChain
from ssl_music.augment.chain import resolve_chain
from ssl_music.config import ConfigError, load_config
from ssl_music.models import build_encoder
from tests.augment.helpers import SR, make_augmenter

LOGMEL = build_encoder(load_config().model, SR).frontend


def _noise(shape, seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def _views(aug, seed=0, record=None, x=None):
    x = _noise((4, 2, aug.source_len("contrastive"))) if x is None else x
    g = torch.Generator().manual_seed(seed)
    return aug.apply_batch({"contrastive": torch.from_numpy(x)}, g, record, frontend=LOGMEL)["contrastive"]


@pytest.mark.parametrize("name", ["mixup", "random_resize_crop"])
def test_seeded_and_spectral_only(name):
    assert TRANSFORMS[name].has_backend("spectral")
    assert not TRANSFORMS[name].has_backend("gpu") and not TRANSFORMS[name].has_backend("cpu")
    aug = make_augmenter({name: {"p": 1.0}}, "spectral", crop_s=0.5)
    a, b, c = _views(aug, 3), _views(aug, 3), _views(aug, 4)
    assert torch.equal(a, b)            # one seed, one output
    assert not torch.allclose(a, c)     # another seed, other draws
    plain = _views(make_augmenter({name: {"p": 0.0}}, "spectral", crop_s=0.5), 3)
    assert not torch.allclose(a, plain)  # and it does something


@pytest.mark.parametrize("backend", ["gpu", "cpu"])
@pytest.mark.parametrize("name", ["mixup", "random_resize_crop"])
def test_refused_on_waveform_backends_naming_the_key(backend, name):
    with pytest.raises(ConfigError, match=f"augment.chain.{name}"):
        load_config(overrides=[f"augment.backend={backend}", f"augment.chain.{name}.p=1.0"])


def test_mixup_mixes_powers_with_the_drawn_lambda_and_partner():
    aug = make_augmenter({"mixup": {"p": 1.0, "params": {"alpha": 0.4}}}, "spectral", crop_s=0.5)
    x = _noise((4, 2, aug.source_len("contrastive")), 1)
    record = []
    mixed = _views(aug, 5, record, x).reshape(8, *LOGMEL.stft_module()(torch.zeros(1, aug.out_len)).shape[1:])
    plain = LOGMEL.stft_module()(torch.from_numpy(x[..., :aug.out_len]).reshape(8, -1))   # powers of the crops
    (_, applied, prm), = record
    assert applied.all() and (prm["lam"] >= 0).all() and (prm["lam"] <= 0.4).all()
    n = 8
    partner = (torch.arange(n) + (prm["partner"] * (n - 1)).floor().long() + 1) % n
    assert (partner != torch.arange(n)).all()
    lam = prm["lam"][:, None, None]
    torch.testing.assert_close(mixed, (1 - lam) * plain + lam * plain[partner], rtol=1e-4, atol=1e-7)


def _crop(mag, **params):
    chain = SpectralChain(resolve_chain({"random_resize_crop": {"p": 1.0, "params": params}}), SR, 8000)
    t = chain.transforms[0]
    prm = t.transform.draw(t.params, torch.rand(mag.shape[0], 4, generator=torch.Generator().manual_seed(0)), torch)
    return t.transform.spectral(mag, prm, t.params, None, None)


def test_random_resize_crop_at_scale_one_is_the_identity():
    mag = torch.rand(3, 20, 12)
    ones = dict(min_freq_scale=1.0, max_freq_scale=1.0, min_time_scale=1.0, max_time_scale=1.0,
                virtual_freq=1.0, virtual_time=1.0)
    torch.testing.assert_close(_crop(mag, **ones), mag, rtol=1e-5, atol=1e-6)


def test_random_resize_crop_window_over_the_whole_canvas_pads_with_silence():
    # canvas 1.5 x the frames, window = the whole canvas: the spectrogram shrinks to the middle 2/3 of the frames
    mag = torch.ones(2, 30, 8)
    out = _crop(mag, min_freq_scale=1.0, max_freq_scale=1.0, min_time_scale=1.5, max_time_scale=1.5,
                virtual_freq=1.0, virtual_time=1.5)
    assert out.shape == mag.shape
    assert out[:, :4].max() < 1e-6 and out[:, -4:].max() < 1e-6      # the canvas's silence at both ends
    torch.testing.assert_close(out[:, 7:23], torch.ones(2, 16, 8))   # the spectrogram, stretched by 2/3
