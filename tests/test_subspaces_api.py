"""A model with named subspaces through the API, export, HEAR and the CLI; old checkpoints unchanged."""
import json

import numpy as np
import pytest
import torch

import ssl_music
import ssl_music.hear as hear
from ssl_music.checkpoint import CONFIG_FILE, metadata
from ssl_music.config import load_config, to_container
from ssl_music.errors import SSLMusicError
from ssl_music.module import PretrainModule
from tests.evaluation.fakes import tiny_checkpoint

SR = 16000


def _subspace_checkpoint(path):
    cfg = load_config(overrides=["model.encoder=tiny", "model.width=8", "model.embed_dim=32", "data.crop_s=1.0",
                                 "model.periodicity=true", "model.tempo_hidden=8", "objectives.tempo.weight=1",
                                 "objectives.subspaces.weight=1", "objectives.subspaces.dims=[12,8,8]"])
    torch.manual_seed(0)
    module = PretrainModule(to_container(cfg))
    ckpt = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(ckpt)
    torch.save(ckpt, str(path))
    return str(path)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return _subspace_checkpoint(tmp_path_factory.mktemp("sub") / "m.ckpt")


def _wave(seed=0, seconds=2.5):
    return (0.1 * np.random.default_rng(seed).standard_normal(int(SR * seconds))).astype(np.float32)


def test_the_layout_travels_in_the_checkpoint_and_the_model_lists_its_subspaces(ckpt):
    meta = torch.load(ckpt, weights_only=True)["ssl_music"]
    assert [(p["name"], p["dim"], p["sensitive_to"]) for p in meta["layout"]] == [
        ("content", 12, []), ("pitch", 8, ["pitch_shift"]), ("tempo", 12, ["time_stretch"])]
    model = ssl_music.load_encoder(ckpt)
    assert model.subspaces == ["content", "pitch", "tempo"] and model.has_tempo_head


def test_embed_one_subspace_is_its_slice_of_the_full_embedding(ckpt):
    model = ssl_music.load_encoder(ckpt)
    full = model.embed(_wave(), SR)
    assert full.shape == (32,)
    np.testing.assert_array_equal(model.embed(_wave(), SR, subspace="pitch"), full[12:20])
    with pytest.raises(SSLMusicError, match="no subspace 'key'.*content, pitch, tempo"):
        model.embed(_wave(), SR, subspace="key")


def test_similarity_with_one_weight_is_the_cosine_on_that_subspace(ckpt):
    model = ssl_music.load_encoder(ckpt)
    a, b = model.embed(_wave(0), SR), model.embed(_wave(1), SR)
    for name, sl in (("content", slice(0, 12)), ("pitch", slice(12, 20)), ("tempo", slice(20, 32))):
        cos = a[sl] @ b[sl] / np.linalg.norm(a[sl]) / np.linalg.norm(b[sl])
        weights = {n: float(n == name) for n in model.subspaces}
        assert model.similarity(a, b, weights) == pytest.approx(cos, rel=1e-6)
    mixed = model.similarity(a, b, {"content": 1, "pitch": 0.5, "tempo": 0})
    parts = [model.similarity(a, b, {n: 1}) for n in ("content", "pitch")]
    assert mixed == pytest.approx((parts[0] + 0.5 * parts[1]) / 1.5)
    rows = model.similarity(np.stack([a, b]), a, {"pitch": 1})       # broadcast over rows
    assert rows.shape == (2,) and rows[0] == pytest.approx(1.0)
    with pytest.raises(SSLMusicError, match="positive sum"):
        model.similarity(a, b, {"pitch": 0})


def test_export_load_encoder_and_hear_round_trip_with_the_layout(ckpt, tmp_path):
    out = ssl_music.api.export_encoder(ckpt, tmp_path / "export")
    meta = json.loads((out / CONFIG_FILE).read_text())
    assert [p["name"] for p in meta["layout"]] == ["content", "pitch", "tempo"]
    assert meta["modules"] == ["encoder", "heads.tempo_head"]
    from_ckpt, from_export = ssl_music.load_encoder(ckpt), ssl_music.load_encoder(out)
    assert from_export.subspaces == from_ckpt.subspaces
    np.testing.assert_array_equal(from_export.embed(_wave(), SR, subspace="tempo"),
                                  from_ckpt.embed(_wave(), SR, subspace="tempo"))
    model = hear.load_model(str(out))
    assert model.scene_embedding_size == 32 and [p["name"] for p in model.subspaces] == from_ckpt.subspaces
    scene = hear.get_scene_embeddings(torch.from_numpy(_wave())[None], model)
    np.testing.assert_allclose(scene[0].numpy(), from_ckpt.embed(_wave(), SR), rtol=1e-5, atol=1e-6)


def test_an_old_checkpoint_loads_unchanged_with_one_subspace(tmp_path):
    """A /2 checkpoint keeps its heads at the top level (tempo_head.*): read as heads.tempo_head."""
    new = tiny_checkpoint(tmp_path / "new.ckpt")
    ckpt = torch.load(new, weights_only=True)
    ckpt["state_dict"] = {k.removeprefix("heads."): v for k, v in ckpt["state_dict"].items()}
    ckpt["ssl_music"]["format"] = "ssl_music.checkpoint/2"
    assert any(k.startswith("tempo_head.") for k in ckpt["state_dict"])
    torch.save(ckpt, tmp_path / "old.ckpt")
    old_model, new_model = ssl_music.load_encoder(tmp_path / "old.ckpt"), ssl_music.load_encoder(new)
    assert old_model.subspaces == ["all"] and old_model.has_tempo_head
    crops = np.stack([_wave(2, 1.0), _wave(3, 1.0)])
    np.testing.assert_array_equal(old_model.tempo_same_prob(crops, crops[::-1].copy()),
                                  new_model.tempo_same_prob(crops, crops[::-1].copy()))
    full = old_model.embed(_wave(), SR)
    np.testing.assert_array_equal(old_model.embed(_wave(), SR, subspace="all"), full)
    a, b = full, old_model.embed(_wave(1), SR)
    assert old_model.similarity(a, b) == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b), rel=1e-6)
    out = ssl_music.api.export_encoder(tmp_path / "old.ckpt", tmp_path / "export")
    assert json.loads((out / CONFIG_FILE).read_text())["layout"] == [
        {"name": "all", "start": 0, "stop": 16, "dim": 16, "sensitive_to": []}]


def test_cli_embed_keeps_one_subspace(ckpt, tmp_path, capsys):
    import soundfile as sf

    from ssl_music.cli import main as cli

    sf.write(str(tmp_path / "a.wav"), _wave(), SR)
    out = tmp_path / "e.npz"
    assert cli(["embed", str(tmp_path / "a.wav"), "--checkpoint", ckpt, "--out", str(out), "--subspace", "pitch",
                "--quiet"]) == 0
    z = np.load(out)
    assert z["X"].shape == (1, 8) and str(z["subspace"]) == "pitch"
    np.testing.assert_allclose(z["X"][0], ssl_music.load_encoder(ckpt).embed(_wave(), SR, subspace="pitch"),
                               atol=1e-4)   # the WAV file is 16-bit
    capsys.readouterr()
    assert cli(["embed", str(tmp_path / "a.wav"), "--checkpoint", ckpt, "--out", str(out), "--subspace", "key"]) == 2
    assert "no subspace 'key'" in capsys.readouterr().err


# ------------------------------------------- learned periodicity, per-part norm, a tempo head on its part
@pytest.fixture(scope="module")
def learned_ckpt(tmp_path_factory):
    cfg = load_config(overrides=["model.encoder=tiny", "model.width=8", "model.embed_dim=32", "data.crop_s=1.0",
                                 "model.periodicity=learned", "model.part_norm=true", "model.head_split=[12,8,8]",
                                 "model.tempo_hidden=8", "objectives.tempo.weight=1", "objectives.tempo.reads=[tempo]",
                                 "objectives.subspaces.weight=1", "objectives.subspaces.dims=[12,8,8]"])
    torch.manual_seed(0)
    module = PretrainModule(to_container(cfg))
    ckpt = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(ckpt)
    path = tmp_path_factory.mktemp("learned") / "m.ckpt"
    torch.save(ckpt, str(path))
    return str(path)


def test_learned_periodicity_and_part_norm_through_export_hear_similarity_and_tempo(learned_ckpt, tmp_path, capsys):
    import soundfile as sf

    from ssl_music.cli import main as cli

    model = ssl_music.load_encoder(learned_ckpt)
    assert type(model.encoder.encoder.periodicity).__name__ == "LearnedPeriodicity"
    crops = np.stack([_wave(2, 1.0), _wave(3, 1.0)])
    e = model.embed_crops(crops)
    for name in model.subspaces:   # each part unit length on its own
        np.testing.assert_allclose(np.linalg.norm(model.subspace(e, name), axis=1), 1.0, rtol=1e-5)
    a, b = e
    for name in model.subspaces:
        x, y = model.subspace(a, name), model.subspace(b, name)
        assert model.similarity(a, b, {name: 1}) == pytest.approx(float(x @ y), rel=1e-5)   # unit parts: x.y
    assert model.similarity(a, b) == pytest.approx(float(a @ b) / 3, rel=1e-5)           # the mean of the parts'

    out = ssl_music.api.export_encoder(learned_ckpt, tmp_path / "export")
    exported = ssl_music.load_encoder(out)
    np.testing.assert_array_equal(exported.embed(_wave(), SR), model.embed(_wave(), SR))
    np.testing.assert_array_equal(exported.tempo_same_prob(crops, crops[::-1].copy()),
                                  model.tempo_same_prob(crops, crops[::-1].copy()))
    scene = hear.get_scene_embeddings(torch.from_numpy(_wave())[None], hear.load_model(out))
    np.testing.assert_allclose(scene[0].numpy(), model.embed(_wave(), SR), rtol=1e-5, atol=1e-6)

    sf.write(str(tmp_path / "c.wav"), _wave(4, 2.0), SR)
    assert cli(["tempo", "estimate", "--checkpoint", learned_ckpt, str(tmp_path / "c.wav"), "--windows", "1",
                "--step", "0.05"]) == 0
    assert 40.0 <= float(capsys.readouterr().out.strip().splitlines()[-1].split("\t")[1]) <= 250.0
