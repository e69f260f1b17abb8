import torch

from ssl_music.models.heads import ProjectionHead, TempoHead


def test_projection_head_shape_and_grad():
    head = ProjectionHead(16, 32, 8)
    x = torch.randn(4, 16, requires_grad=True)
    out = head(x)
    assert out.shape == (4, 8)
    out.sum().backward()
    assert x.grad.abs().sum() > 0


def test_tempo_head_sees_pair_features():
    torch.manual_seed(0)
    head = TempoHead(8, 16).eval()
    first = head.mlp[0]
    assert first.in_features == 32  # e1, e2, |e1 - e2|, e1 * e2
    e1, e2 = torch.randn(5, 8, requires_grad=True), torch.randn(5, 8, requires_grad=True)
    logits = head(e1, e2)
    assert logits.shape == (5,)
    logits.sum().backward()
    assert e1.grad.abs().sum() > 0 and e2.grad.abs().sum() > 0
    # Only the |e1 - e2| block switched on: swapping the pair cannot change the logit.
    with torch.no_grad():
        first.weight[:, :8] = 0
        first.weight[:, 8:16] = 0
        first.weight[:, 24:] = 0
        assert torch.allclose(head(e1, e2), head(e2, e1))
        assert not torch.allclose(head(e1, e2), head(e1, e1))


def test_tempo_head_rescales_a_block_normalised_embedding():
    import torch

    from ssl_music.models.heads import TempoHead

    torch.manual_seed(0)
    head = TempoHead(8, 16, unit_blocks=6).eval()
    e1, e2 = torch.randn(4, 8), torch.randn(4, 8)
    short = torch.cat([e1[:, :6], 0.1 * e1[:, 6:]], 1), torch.cat([e2[:, :6], 0.1 * e2[:, 6:]], 1)
    torch.testing.assert_close(head(*short), head(e1, e2))   # the block lengths do not reach the MLP
