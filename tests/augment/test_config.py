import pytest

from ssl_music.config import ConfigError, load_config

PRESETS = ["none", "time_stretch", "pitch_shift", "stretch_pitch", "clmr", "full"]


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_load_and_params_are_overridable(preset):
    cfg = load_config(overrides=[f"augment.preset={preset}"])
    for name in cfg.augment.chain:
        cfg2 = load_config(overrides=[f"augment.preset={preset}", f"augment.chain.{name}.p=0"])
        assert cfg2.augment.chain[name].p == 0


def test_preset_chain_order_is_yaml_order():
    cfg = load_config(overrides=["augment.preset=clmr"])
    assert list(cfg.augment.chain) == ["polarity", "noise", "gain", "high_low_pass", "delay", "pitch_shift", "reverb"]


@pytest.mark.parametrize("override,key", [
    ("augment.chain.wobble.p=0.5", "augment.chain.wobble"),
    ("augment.chain.pitch_shift.params.semitones=3", "augment.chain.pitch_shift.params.semitones"),
    ("augment.chain.pitch_shift.p=1.5", "augment.chain.pitch_shift.p"),
    ("augment.chain.pitch_shift.params.min_semitones=5", "augment.chain.pitch_shift.params.min_semitones"),
    ("augment.chain.time_stretch.params.min_rate=-1", "augment.chain.time_stretch.params.min_rate"),
    ("augment.chain.time_stretch.params.min_rate=0", "augment.chain.time_stretch.params.min_rate"),
    ("augment.chain.low_pass.params.max_cutoff_freq=8000", "augment.chain.low_pass.params.max_cutoff_freq"),
    ("augment.chain.band_pass.params.max_center_freq=9000", "augment.chain.band_pass.params.max_center_freq"),
    ("augment.chain.low_pass.params.min_rolloff=10", "augment.chain.low_pass.params.min_rolloff"),
    ("augment.chain.reverb.params.max_wet=2", "augment.chain.reverb.params.max_wet"),
])
def test_invalid_chain_names_the_key(override, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        load_config(overrides=["augment.preset=stretch_pitch", override])


def test_backend_spectral_is_a_config_choice_for_spectrogram_front_ends():
    for frontend in ("logmel", "logfreq", "harmonic"):
        assert load_config(overrides=["augment.backend=spectral", f"model.frontend={frontend}"]).augment.backend == "spectral"


@pytest.mark.parametrize("overrides", [["model.encoder=samplecnn", "model.frontend=auto"], ["model.encoder=samplecnn", "model.frontend=raw"]])
def test_backend_spectral_refuses_a_waveform_front_end_naming_the_key(overrides):
    with pytest.raises(ConfigError, match="'augment.backend'.*'raw'.*augment.backend=gpu"):
        load_config(overrides=["augment.backend=spectral", *overrides])


def test_unknown_backend_names_the_key_and_the_choices():
    with pytest.raises(ConfigError, match="'augment.backend'.*cpu, gpu, spectral"):
        load_config(overrides=["augment.backend=fft"])
