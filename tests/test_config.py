import pytest
from omegaconf import OmegaConf

from ssl_music.config import CONFIG_DIR, ConfigError, load_config, save_config

PRETRAIN = CONFIG_DIR / "pretrain"


@pytest.mark.parametrize("name", ["contrastive", "triplet", "tempo", "multitask", "demo"])
def test_shipped_pretrain_configs_load(name):
    # the demo's monitor set is generated at run time, so its path comes as an override
    extra = ["monitor.labels_csv=labels.csv"] if name == "demo" else []
    cfg = load_config(PRETRAIN / f"{name}.yaml", extra)
    assert cfg.name == name


def test_unknown_key_in_override_is_named():
    with pytest.raises(ConfigError, match=r"unknown config key 'data\.crop_sec'"):
        load_config(PRETRAIN / "contrastive.yaml", ["data.crop_sec=3"])


def test_unknown_key_in_file_is_named(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("trainer:\n  max_stepz: 10\n")
    with pytest.raises(ConfigError, match=r"trainer\.max_stepz.*bad\.yaml"):
        load_config(path)


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match=r"data\.batch_size"):
        load_config(None, ["data.batch_size=lots"])


@pytest.mark.parametrize("override,key", [
    ("data.crop_s=-1", "data.crop_s"),
    ("trainer.max_steps=0", "trainer.max_steps"),
    ("objectives.contrastive.weight=0", "objectives"),
    ("data.triplet.neg_min_s=1", "data.triplet.neg_min_s"),
    ("trainer.logger=tensorboard", "trainer.logger"),
    ("augment.backend=tpu", "augment.backend"),
])
def test_bad_values_are_named(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, [override])


def test_override_must_be_key_value():
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["data.crop_s"])


def test_preset_supplies_chain_in_yaml_order_and_overrides_win():
    preset = OmegaConf.load(CONFIG_DIR / "augment" / "stretch_pitch.yaml")
    cfg = load_config(None, ["augment.preset=stretch_pitch", "augment.chain.time_stretch.p=0"])
    assert list(cfg.augment.chain.keys()) == list(preset.chain.keys())
    assert cfg.augment.chain.time_stretch.p == 0
    # the untouched entry keeps the preset's value
    assert cfg.augment.chain.pitch_shift.p == preset.chain.pitch_shift.p


def test_override_can_switch_preset_set_in_file():
    cfg = load_config(PRETRAIN / "multitask.yaml", ["augment.preset=none"])
    assert dict(cfg.augment.chain) == {}


def test_unknown_preset_is_named():
    with pytest.raises(ConfigError, match="augment.preset"):
        load_config(None, ["augment.preset=does_not_exist"])


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(PRETRAIN / "multitask.yaml", ["trainer.max_steps=7"])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert OmegaConf.to_container(again) == OmegaConf.to_container(cfg)


def test_chain_entry_without_p_for_a_transform_the_preset_lacks_is_refused(tmp_path):
    # Merged into preset 'none', params alone would add time_stretch at p=1.0.
    with pytest.raises(ConfigError, match=r"'augment.chain.time_stretch' \(command-line override\).*preset 'none'"):
        load_config(None, ["augment.preset=none", "augment.chain.time_stretch.params.min_rate=0.9"])
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("augment:\n  preset: pitch_shift\n  chain:\n    time_stretch: {params: {min_rate: 0.9}}\n")
    with pytest.raises(ConfigError, match=r"'augment.chain.time_stretch' \(in .*c.yaml\)"):
        load_config(cfg_file)
    # the same entry is refused when a later layer switches to a preset without it
    cfg_file.write_text("augment:\n  preset: time_stretch\n  chain:\n    time_stretch: {params: {min_rate: 0.9}}\n")
    assert load_config(cfg_file).augment.chain.time_stretch.params.min_rate == 0.9
    with pytest.raises(ConfigError, match="augment.chain.time_stretch"):
        load_config(cfg_file, ["augment.preset=none"])


def test_chain_entry_with_p_adds_a_transform_and_params_change_one_the_preset_has():
    cfg = load_config(None, ["augment.preset=none", "augment.chain.gain.p=0.5",
                             "augment.chain.gain.params.min_gain_db=-6"])
    assert list(cfg.augment.chain) == ["gain"] and cfg.augment.chain.gain.p == 0.5
    cfg = load_config(None, ["augment.preset=pitch_shift", "augment.chain.pitch_shift.params.max_semitones=2"])
    assert list(cfg.augment.chain) == ["pitch_shift"] and cfg.augment.chain.pitch_shift.p == 0.8


@pytest.mark.parametrize("name", ["contrastive", "triplet", "tempo", "multitask", "demo"])
@pytest.mark.parametrize("preset", ["none", "time_stretch", "pitch_shift"])
def test_every_shipped_config_under_an_ablation_preset_runs_exactly_that_chain(name, preset):
    cfg = load_config(PRETRAIN / f"{name}.yaml", ["monitor.every_n_steps=0", f"augment.preset={preset}"])
    assert list(cfg.augment.chain) == ([] if preset == "none" else [preset])


@pytest.mark.parametrize("override, suggestion", [
    ("data.crop_sec=3", "did you mean 'data.crop_s'?"),
    ("trainer.precison=32", "did you mean 'trainer.precision'?"),
    ("trainr.max_steps=3", "did you mean 'trainer'?"),
    ("augment.preset=stretch_pich", "did you mean 'stretch_pitch'?"),
    ("trainer.precision=bf16", "did you mean 'bf16-mixed'?"),
    ("trainer.strategy=dpp", "did you mean 'ddp'?"),
])
def test_a_misspelling_gets_a_suggestion(override, suggestion):
    with pytest.raises(ConfigError) as err:
        load_config(PRETRAIN / "contrastive.yaml", [override])
    assert suggestion in str(err.value) and override.split("=")[0].split(".")[0] in str(err.value)


def test_a_misspelt_key_in_a_file_gets_a_suggestion_too(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("trainer:\n  max_stepz: 10\n")
    with pytest.raises(ConfigError, match=r"trainer\.max_stepz.*bad\.yaml.*did you mean 'trainer\.max_steps'\?"):
        load_config(path)


def test_no_suggestion_when_nothing_is_close():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["data.qqqqqq=1"])
    assert "did you mean" not in str(err.value)
