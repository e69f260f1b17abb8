"""Reading checkpoints runs no code from them; exports (safetensors + JSON) carry exactly what load_encoder needs."""
import json

import numpy as np
import pytest
import torch

import ssl_music
from ssl_music.checkpoint import CONFIG_FILE, EXPORT_FORMAT, WEIGHTS_FILE, read_checkpoint
from ssl_music.cli import main as cli
from ssl_music.config import CONFIG_DIR, load_config
from ssl_music.errors import SSLMusicError
from tests.evaluation.fakes import tiny_checkpoint
from tests.test_train import tiny_overrides


class MarkerPayload:
    """Unpickling this creates a file: proof that loading ran code from the checkpoint."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def malicious_checkpoint(tmp_path):
    """A valid ssl_music checkpoint whose callback state hides a pickle payload (as a pre-weights_only
    torch.load would happily run)."""
    path = tiny_checkpoint(tmp_path / "published.ckpt")
    marker = tmp_path / "payload-ran"
    ckpt = torch.load(path, weights_only=False)
    ckpt["callbacks"] = {"SomeCallback": {"state": MarkerPayload(marker)}}
    torch.save(ckpt, path)
    return path, marker


def test_a_pickle_payload_is_refused_without_running(tmp_path):
    path, marker = malicious_checkpoint(tmp_path)
    with pytest.raises(SSLMusicError) as err:
        ssl_music.load_encoder(path)
    assert not marker.exists(), "loading the checkpoint ran code from it"
    assert str(path) in str(err.value) and "refused" in str(err.value)
    assert "open" in str(err.value)  # names what the file asked to construct


def test_export_refuses_the_payload_too(tmp_path, capsys):
    path, marker = malicious_checkpoint(tmp_path)
    assert cli(["export", str(path), "--out", str(tmp_path / "out")]) == 2
    assert str(path) in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_a_truncated_checkpoint_is_named(tmp_path):
    path = tiny_checkpoint(tmp_path / "m.ckpt")
    path_bytes = open(path, "rb").read()
    open(path, "wb").write(path_bytes[: len(path_bytes) // 2])
    with pytest.raises(SSLMusicError, match=f"cannot read checkpoint {path}"):
        read_checkpoint(path)


@pytest.fixture(scope="module")
def trained(tiny_shards, tmp_path_factory):
    """A real Lightning checkpoint (optimizer states, loops, callbacks, hparams) after 2 multitask steps."""
    from ssl_music.train import pretrain

    root = tmp_path_factory.mktemp("pretrained") / "run"
    cfg = load_config(CONFIG_DIR / "pretrain" / "multitask.yaml",
                      tiny_overrides(tiny_shards, root, **{"trainer.max_steps": 2, "trainer.ckpt_every_n_steps": 2}))
    pretrain(cfg)
    return root / "checkpoints" / "last.ckpt"


def test_a_lightning_checkpoint_needs_nothing_beyond_weights_only(trained):
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(trained)) == []
    ckpt, cfg = read_checkpoint(trained)
    assert {"optimizer_states", "loops", "callbacks", "state_dict", "ssl_music"} <= set(ckpt)
    assert cfg.model.encoder == "tiny"


def test_export_holds_the_encoder_and_kept_heads_and_embeds_identically(trained, tmp_path, capsys):
    from safetensors.torch import load_file

    out = tmp_path / "shared"
    assert cli(["export", str(trained), "--out", str(out)]) == 0
    assert f"-> {out}/" in capsys.readouterr().out
    meta = json.loads((out / CONFIG_FILE).read_text())
    assert meta["format"] == EXPORT_FORMAT and meta["modules"] == ["encoder", "heads.tempo_head"]
    assert meta["source"]["global_step"] == 2 and meta["config"]["model"]["encoder"] == "tiny"
    keys = set(load_file(str(out / WEIGHTS_FILE)))
    assert keys and all(k.startswith(("encoder.", "heads.tempo_head.")) for k in keys)  # no projector, no optimizer
    state = torch.load(trained, weights_only=True)["state_dict"]
    assert keys == {k for k in state if k.startswith(("encoder.", "heads.tempo_head."))}

    wave = np.random.default_rng(0).standard_normal(16000 * 3).astype(np.float32) * 0.1
    from_ckpt, from_export = ssl_music.load_encoder(trained), ssl_music.load_encoder(out)
    np.testing.assert_array_equal(from_export.embed(wave, 16000), from_ckpt.embed(wave, 16000))
    crops = np.zeros((2, from_ckpt.crop_len), np.float32)
    np.testing.assert_array_equal(from_export.tempo_same_prob(crops, crops), from_ckpt.tempo_same_prob(crops, crops))
    assert ssl_music.load_encoder(out / WEIGHTS_FILE).identity == from_export.identity != from_ckpt.identity


def test_export_without_tempo_objective_has_no_head(tmp_path):
    out = ssl_music.api.export_encoder(tiny_checkpoint(tmp_path / "m.ckpt", tempo=False), tmp_path / "out")
    assert json.loads((out / CONFIG_FILE).read_text())["modules"] == ["encoder"]
    assert not ssl_music.load_encoder(out).has_tempo_head


def test_a_changed_or_foreign_export_is_refused(tmp_path):
    out = ssl_music.api.export_encoder(tiny_checkpoint(tmp_path / "m.ckpt"), tmp_path / "out")
    weights = out / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(SSLMusicError, match=f"{weights} does not match the checksum"):
        ssl_music.load_encoder(out)
    meta = json.loads((out / CONFIG_FILE).read_text())
    (out / CONFIG_FILE).write_text(json.dumps({**meta, "format": "ssl_music.export/99"}))
    with pytest.raises(SSLMusicError, match="export format 'ssl_music.export/99' is not one this version reads"):
        ssl_music.load_encoder(out)
    with pytest.raises(SSLMusicError, match="is not an ssl_music export"):
        ssl_music.load_encoder(tmp_path)


# ------------------------------------------------------------------ what the file is, when it is not a checkpoint
def _not_checkpoints(tmp_path):
    import pickle
    import zipfile

    import soundfile as sf

    files = {"notes.ckpt": b"epoch=3 loss=0.21\nnot a model\n", "empty.ckpt": b"",
             "model.pkl": pickle.dumps({"weights": [1, 2, 3]}), "header.ckpt": bytes([0, 1, 2, 0xFE, 0xFF, 7]) * 10}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    wave = np.zeros(1600, np.float32)
    sf.write(tmp_path / "song.wav", wave, 16000)
    sf.write(tmp_path / "song.flac", wave, 16000)
    sf.write(tmp_path / "song.ogg", wave, 16000)
    (tmp_path / "song.mp3").write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" + bytes(400))
    with zipfile.ZipFile(tmp_path / "photos.zip", "w") as z:
        z.writestr("a.txt", "hi")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "weights.ckpt"))
    return {"notes.ckpt": "is a text file", "empty.ckpt": "is empty (0 bytes)",
            "model.pkl": "is a plain Python pickle, not a torch checkpoint",
            "header.ckpt": "not a torch checkpoint (unrecognised content",
            "song.wav": "is audio (WAV)", "song.flac": "is audio (FLAC)", "song.ogg": "is audio (Ogg)",
            "song.mp3": "is audio (MP3)", "photos.zip": "is a zip archive but not a torch checkpoint",
            "weights.ckpt": "is a safetensors file"}


def test_a_file_that_is_no_checkpoint_is_named_for_what_it_is(tmp_path):
    for name, says in _not_checkpoints(tmp_path).items():
        with pytest.raises(SSLMusicError) as err:
            ssl_music.load_encoder(tmp_path / name)
        msg = str(err.value)
        assert str(tmp_path / name) in msg and says in msg, (name, msg)
        # never the internal exception, never the security alarm meant for a checkpoint hiding code
        for internal in ("pop from empty list", "pickled objects", "enforce fail", "invalid load key"):
            assert internal not in msg, (name, msg)
        assert not msg.rstrip().endswith(":"), (name, msg)


def test_a_run_folder_points_at_its_last_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    tiny_checkpoint(run / "checkpoints" / "last.ckpt")
    (run / "config.yaml").write_text("name: run\n")
    with pytest.raises(SSLMusicError, match=f"{run} is a pretraining run folder.*{run / 'checkpoints' / 'last.ckpt'}"):
        ssl_music.load_encoder(run)
    assert cli(["export", "--checkpoint", str(run), "--out", str(tmp_path / "out")]) == 2
    assert "checkpoints/last.ckpt" in capsys.readouterr().err


def test_a_checkpoint_from_before_a_new_config_section_loads_and_embeds_the_same(trained, tmp_path):
    """A checkpoint written before an objective (or a model key) was added has no section for it: it loads with
    the new part off, not with 'Missing key subspaces' (a real failure on a 12-06 sweep checkpoint)."""
    import numpy as np

    from ssl_music.api import load_encoder

    ckpt = torch.load(trained, map_location="cpu", weights_only=False)
    cfg = ckpt["ssl_music"]["config"]
    for section in ("objectives", "data"):
        cfg[section].pop("subspaces", None)
    for key in ("head_split", "head_reads"):
        cfg["model"].pop(key, None)
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    wave = np.random.default_rng(0).standard_normal(16000 * 3).astype(np.float32) * 0.1
    a, b = load_encoder(trained), load_encoder(old)
    assert np.allclose(a.embed(wave, 16000), b.embed(wave, 16000))
    assert b.cfg.objectives.subspaces.weight == 0
