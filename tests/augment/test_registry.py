"""A transform defined and registered in this file alone is validated, resolved and applied like a built-in
one: through load_config and ViewAugmenter, on both backends."""
import numpy as np
import pytest

from ssl_music.augment import ViewAugmenter
from ssl_music.augment.chain import TRANSFORMS, describe_chain, register_transform
from ssl_music.augment.transforms import Transform
from ssl_music.augment.transforms.base import DB, lerp
from ssl_music.config import ConfigError, load_config
from ssl_music.objectives import view_treatments
from tests.augment.helpers import run


class ToyGain(Transform):
    name = "toy_gain"
    params = {"min_gain_db": (-6.0, DB), "max_gain_db": (-6.0, DB)}
    n_uniforms = 1

    def draw(self, cfg, u, xp):
        return {"gain_db": lerp(cfg["min_gain_db"], cfg["max_gain_db"], u[:, 0])}

    def cpu(self, x, drawn, cfg, sr, rng):
        return x * np.float32(10 ** (drawn["gain_db"] / 20))

    def gpu(self, x, drawn, cfg, sr, g):
        return x * 10 ** (drawn["gain_db"][:, None] / 20)


@pytest.fixture
def toy():
    register_transform(ToyGain)
    yield ToyGain
    del TRANSFORMS[ToyGain.name]  # other tests iterate the registry


def _augmenter(backend, *overrides):
    cfg = load_config(None, ["augment.preset=none", f"augment.backend={backend}", "data.crop_s=0.25", *overrides])
    return ViewAugmenter(cfg.augment, cfg.data, view_treatments(cfg.data))


def _views(aug, n=4):
    return (0.1 * np.random.default_rng(0).standard_normal((n, 2, aug.source_len("contrastive")))).astype(np.float32)


def test_unregistered_name_is_refused():
    with pytest.raises(ConfigError, match="'augment.chain.toy_gain'.*unknown transform"):
        load_config(None, ["augment.preset=none", "augment.chain.toy_gain.p=1.0"])


def test_registered_toy_runs_through_the_config_on_both_backends(toy, backend):
    aug = _augmenter(backend, "augment.chain.toy_gain.p=1.0", "augment.chain.toy_gain.params.min_gain_db=-12")
    assert list(aug.chain) == ["toy_gain"]
    assert aug.chain["toy_gain"]["params"] == {"min_gain_db": -12, "max_gain_db": -6.0}
    assert describe_chain(aug.chain).startswith("toy_gain p=1 (min_gain_db=-12, max_gain_db=-6)")
    x = _views(aug)
    out, _ = run(aug, x, backend)
    ratio = out / x[..., :aug.out_len]
    assert out.shape == (4, 2, aug.out_len)
    assert np.allclose(ratio, ratio[..., :1], rtol=1e-5)  # one gain per view
    gains_db = 20 * np.log10(ratio[..., 0])
    assert ((gains_db > -12 - 1e-4) & (gains_db < -6 + 1e-4)).all()
    assert len(np.unique(np.round(gains_db, 4))) == 8  # drawn per example and view


def test_registered_toy_applies_with_probability_p(toy, backend):
    aug = _augmenter(backend, "augment.chain.toy_gain.p=0.5")
    x = _views(aug, n=16)
    out, _ = run(aug, x, backend)
    ratio = (out / x[..., :aug.out_len])[..., 0].ravel()
    touched = np.isclose(ratio, 10 ** (-6 / 20), rtol=1e-5)
    assert (touched | (ratio == 1)).all() and 0 < touched.sum() < len(ratio)


@pytest.mark.parametrize("override,key", [
    ("augment.chain.toy_gain.params.max_gain_db=500", "augment.chain.toy_gain.params.max_gain_db"),
    ("augment.chain.toy_gain.params.gain=1", "augment.chain.toy_gain.params.gain"),
    ("augment.chain.toy_gain.params.min_gain_db=0", "augment.chain.toy_gain.params.min_gain_db"),
])
def test_registered_toy_params_are_validated_by_its_spec(toy, override, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        load_config(None, ["augment.preset=none", "augment.chain.toy_gain.p=1.0", override])


def test_register_refuses_a_second_class_under_a_taken_name(toy):
    assert register_transform(ToyGain) is ToyGain  # the same class again: no-op
    other = type("OtherGain", (ToyGain,), {})
    with pytest.raises(ValueError, match="toy_gain"):
        register_transform(other)
    with pytest.raises(TypeError):
        register_transform(dict)


def test_spectral_backend_refuses_a_transform_without_a_spectral_apply_naming_it(toy):
    with pytest.raises(ConfigError, match="'augment.chain.toy_gain'.*no spectral apply"):
        load_config(None, ["augment.preset=none", "augment.backend=spectral", "augment.chain.toy_gain.p=1.0"])
    assert all(cls.has_spectral() for name, cls in TRANSFORMS.items() if name != "toy_gain")
