"""A new objective and a new transform are each one definition registered from outside the package: config
sections, views, head-less step, loss and the transform all come from this file, and pretraining runs
with both for two steps."""
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from ssl_music.augment.chain import TRANSFORMS, register_transform
from ssl_music.augment.transforms import Transform
from ssl_music.augment.transforms.base import DB, lerp
from ssl_music.config import ConfigError, load_config
from ssl_music.data.crops import read_crops
from ssl_music.objectives import OBJECTIVES, Objective, register
from ssl_music.errors import require
from ssl_music.train import pretrain
from tests.test_train import tiny_overrides


def embedding_variance_loss(e: torch.Tensor, target: float) -> torch.Tensor:
    """Pure loss: hinge on the per-dimension standard deviation of the embedding (VICReg's variance term)."""
    std = (e.float().var(dim=0) + 1e-4).sqrt()
    return torch.relu(target - std).mean()


@dataclass
class VarianceConfig:
    weight: float = 0.0
    target_std: float = 1.0


@dataclass
class VarianceViews:
    n_crops: int = 1


def _sampler(views, sample_rate):
    n = int(views.n_crops)

    def sample(track_id, n_frames, read, length, rng):
        starts = rng.integers(0, max(1, n_frames - length) + 1, size=n)
        return read_crops(read, starts, length)
    return sample


def _step(head, encoder, e, batch, cfg):
    return {"variance": embedding_variance_loss(e.reshape(-1, e.shape[-1]), cfg.target_std)}


def _validate(obj, views):
    require(obj.target_std > 0, "objectives.variance.target_std", "must be > 0")


TOY = Objective("variance", VarianceConfig, VarianceViews, _sampler, _step, validate=_validate)


class Attenuate(Transform):
    """Toy transform: a random attenuation, the same on both backends."""
    name = "attenuate"
    params = {"min_db": (-12.0, DB), "max_db": (-3.0, DB)}
    n_uniforms = 1

    def draw(self, cfg, u, xp):
        return {"db": lerp(cfg["min_db"], cfg["max_db"], u[:, 0])}

    def cpu(self, x, drawn, cfg, sr, rng):
        return x * np.float32(10 ** (drawn["db"] / 20))

    def gpu(self, x, drawn, cfg, sr, g):
        return x * 10 ** (drawn["db"][:, None] / 20)


@pytest.fixture
def toy_objective():
    register(TOY)
    yield TOY
    OBJECTIVES.pop(TOY.name)


@pytest.fixture
def toy_transform():
    register_transform(Attenuate)
    yield Attenuate
    del TRANSFORMS[Attenuate.name]


def test_pure_toy_loss():
    same = torch.ones(8, 4)
    assert embedding_variance_loss(same, 1.0).item() == pytest.approx(1 - 1e-2, abs=1e-3)
    spread = torch.randn(4096, 4, generator=torch.Generator().manual_seed(0)) * 3
    assert embedding_variance_loss(spread, 1.0).item() == 0.0


def test_registered_objective_has_config_sections_and_checks(toy_objective):
    cfg = load_config(None, ["objectives.variance.weight=0.5", "data.variance.n_crops=2"])
    assert cfg.objectives.variance.weight == 0.5 and cfg.data.variance.n_crops == 2
    with pytest.raises(ConfigError, match="objectives.variance.target_std"):
        load_config(None, ["objectives.variance.weight=0.5", "objectives.variance.target_std=0"])
    with pytest.raises(ConfigError, match="objectives.variance.tempo"):
        load_config(None, ["objectives.variance.tempo=1"])


def test_pretraining_runs_two_steps_with_a_registered_objective_and_transform(toy_objective, toy_transform,
                                                                              tiny_shards, tmp_path):
    cfg = load_config(None, tiny_overrides(tiny_shards, tmp_path / "run", **{
        "objectives.contrastive.weight": 1.0, "objectives.variance.weight": 0.5,
        "data.variance.n_crops": 2, "trainer.max_steps": 2, "augment.preset": "none",
        "augment.chain.attenuate.p": 1.0, "augment.chain.attenuate.params.min_db": -6.0}))
    assert list(cfg.augment.chain) == ["attenuate"]
    trainer = pretrain(cfg)
    assert trainer.global_step == 2
    logged = trainer.logged_metrics
    assert "train/variance" in logged and np.isfinite(float(logged["train/variance"]))
    assert "train/contrastive" in logged
