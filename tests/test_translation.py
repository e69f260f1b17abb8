"""Tempo translation (ssl_music.translation): the network, the pairs, training, files and the API."""
import json
import shutil

import numpy as np
import pytest
import torch

import ssl_music
from ssl_music.errors import SSLMusicError
from ssl_music.translation import TempoTranslator, stretch_pairs, translate, translator_paths
from tests.evaluation.fakes import tiny_checkpoint


def test_translator_is_the_identity_at_ratio_one_and_at_init():
    t = TempoTranslator(8, hidden=16)
    e = torch.randn(5, 8)
    assert torch.equal(t(e, torch.full((5,), 0.3)), e)          # last layer starts at zero
    torch.nn.init.normal_(t.net[-1].weight)
    assert torch.equal(t(e, torch.zeros(5)), e)                  # s = log 1 = 0 moves nothing, trained or not
    assert not torch.allclose(t(e, torch.full((5,), 0.2)), e)


def test_stretch_pairs_centres_the_stretched_copy_on_the_anchor():
    torch.manual_seed(0)
    x = torch.randn(3, 2500)
    anchor, st = stretch_pairs(x, torch.tensor([[1.0, 1.25], [0.8, 1.0], [1.0, 1.0]]), 2000)
    assert anchor.shape == (3, 2000) and st.shape == (6, 2000)
    assert torch.equal(anchor, x[:, 250:2250])
    for row in (0, 3, 4, 5):  # rate 1: the vocoder gives the anchor back
        a = anchor[row // 2]
        assert float(torch.nn.functional.cosine_similarity(a, st[row], dim=0)) > 0.99


def test_translator_trained_a_few_steps_beats_identity(translator_checkpoint, tiny_shards):
    """Fresh pairs (other crops, other ratios: another data seed) of the fixture's tracks: T(e, log r) is closer
    to the stretched crop's embedding than e is. (Twelve tracks are too few for a by-track hold-out.)"""
    from omegaconf import OmegaConf

    from ssl_music.translation import TranslatorConfig, collect_pairs, fidelity, load_translator

    model = ssl_music.load_encoder(translator_checkpoint)
    meta = json.loads(translator_paths(translator_checkpoint)[1].read_text())
    assert meta["format"] == "ssl_music.translator/1" and meta["config"]["steps"] == 300
    data = OmegaConf.merge(model.cfg.data, {"shards": str(tiny_shards), "num_workers": 0, "batch_size": 8,
                                            "batches_per_epoch": 10, "seed": 7})
    pairs = collect_pairs(model, data, TranslatorConfig(crops=64, rates_per_crop=2, embed_batch=32, seed=7))
    f = fidelity(load_translator(translator_checkpoint, model.encoder), pairs, torch.arange(64))
    assert f["pairs"] == 128
    assert f["translated"] > f["identity"] + 0.01, f


def test_api_translates_batches_numpy_and_torch(translator_checkpoint):
    model = ssl_music.load_encoder(translator_checkpoint)
    e = np.random.default_rng(0).normal(size=(4, model.embed_dim)).astype(np.float32)
    out = model.translate_tempo(e, 1.2)
    assert isinstance(out, np.ndarray) and out.shape == e.shape and out.dtype == np.float32
    assert not np.allclose(out, e)
    np.testing.assert_array_equal(model.translate_tempo(e, 1.0), e)
    one = model.translate_tempo(e[1], 1.2)
    np.testing.assert_allclose(one, out[1], rtol=1e-5, atol=1e-6)
    per_row = model.translate_tempo(torch.from_numpy(e), torch.tensor([1.2, 1.0, 1.2, 0.8]))
    assert isinstance(per_row, torch.Tensor)
    np.testing.assert_allclose(per_row[0].numpy(), out[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(per_row[1].numpy(), e[1])
    with pytest.raises(SSLMusicError, match="ratio must be one number or one per embedding"):
        model.translate_tempo(e, [1.1, 1.2])
    with pytest.raises(SSLMusicError, match=r"shape \[16\] or \[B, 16\]"):
        model.translate_tempo(e[:, :3], 1.1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_api_translates_on_the_gpu(translator_checkpoint):
    model = ssl_music.load_encoder(translator_checkpoint, device="cuda")
    e = torch.randn(3, model.embed_dim)
    out = model.translate_tempo(e.cuda(), 1.1)
    assert out.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), ssl_music.load_encoder(translator_checkpoint).translate_tempo(e, 1.1),
                               rtol=1e-4, atol=1e-5)


def test_api_refuses_a_checkpoint_without_a_translator(tmp_path):
    model = ssl_music.load_encoder(tiny_checkpoint(tmp_path / "plain.ckpt"))
    with pytest.raises(SSLMusicError, match=r"has no tempo translator.*ssl-music tempo translate-train"):
        model.translate_tempo(np.zeros((2, model.embed_dim), np.float32), 1.2)
    random = ssl_music.load_encoder(tmp_path / "plain.ckpt", random_init=True)
    with pytest.raises(SSLMusicError, match="no tempo translator"):
        random.translate_tempo(np.zeros(random.embed_dim, np.float32), 1.2)


def test_a_translator_of_another_encoder_is_refused(translator_checkpoint, tmp_path):
    other = tmp_path / "other.ckpt"
    state = torch.load(translator_checkpoint, weights_only=True)
    key = next(k for k in state["state_dict"] if k.endswith("weight"))
    state["state_dict"][key] = state["state_dict"][key] + 0.01
    torch.save(state, other)
    for src, dst in zip(translator_paths(translator_checkpoint), translator_paths(other)):
        shutil.copy(src, dst)
    with pytest.raises(SSLMusicError, match="trained on another encoder"):
        ssl_music.load_encoder(other).translate_tempo(np.zeros(16, np.float32), 1.1)


def test_translate_refuses_non_positive_ratios():
    with pytest.raises(SSLMusicError, match="> 0"):
        translate(TempoTranslator(4), np.zeros(4, np.float32), 0.0)


def test_translate_train_settings_are_key_value_overrides_named_in_errors(tmp_path, capsys):
    """translate-train takes TranslatorConfig's keys as key=value (the one config system), not flags; each
    error names the key, before the checkpoint is read."""
    from ssl_music.cli import main
    from ssl_music.translation import TranslatorConfig, translator_config

    c = translator_config(["crops=64", "steps=10", "min_rate=0.9"])
    assert (c.crops, c.steps, c.min_rate, c.hidden) == (64, 10, 0.9, TranslatorConfig().hidden)
    missing = str(tmp_path / "absent.ckpt")
    for overrides, expected in [(["stepz=3"], "unknown translator key 'stepz' (command-line override); did you mean 'steps'?"),
                                (["crops=five"], "invalid value for translator key 'crops'"),
                                (["holdout=1.5"], "invalid value for translator key 'holdout': must be in [0, 1)")]:
        assert main(["tempo", "translate-train", "--checkpoint", missing, *overrides]) == 2
        assert expected in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the flags that repeated the config are gone
        main(["tempo", "translate-train", "--checkpoint", missing, "--crops", "64"])
