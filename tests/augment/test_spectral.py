"""The spectral backend through the config and ViewAugmenter: identity at p = 0, the gpu backend's draws,
stretch and shift through the chain, every transform, every spectrogram front-end, and the module."""
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from ssl_music.augment import ViewAugmenter
from ssl_music.augment.chain import TRANSFORMS
from ssl_music.config import CONFIG_DIR, load_config
from ssl_music.objectives import view_treatments
from ssl_music.models import build_encoder
from ssl_music.module import PretrainModule
from tests.augment.helpers import SR, click_track, make_augmenter


def _frontend(name: str = "logmel"):
    cfg = load_config(overrides=[f"model.frontend={name}"])
    return build_encoder(cfg.model, SR).frontend


LOGMEL = _frontend()


def _spectral(aug, views: np.ndarray, seed: int = 0, frontend=LOGMEL, view: str = "contrastive", record=None):
    out = aug.apply_batch({view: torch.from_numpy(views)}, torch.Generator().manual_seed(seed), record,
                          frontend=frontend)
    return out[view]


def _noise(shape, seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


@pytest.mark.parametrize("frontend", ["logmel", "logfreq", "harmonic"])
def test_p_zero_gives_the_front_ends_own_spectrogram_of_the_crop(frontend):
    fe = _frontend(frontend)
    aug = make_augmenter({name: {"p": 0.0} for name in TRANSFORMS}, "spectral", crop_s=0.5)
    x = _noise((2, 2, aug.source_len("contrastive")))
    power = _spectral(aug, x, frontend=fe)
    crop = torch.from_numpy(x[..., :aug.out_len]).reshape(4, -1)
    assert power.shape == (2, 2, fe.n_fft // 2 + 1, 1 + aug.out_len // fe.hop_length)
    torch.testing.assert_close(power.reshape(4, *power.shape[2:]), fe.stft_module()(crop), rtol=1e-6, atol=0)
    with torch.no_grad():  # and the model input is the one the waveform would give
        torch.testing.assert_close(fe(power.reshape(4, *power.shape[2:])), fe(crop), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("preset", ["stretch_pitch", "clmr", "full"])   # every transform, the fused stretch + shift
def test_one_seed_gives_the_gpu_backends_draws(preset):
    cfg = load_config(overrides=[f"augment.preset={preset}", "data.crop_s=0.5"])
    aug = ViewAugmenter(cfg.augment, cfg.data, view_treatments(cfg.data))
    batch = {name: torch.from_numpy(_noise((3, 2, aug.source_len(name)), i)) for i, name in enumerate(("contrastive", "tempo"))}
    records, outs = [], []
    for frontend in (None, LOGMEL):
        records.append([])
        outs.append(aug.apply_batch(batch, torch.Generator().manual_seed(7), records[-1], frontend=frontend))
    (gpu, spectral), (gpu_out, spectral_out) = records, outs
    assert [name for name, _, _ in gpu] == [name for name, _, _ in spectral]
    for (name, applied_g, prm_g), (_, applied_s, prm_s) in zip(gpu, spectral):
        assert torch.equal(applied_g, applied_s), name
        assert prm_g.keys() == prm_s.keys() and all(torch.equal(prm_g[k], prm_s[k]) for k in prm_g), name
    assert torch.equal(gpu_out["tempo_rates"], spectral_out["tempo_rates"])
    assert torch.equal(gpu_out["tempo_same"], spectral_out["tempo_same"])


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_every_transform_gives_finite_spectrograms_and_changes_them(name):
    aug = make_augmenter({name: {"p": 1.0}}, "spectral", crop_s=0.5)
    x = _noise((1, 2, aug.source_len("contrastive")))
    power = _spectral(aug, x)
    plain = LOGMEL.stft_module()(torch.from_numpy(x[..., :aug.out_len]))
    assert power.shape == plain.shape and torch.isfinite(power).all() and (power >= 0).all()
    if name == "polarity":  # a magnitude does not see the sign
        assert torch.equal(power, plain)
    else:
        assert not torch.allclose(power, plain, rtol=1e-3), f"{name} changed nothing"


@pytest.mark.parametrize("rate", [0.8, 1.25])
def test_time_stretch_in_the_chain_scales_a_click_period(rate):
    aug = make_augmenter({"time_stretch": {"params": {"min_rate": rate, "max_rate": rate}}}, "spectral", crop_s=3.0)
    interval = 0.25
    src = click_track(aug.source_len("contrastive") / SR, interval)
    env = _spectral(aug, src[None, None])[0, 0].sum(0).numpy()     # power [F, T] summed over bins
    env = env - env.mean()
    ac = np.correlate(env, env, "full")[len(env) - 1:]
    period = interval * SR / LOGMEL.hop_length / rate                      # frames
    k = int(0.6 * period) + int(np.argmax(ac[int(0.6 * period):int(1.4 * period)]))
    a, b, c = ac[k - 1:k + 2]
    assert abs(k + 0.5 * (a - c) / (a - 2 * b + c) - period) / period < 0.02


@pytest.mark.parametrize("semitones,bin_out", [(12.0, 64), (-12.0, 16), (0.0, 32)])
def test_pitch_shift_in_the_chain_moves_a_sines_peak_bin(semitones, bin_out):
    aug = make_augmenter({"pitch_shift": {"params": {"min_semitones": semitones, "max_semitones": semitones}}},
                         "spectral", crop_s=1.0)
    t = np.arange(aug.source_len("contrastive")) / SR
    power = _spectral(aug, (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)[None, None])  # bin 32
    assert int(power[0, 0].mean(1).argmax()) == bin_out


def test_waveform_stage_echo_follows_the_stretch():
    """A delay after a time_stretch comes out drawn-long in the stretched view: applied to the source before
    the STFT, it is scaled by the rate."""
    rate, delay_ms = 1.25, 300.0
    chain = {"time_stretch": {"params": {"min_rate": rate, "max_rate": rate}},
             "delay": {"params": {"min_delay_ms": delay_ms, "max_delay_ms": delay_ms, "min_volume": 1.0,
                                  "max_volume": 1.0}}}
    aug = make_augmenter(chain, "spectral", crop_s=2.0)
    src = np.zeros(aug.source_len("contrastive"), np.float32)
    src[1600:1760] = np.sin(2 * np.pi * 1000 * np.arange(160) / SR) * np.hanning(160)  # a click at 0.1 s
    env = _spectral(aug, src[None, None])[0, 0].sum(0).numpy()
    frames = lambda s: s * SR / LOGMEL.hop_length  # noqa: E731
    click = int(np.argmax(env))
    echo = click + 10 + int(np.argmax(env[click + 10:]))
    assert abs(click - frames(0.1 / rate)) <= 1 and abs(echo - frames(0.1 / rate + delay_ms / 1000)) <= 1


def test_the_module_trains_on_spectral_views():
    cfg = load_config(CONFIG_DIR / "pretrain" / "demo.yaml", [
        "data.shards=unused", "monitor.every_n_steps=0", "model.width=8", "model.embed_dim=32",
        "augment.preset=full", "augment.backend=spectral", "data.crop_s=0.5"])
    module = PretrainModule(OmegaConf.to_container(cfg, resolve=True)).train()
    views = {"contrastive": 2, "triplet": 3, "tempo": 2}
    batch = {name: torch.from_numpy(_noise((2, v, module.augmenter.source_len(name)), i))
             for i, (name, v) in enumerate(views.items())}
    out = module.on_after_batch_transfer(batch, 0)
    fe = module.encoder.frontend
    for name, v in views.items():
        assert out[name].shape == (2, v, fe.n_fft // 2 + 1, 1 + module.augmenter.out_len // fe.hop_length)
    losses = module.compute_losses(out)
    sum(losses[name] for name in module.objectives).backward()
    assert all(torch.isfinite(losses[name]) for name in module.objectives)
    assert module.encoder.encoder.head[-1].weight.grad.abs().sum() > 0
