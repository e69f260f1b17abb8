"""Lengths, identity at p=0, per-example randomness, reproducibility, finiteness, backend agreement."""
import numpy as np
import pytest
import torch

from ssl_music.augment.chain import TRANSFORMS
from tests.augment.helpers import SR, make_augmenter, run

# the transforms with a waveform apply on both cpu and gpu; mixup and random_resize_crop act on spectrograms only
# (tests/augment/test_byol_a_transforms.py, tests/augment/test_spectral.py)
WAVEFORM = [name for name, cls in TRANSFORMS.items() if cls.has_backend("cpu") and cls.has_backend("gpu")]
FULL = {name: {"p": 1.0} for name in WAVEFORM}


def _noise(shape, seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


@pytest.mark.parametrize("name", WAVEFORM)
def test_every_transform_exact_length_and_finite(backend, name):
    aug = make_augmenter({name: {"p": 1.0}}, backend, crop_s=1.0)
    x = _noise((2, 2, aug.source_len("contrastive")))
    out, _ = run(aug, x, backend)
    assert out.shape == (2, 2, aug.out_len) == (2, 2, SR)
    assert np.isfinite(out).all()
    assert not np.allclose(out, x[..., :aug.out_len]), f"{name} changed nothing"


def test_p_zero_is_identity_after_crop(backend):
    aug = make_augmenter({name: {"p": 0.0} for name in WAVEFORM}, backend, crop_s=1.0)
    x = _noise((3, 2, aug.source_len("contrastive")))
    out, _ = run(aug, x, backend)
    np.testing.assert_array_equal(out, x[..., :aug.out_len])


@pytest.mark.parametrize("signal", ["silent", "constant"])
def test_silent_or_constant_input_gives_finite_output(backend, signal):
    aug = make_augmenter(FULL, backend, crop_s=1.0)
    x = np.zeros((2, 2, aug.source_len("contrastive")), np.float32) + (0.5 if signal == "constant" else 0.0)
    out, _ = run(aug, x, backend)
    assert np.isfinite(out).all() and out.shape[-1] == aug.out_len


def test_seeded_runs_reproduce_and_seeds_differ(backend):
    aug = make_augmenter(FULL, backend, crop_s=1.0)
    x = _noise((2, 2, aug.source_len("contrastive")))
    a, _ = run(aug, x, backend, seed=3)
    b, _ = run(aug, x, backend, seed=3)
    c, _ = run(aug, x, backend, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_gpu_parameters_differ_within_a_batch():
    aug = make_augmenter({"gain": {"params": {"min_gain_db": -20.0, "max_gain_db": 0.0}}}, "gpu", crop_s=0.5)
    x = np.repeat(_noise((1, 1, aug.source_len("contrastive"))), 16, 0)
    out, _ = run(aug, x, "gpu")
    ratios = out[:, 0].std(1) / x[:, 0, :aug.out_len].std(1)
    assert len(np.unique(np.round(ratios, 5))) == 16
    record = []
    aug2 = make_augmenter({"time_stretch": {}, "pitch_shift": {}}, "gpu", crop_s=0.5)
    aug2.apply_batch({"contrastive": torch.from_numpy(x)}, torch.Generator().manual_seed(0), record)
    for name, applied, prm in record:
        values = next(iter(prm.values()))
        assert len(torch.unique(values)) == 16, name


@pytest.mark.parametrize("name,param", [("gain", "gain_db"), ("low_pass", "cutoff_freq"),
                                        ("pitch_shift", "semitones"), ("time_stretch", "rate")])
def test_backends_agree_statistically(name, param):
    """Same config, same transform: output level and spectral centroid distributions match."""
    aug_c = make_augmenter({name: {"p": 1.0}}, "cpu", crop_s=0.5)
    aug_g = make_augmenter({name: {"p": 1.0}}, "gpu", crop_s=0.5)
    x = _noise((48, 1, aug_c.source_len("contrastive")), seed=1)
    t = np.arange(x.shape[-1]) / SR
    x += (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    outs = {b: run(a, x, b, seed=5)[0][:, 0] for b, a in (("cpu", aug_c), ("gpu", aug_g))}

    def stats(y):
        mag = np.abs(np.fft.rfft(y, axis=1))
        f = np.fft.rfftfreq(y.shape[1], 1 / SR)
        return np.sqrt((y ** 2).mean(1)), (mag * f).sum(1) / mag.sum(1)

    (rc, cc), (rg, cg) = stats(outs["cpu"]), stats(outs["gpu"])
    assert abs(np.median(rc) - np.median(rg)) / np.median(rc) < 0.15
    assert abs(np.median(cc) - np.median(cg)) / np.median(cc) < 0.15
