import math

import pytest
import torch
import torch.nn.functional as F

from ssl_music.objectives import OBJECTIVES, nt_xent, tempo_bce, triplet_loss


def reference_nt_xent(z, t):
    """Row-by-row loop, written from the formula, for comparison."""
    b, k, _ = z.shape
    rows = F.normalize(z.reshape(b * k, -1), dim=1)
    total = 0.0
    for i in range(b * k):
        denom = sum(math.exp(float(rows[i] @ rows[a]) / t) for a in range(b * k) if a != i)
        pos = [p for p in range(b * k) if p != i and p // k == i // k]
        total += -sum(float(rows[i] @ rows[p]) / t - math.log(denom) for p in pos) / len(pos)
    return total / (b * k)


def test_nt_xent_k2_hand_computed():
    # Track 0: both views (1, 0); track 1: both views (0, 1). Each row: one positive at cos 1, two
    # negatives at cos 0 -> -log(e^(1/t) / (e^(1/t) + 2)).
    z = torch.tensor([[[1.0, 0.0], [2.0, 0.0]], [[0.0, 3.0], [0.0, 1.0]]])
    for t in (1.0, 0.5):
        expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + 2))
        assert nt_xent(z, t).item() == pytest.approx(expected, rel=1e-6)


def test_nt_xent_k3_hand_computed():
    # K = 3: two positives at cos 1, three negatives at cos 0; t = 0.5 -> -log(e^2 / (2 e^2 + 3)).
    z = torch.tensor([[[1.0, 0.0]] * 3, [[0.0, 1.0]] * 3])
    expected = -math.log(math.exp(2) / (2 * math.exp(2) + 3))
    assert nt_xent(z, 0.5).item() == pytest.approx(expected, rel=1e-6)


def test_nt_xent_k2_mixed_similarities_hand_computed():
    # Rows r0=(1,0), r1=(0.6,0.8) [track 0]; r2=(0,1), r3=(-1,0) [track 1]; t = 1.
    z = torch.tensor([[[1.0, 0.0], [0.6, 0.8]], [[0.0, 1.0], [-1.0, 0.0]]])
    e = math.exp
    r0 = -math.log(e(0.6) / (e(0.6) + e(0) + e(-1)))
    r1 = -math.log(e(0.6) / (e(0.6) + e(0.8) + e(-0.6)))
    r2 = -math.log(e(0) / (e(0) + e(0.8) + e(0)))
    r3 = -math.log(e(0) / (e(-1) + e(-0.6) + e(0)))
    assert nt_xent(z, 1.0).item() == pytest.approx((r0 + r1 + r2 + r3) / 4, rel=1e-6)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_nt_xent_matches_loop_reference(k):
    torch.manual_seed(k)
    z = torch.randn(5, k, 7)
    assert nt_xent(z, 0.2).item() == pytest.approx(reference_nt_xent(z, 0.2), rel=1e-5)


def test_nt_xent_rejects_single_view_and_handles_bf16():
    with pytest.raises(ValueError):
        nt_xent(torch.randn(4, 1, 8), 0.1)
    z = torch.randn(4, 2, 8)
    loss = nt_xent(z.bfloat16(), 0.1)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(nt_xent(z, 0.1).item(), rel=0.05)


def test_nt_xent_gradient_pulls_positives_together():
    torch.manual_seed(0)
    z = torch.randn(8, 2, 16, requires_grad=True)
    opt = torch.optim.SGD([z], lr=0.5)
    before = nt_xent(z, 0.1).item()
    for _ in range(20):
        opt.zero_grad()
        nt_xent(z, 0.1).backward()
        opt.step()
    assert nt_xent(z, 0.1).item() < 0.5 * before


def test_triplet_hand_computed():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    p = torch.tensor([[0.6, 0.8], [0.8, 0.6]])
    n = torch.tensor([[0.0, 1.0], [5.0, 0.0]])
    # Row 0: d(a,p) = sqrt(0.8), d(a,n) = sqrt(2); row 1: d(a,p) = sqrt(0.8), d(a,n) = sqrt(2).
    expected = max(0.0, math.sqrt(0.8) - math.sqrt(2) + 1.0)
    assert triplet_loss(a, p, n, margin=1.0).item() == pytest.approx(expected, rel=1e-5)
    assert triplet_loss(a, p, n, margin=0.2).item() == pytest.approx(0.0, abs=1e-7)
    loss_row1_only = 0.5 * max(0.0, math.sqrt(0.8) - math.sqrt(2) + 0.6)
    n2 = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])  # row 0: d(a,n) = 2 -> 0; row 1 unchanged
    assert triplet_loss(a, p, n2, margin=0.6).item() == pytest.approx(loss_row1_only, rel=1e-5)


def test_triplet_hardest_uses_other_tracks_not_own_views():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[0.6, 0.8], [0.8, 0.6]])
    n = torch.tensor([[-1.0, 0.0], [0.0, -1.0]])
    # Sampled negatives are opposite (d = 2): no loss. Hardest negative of row 0 is the other row's
    # positive (0.8, 0.6) at sqrt(0.4), and symmetrically for row 1; own anchor/positive are excluded.
    assert triplet_loss(a, p, n, margin=0.1).item() == pytest.approx(0.0, abs=1e-7)
    expected = math.sqrt(0.8) - math.sqrt(0.4) + 0.1
    assert triplet_loss(a, p, n, margin=0.1, hardest=True).item() == pytest.approx(expected, rel=1e-5)


def test_triplet_hardest_keeps_own_sampled_negative():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    n = torch.tensor([[0.8, 0.6], [-1.0, 0.0]])  # row 0's own negative is its hardest
    d = math.sqrt(0.4)
    expected = (max(0.0, 0 - d + 0.7) + max(0.0, 0 - math.sqrt(2) + 0.7)) / 2
    assert triplet_loss(a, p, n, margin=0.7, hardest=True).item() == pytest.approx(expected, abs=1e-5)


def test_triplet_gradient_is_finite_with_duplicates():
    a = torch.randn(3, 4, requires_grad=True)
    loss = triplet_loss(a, a, a, margin=0.2, hardest=True)
    loss.backward()
    assert torch.isfinite(a.grad).all()


def test_tempo_bce_known_values():
    logits = torch.tensor([0.0, 2.0, -1.0])
    same = torch.tensor([1, 1, 0])
    expected = (math.log(2) + math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1))) / 3
    assert tempo_bce(logits, same).item() == pytest.approx(expected, rel=1e-6)


def test_registry_names_match_config_sections():
    # Every registered objective has its config sections (objectives.<name> with a weight, data.<name>
    # for its views), and every objectives.<name> section has a registered loss.
    from ssl_music.config import load_config

    cfg = load_config()
    assert set(OBJECTIVES) == set(cfg.objectives.keys())
    for name, spec in OBJECTIVES.items():
        assert spec.name == name and callable(spec.step), name
        assert "weight" in cfg.objectives[name], f"objectives.{name} has no weight"
        assert name in cfg.data, f"data.{name} (the objective's views) is missing"


def test_nt_xent_runs_in_float32_under_bf16_autocast():
    # Near-identical positives (cos ~ 0.999) and hard negatives: bf16 similarities (resolution ~0.004)
    # would move the loss by ~0.04 / t; the loss must match the float32 reference.
    g = torch.Generator().manual_seed(0)
    base = torch.randn(8, 1, 64, generator=g)
    z = base + 0.03 * torch.randn(8, 2, 64, generator=g)       # two views per track, cos ~ 0.999
    z = z + 2.0 * torch.randn(1, 1, 64, generator=g)           # a shared direction: hard negatives
    z.requires_grad_(True)
    reference = nt_xent(z.detach(), 0.1)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        loss = nt_xent(z, 0.1)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(reference.item(), rel=1e-5)
    loss.backward()
    assert torch.isfinite(z.grad).all()
