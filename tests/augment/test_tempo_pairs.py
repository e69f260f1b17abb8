import math

import numpy as np
import pytest
import torch

from tests.augment.helpers import SR, click_track, inter_onset_interval, make_augmenter


def _check_labels(rates, same, tol=1.04, lo=0.8, hi=1.25):
    rates, same = np.asarray(rates, float), np.asarray(same, float)
    assert ((rates >= lo - 1e-6) & (rates <= hi + 1e-6)).all()
    expected = np.abs(np.log(rates[:, 0] / rates[:, 1])) <= math.log(tol) + 1e-6
    np.testing.assert_array_equal(same, expected.astype(float))
    assert 0.4 < same.mean() < 0.6  # balanced (same_p = 0.5)


def test_gpu_tempo_pairs_balanced_and_labels_match_rates():
    aug = make_augmenter({"time_stretch": {}, "gain": {}}, "gpu", crop_s=0.25)
    x = torch.zeros(400, 2, aug.source_len("tempo"))
    out = aug.apply_batch({"tempo": x}, torch.Generator().manual_seed(0))
    assert out["tempo"].shape == (400, 2, aug.out_len)
    _check_labels(out["tempo_rates"], out["tempo_same"])


def test_cpu_tempo_pairs_balanced_and_labels_match_rates():
    aug = make_augmenter({"time_stretch": {}}, "cpu", crop_s=0.1)
    rng = np.random.default_rng(0)
    x = np.zeros((2, aug.source_len("tempo")), np.float32)
    outs = [aug.apply_sample({"tempo": x}, rng) for _ in range(300)]
    assert all(o["tempo"].shape == (2, aug.out_len) for o in outs)
    _check_labels([o["tempo_rates"] for o in outs], [o["tempo_same"] for o in outs])


def test_tempo_view_is_stretched_by_its_rates(backend):
    aug = make_augmenter({"time_stretch": {}}, backend, crop_s=3.0)
    src = click_track(aug.source_len("tempo") / SR, 0.25)
    x = np.stack([src, src])[None]
    if backend == "cpu":
        out = aug.apply_sample({"tempo": x[0]}, np.random.default_rng(1))
        y, rates = out["tempo"], out["tempo_rates"]
    else:
        out = aug.apply_batch({"tempo": torch.from_numpy(x)}, torch.Generator().manual_seed(1))
        y, rates = out["tempo"][0].numpy(), out["tempo_rates"][0].numpy()
    for i in range(2):
        want = 0.25 / rates[i]
        assert abs(inter_onset_interval(y[i], 0.7 * want, 1.3 * want) - want) / want < 0.02


@pytest.mark.parametrize("chain", [{}, {"time_stretch": {"p": 0.0}, "gain": {"p": 0.0}}])
def test_an_arm_without_time_stretch_draws_no_stretched_tempo_pair(backend, chain):
    """The pairs follow the arm: no stretch in the chain (absent or p = 0), no stretched tempo view. Each view is
    its source crop, unchanged, with rates (1, 1) and the label that goes with them."""
    aug = make_augmenter(chain, backend, crop_s=0.25)
    src = np.random.default_rng(0).standard_normal((8, 2, aug.source_len("tempo"))).astype(np.float32)
    if backend == "cpu":
        rng = np.random.default_rng(1)
        outs = [aug.apply_sample({"tempo": row}, rng) for row in src]
        y = np.stack([o["tempo"] for o in outs])
        rates, same = np.stack([o["tempo_rates"] for o in outs]), np.stack([o["tempo_same"] for o in outs])
    else:
        out = aug.apply_batch({"tempo": torch.from_numpy(src)}, torch.Generator().manual_seed(1))
        y, rates, same = out["tempo"].numpy(), out["tempo_rates"].numpy(), out["tempo_same"].numpy()
    np.testing.assert_array_equal(rates, np.ones((8, 2), np.float32))
    np.testing.assert_array_equal(same, np.ones(8, np.float32))
    np.testing.assert_array_equal(y, src[..., :aug.out_len])


def test_the_unstretched_arm_draws_what_the_stretched_arm_draws():
    """The rates are still drawn, so an arm at p = 0 keeps the random stream of the arm that stretches: the
    views after the tempo pair get the same draws, seed for seed."""
    def after_pair(p):
        aug = make_augmenter({"time_stretch": {"p": p}, "gain": {"p": 1.0}}, "gpu", crop_s=0.25)
        g = torch.Generator().manual_seed(3)
        aug.apply_batch({"tempo": torch.zeros(4, 2, aug.source_len("tempo"))}, g)
        return torch.rand(3, generator=g)
    torch.testing.assert_close(after_pair(0.0), after_pair(1.0))


def test_source_factor():
    aug = make_augmenter({"time_stretch": {"params": {"max_rate": 1.5}}}, "cpu", max_rate=1.3)
    assert aug.source_factor("contrastive") == 1.5 and aug.source_factor("tempo") == 1.3
    assert make_augmenter({"gain": {}}, "cpu").source_factor("triplet") == 1.0
    assert make_augmenter({"time_stretch": {"p": 0.0}}, "cpu").source_factor("contrastive") == 1.0
