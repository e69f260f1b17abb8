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
