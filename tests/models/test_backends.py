"""Back-ends over the encoder's frames: padding masks, attention weights, every front-end x back-end trains."""
import pytest
import torch
from omegaconf import OmegaConf

from ssl_music.config import CONFIG_DIR, ConfigError, ModelConfig, load_config
from ssl_music.models import ENCODERS, build_encoder, validate_model
from ssl_music.models.backends import BACKENDS, build_backend, frame_mask, rollout
from ssl_music.module import PretrainModule

SR = 16000


def _backend(name, channels=6):
    torch.manual_seed(0)
    return build_backend(name, channels, dim=16, heads=2, layers=2).eval()


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_padded_frames_change_nothing(name):
    """A short input and the same input padded (with anything) to a longer one summarise the same."""
    backend = _backend(name)
    short = torch.randn(1, 6, 9)
    long = torch.cat([short, 100 * torch.randn(1, 6, 7)], dim=-1)
    valid = torch.arange(16)[None] < 9
    with torch.no_grad():
        a, b = backend(short), backend(long, valid)
        other = backend(torch.cat([short, torch.randn(1, 6, 7)], dim=-1), valid)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(b, other, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_a_batch_mixes_lengths(name):
    """Each row of a padded batch equals that row run alone at its own length."""
    backend = _backend(name)
    x = torch.randn(3, 6, 12)
    lengths = torch.tensor([12, 5, 8])
    valid = torch.arange(12)[None] < lengths[:, None]
    with torch.no_grad():
        batch = backend(x, valid)
        alone = torch.cat([backend(x[i:i + 1, :, :n]) for i, n in enumerate(lengths.tolist())])
    torch.testing.assert_close(batch, alone, rtol=1e-5, atol=1e-5)


def test_attention_weights_sum_to_one_and_skip_padding():
    backend = _backend("attention")
    x = torch.randn(2, 6, 10)
    valid = torch.arange(10)[None] < torch.tensor([10, 6])[:, None]
    layers = backend.weights(x, valid)
    assert len(layers) == 2
    for w in layers:
        assert w.shape == (2, 11, 11)
        torch.testing.assert_close(w.sum(-1), torch.ones(2, 11))
        assert w[1, :, 7:].abs().max() == 0, "no token attends to a padded frame"
    r = rollout(layers)
    assert r.shape == (2, 10)
    torch.testing.assert_close(r.sum(-1), torch.ones(2))
    assert r[1, 6:].abs().max() == 0


def test_rollout_of_identity_attention_is_uniform_over_nothing_but_the_frames():
    """With attention that only looks at itself, the class token draws on no frame: rollout falls back to
    a normalised zero row, not NaN."""
    eye = torch.eye(5)[None]
    r = rollout([eye, eye])
    assert torch.isfinite(r).all() and r.abs().sum() == 0


def test_frame_mask_keeps_at_least_one_frame():
    m = frame_mask(torch.tensor([1.0, 0.5, 0.0]), 4)
    assert m.tolist() == [[True] * 4, [True, True, False, False], [True, False, False, False]]
    assert frame_mask(None, 4) is None


def test_encoder_with_a_padding_fraction_masks_the_backends_frames():
    """Encoder-level: padding with zeros then masking equals the short clip up to the CNN's own edge (its
    convolutions see zeros past the clip's end either way); the far padding has no effect at all."""
    torch.manual_seed(0)
    cfg = OmegaConf.structured(ModelConfig(encoder="tiny", width=8, embed_dim=24, backend="attention", backend_dim=16))
    model = build_encoder(cfg, SR).eval()
    wave = torch.randn(1, 2 * SR) * 0.1
    padded = torch.cat([wave, torch.zeros(1, 2 * SR)], dim=1)
    noisy_pad = torch.cat([wave, torch.randn(1, 2 * SR)], dim=1)
    with torch.no_grad():
        a = model(padded, torch.tensor([0.5]))
        b = model(noisy_pad, torch.tensor([0.5]))
        unmasked = model(noisy_pad)
    # the dilated convolutions reach ~1.3 s past the edge: what is padded there leaks in, what is further
    # does not; so compare the masked runs to each other through a tolerance, and to the unmasked one exactly
    assert not torch.allclose(a, unmasked, atol=1e-3)
    assert (a - b).abs().max() < (a - unmasked).abs().max()


@pytest.mark.parametrize("override,key", [
    ({"backend": "lstm"}, "model.backend"),
    ({"backend": "attention", "backend_dim": 15}, "model.backend_dim"),
    ({"backend": "attention", "backend_heads": 3}, "model.backend_heads"),
    ({"backend": "attention", "backend_layers": 0}, "model.backend_layers"),
])
def test_validate_names_the_backend_key(override, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        validate_model(OmegaConf.structured(ModelConfig(**override)))


def test_pool_backend_adds_no_parameters():
    """Checkpoints from before back-ends were a choice load unchanged: pooling owns no weights."""
    assert not list(_backend("pool").parameters())


PAIRS = [(enc, fe, be) for enc, (_, fes, _) in ENCODERS.items() for fe in fes for be in sorted(BACKENDS)]


@pytest.mark.parametrize("encoder,frontend,backend", PAIRS)
def test_every_frontend_backend_pair_trains_two_steps(encoder, frontend, backend):
    periodic = encoder in ("tiny", "short_chunk_resnet")
    cfg = load_config(CONFIG_DIR / "pretrain" / "demo.yaml", [
        "data.shards=unused", "monitor.every_n_steps=0", "model.width=4", "model.embed_dim=32", "augment.preset=none",
        "augment.backend=gpu",
        f"model.encoder={encoder}", f"model.frontend={frontend}", f"model.backend={backend}", "model.backend_dim=16",
        f"model.periodicity={str(periodic).lower()}", "data.crop_s=1.0", "model.n_mels=32"])
    torch.manual_seed(0)
    module = PretrainModule(OmegaConf.to_container(cfg, resolve=True))
    n = int(cfg.data.crop_s * cfg.data.sample_rate)
    g = torch.Generator().manual_seed(0)
    batch = {name: torch.randn(3, v, n, generator=g) * 0.1 for name, v in {"contrastive": 2, "triplet": 3, "tempo": 2}.items()}
    batch["tempo_same"] = torch.tensor([1.0, 0.0, 1.0])
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    before = {k: v.clone() for k, v in module.encoder.encoder.backend.state_dict().items()}
    losses = []
    for _ in range(2):
        opt.zero_grad()
        loss = sum(module.compute_losses(batch).values())
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(torch.isfinite(torch.tensor(losses)))
    after = module.encoder.encoder.backend.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point()), \
        "the back-end's own weights learn"
