import math

import librosa
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from ssl_music.config import ConfigError, ModelConfig
from ssl_music.models import ENCODERS, build_encoder, validate_model
from ssl_music.models.frontends import HarmonicFilterBank, LogMel, log_compress

SR = 16000
COMBOS = [(enc, fe) for enc, (_, fes, _) in ENCODERS.items() for fe in fes]


def model_cfg(**kw):
    return OmegaConf.structured(ModelConfig(**kw))


@pytest.mark.parametrize("encoder,frontend", COMBOS)
def test_every_encoder_frontend_pair_embeds_and_backprops(encoder, frontend):
    torch.manual_seed(0)
    model = build_encoder(model_cfg(encoder=encoder, frontend=frontend, width=8, embed_dim=24), SR)
    assert model.embed_dim == 24
    out = model(torch.randn(2, 3 * SR))
    assert out.shape == (2, 24)
    assert torch.isfinite(out).all()
    out.pow(2).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"no finite gradient for {missing}"
    first = next(p for n, p in model.named_parameters() if "encoder" in n and p.dim() > 1)
    assert first.grad.abs().sum() > 0


@pytest.mark.parametrize("encoder", sorted(ENCODERS))
def test_short_crops_still_embed(encoder):
    model = build_encoder(model_cfg(encoder=encoder, frontend="auto", width=8, embed_dim=8), SR).eval()
    assert model(torch.randn(1, SR // 2)).shape == (1, 8)


def test_auto_frontend_takes_the_encoders_default():
    assert build_encoder(model_cfg(encoder="samplecnn", frontend="auto", width=4), SR).frontend_name == "raw"
    assert build_encoder(model_cfg(encoder="harmonic_cnn", frontend="auto", width=4), SR).frontend_name == "harmonic"


def test_logmel_has_mule_settings():
    fe = LogMel(SR)
    assert fe.mel.win_length == 400 and fe.hop_length == 160 and fe.mel.n_fft == 512
    spec = fe(torch.zeros(2, 3 * SR))
    assert spec.shape == (2, 1, 96, 301)  # 1 + 48000 // 160 centred frames
    assert torch.all(spec == 0)            # log10(1 + 1e4 * 0) = 0


def test_log_compression_is_log10_1_plus_1e4x():
    x = torch.tensor([0.0, 1e-4, 1.0])
    assert torch.allclose(log_compress(x), torch.tensor([0.0, math.log10(2.0), math.log10(10001.0)]))


def test_logmel_matches_librosa_reference():
    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal(SR)).astype(np.float32)
    ref = librosa.feature.melspectrogram(y=wave, sr=SR, n_fft=512, win_length=400, hop_length=160, n_mels=96,
                                         power=2.0, htk=True, norm=None, center=True, pad_mode="reflect")
    ours = LogMel(SR)(torch.from_numpy(wave)[None])[0, 0].numpy()
    np.testing.assert_allclose(ours, np.log10(1 + 1e4 * ref), rtol=1e-3, atol=1e-3)


def test_logmel_runs_in_float32_under_bf16_autocast():
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert LogMel(SR)(torch.randn(1, SR)).dtype == torch.float32


def test_harmonic_filterbank_shape_and_pitch_location():
    fe = HarmonicFilterBank(SR)
    t = torch.arange(3 * SR) / SR
    out = fe(torch.sin(2 * math.pi * 440.0 * t)[None])
    assert out.shape == (1, 6, fe.n_bands, 301) and fe.n_bands == 128
    f0 = fe.log_f0.exp().detach()
    # Fundamental channel: the band whose f0 is nearest 440 Hz is the loudest.
    assert out[0, 0].mean(-1).argmax() == (f0 - 440).abs().argmin()
    # Second-harmonic channel: the band at f0 = 220 Hz (its 2nd harmonic is 440) is the loudest.
    assert out[0, 1].mean(-1).argmax() == (f0 - 220).abs().argmin()


def test_harmonic_filterbank_learns_f0_and_q():
    fe = HarmonicFilterBank(SR)
    fe(torch.randn(1, SR)).sum().backward()
    assert fe.log_f0.grad.abs().sum() > 0 and fe.q.grad.abs().sum() > 0
    assert (fe.filters().sum(0) > 0).all(), "every filter covers at least one FFT bin"


@pytest.mark.parametrize("override,key", [
    ({"encoder": "vgg"}, "model.encoder"),
    ({"encoder": "samplecnn", "frontend": "logmel"}, "model.frontend"),
    ({"frontend": "cqt"}, "model.frontend"),
    ({"embed_dim": 0}, "model.embed_dim"),
    ({"width": -4}, "model.width"),
    ({"hop_ms": 0.0}, "model.hop_ms"),
])
def test_validate_model_names_the_key(override, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        validate_model(model_cfg(**override))


def test_validate_model_accepts_defaults_and_auto():
    validate_model(model_cfg())
    validate_model(model_cfg(encoder="samplecnn", frontend="auto"))


def test_logfreq_is_a_frozen_semitone_axis_from_c2():
    from ssl_music.models.frontends import LogFreq

    fe = LogFreq(SR)
    t = torch.arange(2 * SR) / SR
    out = fe(torch.sin(2 * math.pi * 440.0 * t)[None])            # A4 = MIDI 69
    assert out.shape[:2] == (1, 1) and fe.n_bands == 83
    band = int(out[0, 0].mean(-1).argmax())
    assert band == 69 - 36 and band % 12 == 9                      # 9 semitones above C: pitch class A
    assert not list(fe.parameters())


def test_pitch_class_pool_folds_octaves_and_follows_transposition():
    from ssl_music.models.encoders import PitchClassPool

    torch.manual_seed(0)
    pool = PitchClassPool(1, filters=3).eval()
    x = torch.zeros(1, 1, 72, 20)
    x[0, 0, 30] = 1.0                                               # one partial, 6 semitones into octave 2
    ref = pool(x).reshape(3, 12)
    octave_up = torch.roll(x, 12, dims=2)
    torch.testing.assert_close(pool(octave_up).reshape(3, 12), ref)   # same pitch class, another octave
    semitone_up = torch.roll(x, 1, dims=2)
    torch.testing.assert_close(pool(semitone_up).reshape(3, 12), torch.roll(ref, 1, dims=1))
    assert not torch.allclose(pool(semitone_up), pool(x))


def test_pitch_classes_need_the_semitone_frontend_and_add_no_dims():
    with pytest.raises(ConfigError, match="model.pitch_classes"):
        build_encoder(model_cfg(encoder="tiny", frontend="logmel", width=4, pitch_classes=2), SR)
    for name in ("tiny", "short_chunk_resnet"):
        enc = build_encoder(model_cfg(encoder=name, frontend="logfreq", width=4, embed_dim=16, pitch_classes=2), SR)
        assert enc(torch.randn(2, SR)).shape == (2, 16) and enc.encoder.pitch.out_dim == 24
    with pytest.raises(ConfigError, match="model.pitch_classes"):
        build_encoder(model_cfg(encoder="samplecnn", frontend="raw", width=4, pitch_classes=2), SR)


def test_block_norm_gives_each_block_its_set_length():
    torch.manual_seed(0)
    enc = build_encoder(model_cfg(encoder="tiny", width=8, embed_dim=64, periodicity=True, hop_ms=20.0,
                                  block_norm=True, periodicity_weight=0.2), SR).eval()
    e = enc(torch.randn(3, SR))
    c = enc.content_dim
    assert c < 64
    torch.testing.assert_close(e.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(e[:, c:].norm(dim=1), torch.full((3,), 0.2))
    raw = enc.encoder(enc.frontend(torch.randn(3, SR)))
    assert not torch.allclose(raw.norm(dim=1), torch.ones(3))        # off by default: the encoder's own output
    plain = build_encoder(model_cfg(encoder="tiny", width=8, embed_dim=16, block_norm=True), SR).eval()
    torch.testing.assert_close(plain(torch.randn(2, SR)).norm(dim=1), torch.ones(2))   # no periodicity: one block
    with pytest.raises(ConfigError, match="model.periodicity_weight"):
        build_encoder(model_cfg(encoder="tiny", width=8, block_norm=True, periodicity_weight=1.0), SR)


# ------------------------------------------------------------------------------------- model.input_norm
def _tiny(input_norm):
    cfg = OmegaConf.structured(ModelConfig(encoder="tiny", width=8, embed_dim=16, input_norm=input_norm))
    torch.manual_seed(0)
    return build_encoder(cfg, 16000).eval()


def test_rms_input_norm_makes_the_embedding_deaf_to_gain_and_none_keeps_it():
    x = 0.3 * torch.from_numpy(np.random.default_rng(0).standard_normal((2, 16000)).astype(np.float32))
    x[1] *= torch.linspace(0, 1, 16000)   # not stationary: the norm is per example, not per frame
    with torch.no_grad():
        for db in (-6.0, 3.0):
            g = 10 ** (db / 20)
            torch.testing.assert_close(_tiny("rms")(x * g), _tiny("rms")(x), atol=1e-5, rtol=1e-4)
            assert (_tiny("none")(x * g) - _tiny("none")(x)).abs().max() > 1e-3
    assert _tiny("none")(x).shape == _tiny("rms")(x).shape
    # the spectral backend's power path scales a clip as the waveform path does (Parseval)
    enc = _tiny("rms")
    power = enc.frontend.stft_module()(x)
    a = enc.frontend(enc.loudness_normalised(x))
    b = enc.frontend(enc.loudness_normalised(power))
    assert (a - b).abs().mean() < 0.05 * a.abs().mean(), (a - b).abs().mean()


def test_an_unknown_input_norm_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match="model.input_norm"):
        validate_model(OmegaConf.structured(ModelConfig(encoder="tiny", input_norm="peak")))
    old = OmegaConf.create({k: v for k, v in OmegaConf.to_container(OmegaConf.structured(ModelConfig())).items()
                            if k != "input_norm"})            # a config saved before the key existed
    assert build_encoder(old, 16000).input_norm == "none"
