"""Config files are found in the user's folders before the package's (ssl_music.resources)."""
import pytest

from ssl_music.config import CONFIG_DIR, ConfigError, load_config
from ssl_music.resources import find_config, preset_path

DEMO = "configs/pretrain/demo.yaml"
LABELS = ["monitor.labels_csv=x.csv"]


def test_packaged_config_found_by_its_documented_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SSL_MUSIC_CONFIG_DIR", raising=False)
    assert find_config(DEMO) == CONFIG_DIR / "pretrain" / "demo.yaml"
    assert load_config(DEMO, LABELS).name == "demo"


def test_users_file_in_the_working_directory_wins(tmp_path, monkeypatch):
    own = tmp_path / "configs" / "pretrain" / "demo.yaml"
    own.parent.mkdir(parents=True)
    own.write_text("name: mine\n")
    monkeypatch.chdir(tmp_path)
    assert find_config(DEMO).resolve() == own
    assert load_config(DEMO).name == "mine"


def test_config_dir_variable_comes_before_the_package(tmp_path, monkeypatch):
    (tmp_path / "mine" / "pretrain").mkdir(parents=True)
    (tmp_path / "mine" / "pretrain" / "demo.yaml").write_text("name: from_env\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SSL_MUSIC_CONFIG_DIR", str(tmp_path / "mine"))
    assert load_config(DEMO).name == "from_env"


def test_missing_config_names_every_place_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SSL_MUSIC_CONFIG_DIR", str(tmp_path / "mine"))
    with pytest.raises(ConfigError) as e:
        load_config("configs/pretrain/nope.yaml")
    msg = str(e.value)
    assert "configs/pretrain/nope.yaml" in msg and "$SSL_MUSIC_CONFIG_DIR" in msg and str(CONFIG_DIR) in msg


def test_preset_search_order_env_then_working_directory_then_package(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SSL_MUSIC_CONFIG_DIR", raising=False)
    assert preset_path("stretch_pitch") == CONFIG_DIR / "augment" / "stretch_pitch.yaml"
    local = tmp_path / "configs" / "augment"
    local.mkdir(parents=True)
    (local / "stretch_pitch.yaml").write_text("chain: {}\n")
    (local / "only_here.yaml").write_text("chain: {}\n")
    assert preset_path("stretch_pitch").resolve() == local / "stretch_pitch.yaml"
    assert load_config(overrides=["augment.preset=only_here"]).augment.chain == {}
    env = tmp_path / "env" / "augment"
    env.mkdir(parents=True)
    (env / "stretch_pitch.yaml").write_text("chain: {}\n")
    monkeypatch.setenv("SSL_MUSIC_CONFIG_DIR", str(tmp_path / "env"))
    assert preset_path("stretch_pitch") == env / "stretch_pitch.yaml"


def test_unknown_preset_names_the_three_places(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SSL_MUSIC_CONFIG_DIR", str(tmp_path / "env"))
    with pytest.raises(ConfigError) as e:
        load_config(overrides=["augment.preset=stretch_pich"])
    msg = str(e.value)
    assert "augment.preset" in msg and "$SSL_MUSIC_CONFIG_DIR" in msg and "./configs/augment" in msg
    assert str(CONFIG_DIR / "augment") in msg and "did you mean 'stretch_pitch'" in msg
