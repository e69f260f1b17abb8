"""`ssl-music pretrain --check`: the config and everything it names on disk, before a long run."""
import json
import shutil

import pytest

from ssl_music.cli import main
from ssl_music.config import CONFIG_DIR, load_config
from ssl_music.errors import ConfigError
from ssl_music.preflight import check_pretrain

CONFIG = str(CONFIG_DIR / "pretrain" / "contrastive.yaml")


def _check(capsys, *overrides):
    code = main(["pretrain", "--config", CONFIG, "--check", *overrides])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_a_ready_config_passes_and_nothing_is_written(tiny_shards, tmp_path, capsys):
    root = tmp_path / "run"
    code, text = _check(capsys, f"data.shards={tiny_shards}", f"trainer.root_dir={root}")
    assert code == 0, text
    assert "data.shards" in text and "12 samples" in text and "OK" in text
    assert not root.exists()


def test_each_problem_names_its_key(tiny_shards, tmp_path, capsys):
    code, text = _check(capsys, f"data.shards={tmp_path / 'nowhere'}")
    assert code == 2 and "data.shards" in text and "nowhere" in text
    # a shard the manifest lists is gone
    shards = tmp_path / "shards"
    shutil.copytree(tiny_shards, shards)
    name = json.loads((shards / "manifest.json").read_text())["shards"][0]["name"]
    (shards / name).unlink()
    code, text = _check(capsys, f"data.shards={shards}")
    assert code == 2 and "data.shards" in text and name in text
    # monitor on, its labels file missing
    code, text = _check(capsys, f"data.shards={tiny_shards}", "monitor.every_n_steps=10",
                        f"monitor.labels_csv={tmp_path / 'labels.csv'}")
    assert code == 2 and "monitor.labels_csv" in text and "labels.csv" in text
    # the run folder is a file
    (tmp_path / "run").write_text("")
    code, text = _check(capsys, f"data.shards={tiny_shards}", f"trainer.root_dir={tmp_path / 'run'}")
    assert code == 2 and "trainer.root_dir" in text and "not a folder" in text


def test_shards_at_another_sample_rate_are_named(tiny_shards):
    cfg = load_config(CONFIG, [f"data.shards={tiny_shards}", "data.sample_rate=22050"])
    with pytest.raises(ConfigError, match=r"'data\.shards'.*16000 Hz.*data\.sample_rate"):
        check_pretrain(cfg)
