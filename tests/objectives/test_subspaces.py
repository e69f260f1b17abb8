"""The subspace objective (LooC): which views are positives in which part, its pure loss, the layout."""
import numpy as np
import pytest
import torch

from ssl_music.config import ConfigError, load_config
from ssl_music.module import PretrainModule
from ssl_music.config import to_container
from ssl_music.objectives import nt_xent, subspace_nce
from ssl_music.objectives.subspaces import positive_views

SHARED = [[], ["pitch_shift"], ["time_stretch"]]


def test_content_takes_every_view_pitch_and_tempo_only_the_key_that_shares_their_draw():
    content, pitch, tempo = (positive_views(SHARED, k) for k in range(3))
    assert content.sum() == 4 * 3 and not content.diagonal().any()
    assert set(zip(*np.nonzero(pitch))) == {(0, 2), (2, 0)}
    assert set(zip(*np.nonzero(tempo))) == {(0, 3), (3, 0)}


def test_two_keys_sharing_a_draw_with_the_query_are_positives_of_each_other():
    both = positive_views([["pitch_shift"], ["pitch_shift", "gain"]], 0)
    assert both[1, 2] and both[0, 1] and both[0, 2]


def test_with_every_view_positive_the_loss_is_nt_xent():
    z = torch.randn(5, 4, 8)
    every = ~torch.eye(4, dtype=torch.bool)
    torch.testing.assert_close(subspace_nce(z, every, 0.2), nt_xent(z, 0.2))


def test_one_positive_pair_is_cross_entropy_over_all_other_rows_by_hand():
    torch.manual_seed(0)
    z = torch.randn(2, 3, 4)
    mask = torch.zeros(3, 3, dtype=torch.bool)
    mask[0, 2] = mask[2, 0] = True
    u = torch.nn.functional.normalize(z.reshape(6, 4), dim=1)
    s = u @ u.T / 0.5
    losses = []
    for i in (0, 2, 3, 5):          # the anchors: view 0 and view 2 of each track
        j = {0: 2, 2: 0, 3: 5, 5: 3}[i]
        others = [a for a in range(6) if a != i]
        losses.append(-(s[i, j] - torch.logsumexp(s[i, others], 0)))
    torch.testing.assert_close(subspace_nce(z, mask, 0.5), torch.stack(losses).mean())


def test_a_same_clip_at_another_pitch_is_pushed_apart_in_pitch():
    # query and pitch key equal, content key = the query: in pitch the content key is a negative
    z = torch.randn(3, 4, 6)
    z[:, 2] = z[:, 0]
    near = z.clone()
    near[:, 1] = z[:, 0]
    mask = torch.as_tensor(positive_views(SHARED, 1))
    assert subspace_nce(near, mask, 0.1) > subspace_nce(z, mask, 0.1)


def _module(*extra):
    cfg = load_config(overrides=["model.encoder=tiny", "model.width=8", "model.embed_dim=32", "data.crop_s=0.5",
                                 "model.periodicity=true", "objectives.contrastive.weight=0",
                                 "objectives.subspaces.weight=1", "objectives.subspaces.dims=[12,8,8]", *extra])
    return PretrainModule(to_container(cfg))


def test_the_module_trains_every_part_and_the_layout_covers_the_embedding():
    module = _module()
    enc = module.encoder
    parts = module.heads["subspaces"].parts
    assert [p.name for p in parts] == ["content", "pitch", "tempo"]
    assert parts[0].start == 0 and parts[-1].stop == enc.embed_dim and parts[-1].dim == 8 + 4  # + periodicity
    assert all(a.stop == b.start for a, b in zip(parts, parts[1:]))
    b, v = 3, 4
    batch = {"subspaces": torch.randn(b, v, module.augmenter.out_len) * 0.1}
    losses = module.compute_losses(batch)
    assert set(losses) == {"subspaces", "subspaces/content", "subspaces/pitch", "subspaces/tempo"}
    losses["subspaces"].backward()
    assert enc.encoder.head[-1].weight.grad.abs().sum() > 0
    assert enc.encoder.periodicity.proj[0].weight.grad.abs().sum() > 0   # the tempo part reads it


def test_dims_that_miss_the_learned_block_are_named():
    with pytest.raises(ConfigError, match=r"objectives.subspaces.dims.*28"):
        _module("objectives.subspaces.dims=[8,8,8]")


@pytest.mark.parametrize("override,key", [("objectives.subspaces.dims=[12,16]", "objectives.subspaces.dims"),
                                          ("data.subspaces.shared=[[],[pitch_shif],[time_stretch]]",
                                           "data.subspaces.shared.1"),
                                          ("objectives.subspaces.names=[a,a,b]", "objectives.subspaces.names")])
def test_config_errors_name_their_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(overrides=["objectives.subspaces.weight=1", override])


def test_a_split_head_gives_each_part_its_own_dense_layers():
    module = _module("model.head_split=[12,8,8]")
    head = module.encoder.encoder.head
    assert [p[-1].out_features for p in head.parts] == [12, 8, 8]
    batch = {"subspaces": torch.randn(3, 4, module.augmenter.out_len) * 0.1}
    module.compute_losses(batch)["subspaces/pitch"].backward()
    grads = [p[0].weight.grad for p in head.parts]
    assert grads[0] is None or grads[0].abs().sum() == 0     # the content part's hidden layer: untouched
    assert grads[1].abs().sum() > 0


@pytest.mark.parametrize("override,key", [("model.head_split=[12,8,9]", "model.head_split"),
                                          ("model.head_split=[8,12,8]", "model.head_split")])
def test_a_split_that_does_not_fit_is_named(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        _module(override)


def test_a_transform_the_chain_lacks_makes_its_part_take_every_view_as_positive():
    # an ablation arm without pitch-shift: no two views differ in pitch, so none is a negative for pitch
    assert (positive_views(SHARED, 1, frozenset({"pitch_shift"})) == positive_views(SHARED, 0)).all()
    module = _module("augment.preset=time_stretch")
    masks = [getattr(module.heads["subspaces"], f"positive_{k}") for k in range(3)]
    assert masks[1].sum() == 12 and masks[2].sum() == 2


def test_a_part_can_read_the_pitch_classes_alone():
    module = _module("model.head_split=[12,8,8]", "model.head_reads=[all,pitch_classes,all]",
                     "model.frontend=logfreq", "model.pitch_classes=2")
    enc = module.encoder.encoder
    head = enc.head
    assert head.parts[1][0].in_features == enc.pitch.out_dim == 24
    assert head.parts[0][0].in_features == head.parts[2][0].in_features == 4 * 8 + 24
    module.compute_losses({"subspaces": torch.randn(3, 4, module.augmenter.out_len) * 0.1})["subspaces/pitch"].backward()
    assert enc.pitch.conv[0].weight.grad.abs().sum() > 0
    assert enc.blocks[0][0].weight.grad is None or enc.blocks[0][0].weight.grad.abs().sum() == 0  # timbre path untouched


@pytest.mark.parametrize("override,match", [("model.head_reads=[all,pitch_classes]", "one entry per part"),
                                            ("model.head_reads=[all,chroma,all]", "entries must be"),
                                            ("model.head_reads=[all,pitch_classes,all]", "pitch_classes > 0")])
def test_head_reads_errors_name_the_key(override, match):
    with pytest.raises(ConfigError, match=rf"model\.head_reads.*{match}"):
        _module("model.head_split=[12,8,8]", override)
