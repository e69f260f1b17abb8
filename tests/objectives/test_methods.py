"""The methods beside in-batch NT-Xent (issue #34): NT-Xent with a negatives queue, VICReg and BYOL. Pure
losses against hand-computed values on tiny tensors, the queue's FIFO and the EMA target's move."""
import math

import pytest
import torch

from ssl_music.objectives import byol_loss, nt_xent, vicreg_loss
from ssl_music.objectives.byol import EMATarget
from ssl_music.objectives.queue import KeyQueue


# --------------------------------------------------------------------------------- NT-Xent + queue
Z = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [-1.0, 0.0]]])   # r0, r1 track 0; r2, r3 track 1
E = math.e


def test_nt_xent_with_queue_hand_computed():
    # t = 1, one queued key q = (0, 1). Each row's denominator is the other 3 rows plus q; q is never a positive.
    #   r0: positive r1 (0); others r2 (1), r3 (-1), q (0)  -> log(1 + e + 1/e + 1)
    #   r1: positive r0 (0); others r2 (0), r3 (0), q (1)   -> log(3 + e)
    #   r2: positive r3 (-1); others r0 (1), r1 (0), q (0)  -> 1 + log(1/e + e + 1 + 1)
    #   r3: positive r2 (-1); others r0 (-1), r1 (0), q (0) -> 1 + log(2/e + 2)
    q = torch.tensor([[0.0, 1.0]])
    expected = (2 * math.log(2 + E + 1 / E) + 2 + math.log(3 + E) + math.log(2 + 2 / E)) / 4
    assert nt_xent(Z, 1.0, queue=q).item() == pytest.approx(expected, rel=1e-6)
    # without the queue the q terms go: r0 log(1 + e + 1/e), r1 log 3, r2 1 + log(1/e + e + 1), r3 1 + log(2/e + 1)
    plain = (2 * math.log(1 + E + 1 / E) + 2 + math.log(3) + math.log(1 + 2 / E)) / 4
    assert nt_xent(Z, 1.0).item() == pytest.approx(plain, rel=1e-6)
    assert nt_xent(Z, 1.0, queue=q[:0]).item() == pytest.approx(plain, rel=1e-6)   # an empty queue is in-batch


def test_queue_keys_take_no_gradient():
    z = Z.clone().requires_grad_(True)
    q = torch.tensor([[0.0, 1.0]], requires_grad=True)
    nt_xent(z, 0.5, queue=q).backward()
    assert q.grad is None and z.grad.abs().sum() > 0


def test_queue_is_fifo_oldest_batch_leaves_first():
    queue = KeyQueue(5, 1)
    assert queue.current().shape == (0, 1)
    for batch, expected in (([1, 2], [1, 2]), ([3, 4], [3, 4, 1, 2]), ([5, 6], [5, 6, 3, 4, 1]),
                            ([7, 8, 9], [7, 8, 9, 5, 6]), ([10, 11, 12, 13, 14, 15], [10, 11, 12, 13, 14])):
        queue.push(torch.tensor(batch, dtype=torch.float32)[:, None])
        assert queue.current()[:, 0].tolist() == expected
        assert int(queue.count) == len(expected)


def test_queue_current_is_a_copy_and_state_round_trips():
    queue = KeyQueue(4, 2)
    queue.push(torch.ones(3, 2))
    held = queue.current()
    queue.push(torch.zeros(2, 2))
    assert held.eq(1).all()   # what the loss read is not changed by the enqueue that follows it
    restored = KeyQueue(4, 2)
    restored.load_state_dict(queue.state_dict())
    assert torch.equal(restored.keys, queue.keys) and int(restored.count) == 4
    assert set(queue.state_dict()) == {"keys", "count"}


# ------------------------------------------------------------------------------------------ VICReg
def test_vicreg_hand_computed():
    za = torch.tensor([[0.0, 0.0], [2.0, 2.0]])
    zb = torch.tensor([[0.0, 1.0], [2.0, 1.0]])
    # invariance: mean((za - zb)^2) = (0 + 1 + 0 + 1) / 4 = 0.5
    # variance: za's dims have var 2 (unbiased, N = 2): std 1.414 > 1, no hinge; zb's dim 0 var 2, dim 1 var 0:
    #   std sqrt(1e-4) = 0.01, hinge 0.99; (0 + (0 + 0.99) / 2) / 2 = 0.2475
    # covariance: za centred [[-1, -1], [1, 1]], cov [[2, 2], [2, 2]], off-diagonal squares 8, / D = 4; zb's 0
    loss, terms = vicreg_loss(za, zb, 25.0, 25.0, 1.0)
    assert terms["invariance"].item() == pytest.approx(0.5)
    assert terms["variance"].item() == pytest.approx(0.2475, rel=1e-6)
    assert terms["covariance"].item() == pytest.approx(4.0)
    assert loss.item() == pytest.approx(25 * 0.5 + 25 * 0.2475 + 4.0, rel=1e-6)
    assert vicreg_loss(za, zb, 1.0, 0.0, 0.0)[0].item() == pytest.approx(0.5)   # the weights weigh


def test_vicreg_refuses_one_row_and_mismatched_views():
    with pytest.raises(ValueError):
        vicreg_loss(torch.ones(1, 3), torch.ones(1, 3))
    with pytest.raises(ValueError):
        vicreg_loss(torch.ones(4, 3), torch.ones(4, 2))


# -------------------------------------------------------------------------------------------- BYOL
def test_byol_loss_hand_computed():
    # view 0's prediction (1, 0) against view 1's target (1, 1): 2 - 2/sqrt(2); view 1's (0, 2) against
    # view 0's (0, 3): 2 - 2 = 0. Sum over the two, one track.
    q = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    z = torch.tensor([[[0.0, 3.0], [1.0, 1.0]]])
    assert byol_loss(q, z).item() == pytest.approx(2 - math.sqrt(2), rel=1e-6)
    # two tracks: the mean over tracks (the second track's predictions match exactly: 0)
    assert byol_loss(torch.cat([q, z.flip(1)]), torch.cat([z, z])).item() == pytest.approx((2 - math.sqrt(2)) / 2,
                                                                                          rel=1e-6)


def _pair():
    torch.manual_seed(0)
    encoder, projector = torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)
    return encoder, projector, EMATarget(encoder, projector)


def test_ema_target_moves_by_one_minus_tau_per_update_and_takes_no_gradient():
    encoder, projector, target = _pair()
    assert all(not p.requires_grad for p in target.parameters())
    with torch.no_grad():
        for p in list(encoder.parameters()) + list(projector.parameters()):
            p.add_(1.0)   # the online network moved, as after an optimizer step
    before = [p.clone() for p in target.parameters()]
    online = [p.clone() for p in list(encoder.parameters()) + list(projector.parameters())]
    target.update(encoder, projector, tau=0.9)
    for t, b, o in zip(target.parameters(), before, online):
        torch.testing.assert_close(t - b, 0.1 * (o - b), rtol=0, atol=1e-6)   # exactly (1 - tau) of the gap
    assert int(target.updates) == 1
    # the target's output carries no graph: a loss through it gives the target no gradient
    x = torch.randn(5, 3)
    q = projector(encoder(x)).view(5 // 5, 5, 2)[:, :2]
    z = target(x, 4).view(1, 5, 2)[:, :2]
    assert not z.requires_grad
    byol_loss(q, z).backward()
    assert all(p.grad is None for p in target.parameters())
    assert encoder.weight.grad is not None


def test_ema_target_is_a_copy_not_the_online_network():
    encoder, projector, target = _pair()
    with torch.no_grad():
        encoder.weight.zero_()
    assert target.encoder.weight.abs().sum() > 0
