"""ssl_music.hear: the HEAR 2021 common API on a checkpoint, an export, and the hear-validator itself (slow)."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import ssl_music.hear as hear
from ssl_music.api import EmbeddingModel, export_encoder
from ssl_music.config import CONFIG_DIR, load_config
from ssl_music.errors import SSLMusicError
from tests.evaluation.fakes import tiny_checkpoint

ROOT = Path(__file__).resolve().parents[1]
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("hear") / "m.ckpt")  # 16 kHz, 1 s crops, 16 dims


@pytest.fixture(scope="module")
def model(ckpt):
    return hear.load_model(ckpt)


def _audio(n_sounds, n_samples, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).uniform(-1, 1, (n_sounds, n_samples)).astype(np.float32))


def test_model_has_the_hear_attributes(model):
    assert isinstance(model, torch.nn.Module)
    assert model.sample_rate == 16000
    assert model.scene_embedding_size == model.timestamp_embedding_size == 16
    assert isinstance(model.scene_embedding_size, int) and isinstance(model.timestamp_embedding_size, int)
    assert model.hop_ms == hear.HOP_MS == 50.0 and model.hop_samples == 800


@pytest.mark.parametrize("n_samples", [24_123, 800 * 20, 5_000, 1])  # not a multiple of the hop, a multiple, < a crop
def test_timestamp_embeddings_shapes_and_centred_grid(model, n_samples):
    audio = _audio(3, n_samples)
    emb, ts = hear.get_timestamp_embeddings(audio, model)
    n_ts = n_samples // 800 + 1
    assert emb.shape == (3, n_ts, 16) and emb.dtype == torch.float32 and torch.isfinite(emb).all()
    assert ts.shape == (3, n_ts) and ts.dtype == torch.float32
    np.testing.assert_allclose(ts.numpy(), np.tile(np.arange(n_ts) * 50.0, (3, 1)))
    assert ts[0, -1] <= n_samples / 16  # no timestamp past the end of the sound


def test_each_timestamp_embeds_the_crop_centred_on_it(ckpt, model):
    audio = _audio(2, 22_222, seed=1)
    emb, ts = hear.get_timestamp_embeddings(audio, model)
    em = hear.load_model(ckpt).embedding_model
    half = em.crop_len // 2
    padded = torch.nn.functional.pad(audio, (half, half))
    for k in (0, 7, emb.shape[1] - 1):
        centre = int(round(ts[1, k].item() * 16))  # ms -> samples
        window = padded[1, centre: centre + em.crop_len]  # audio[centre - half: centre + half], zeros outside
        np.testing.assert_allclose(emb[1, k].numpy(), em.embed_crops(window[None])[0], rtol=1e-4, atol=1e-5)


def test_scene_embedding_is_load_encoder_embed(ckpt, model):
    import ssl_music

    audio = _audio(3, 16000 * 3 + 777, seed=2)
    scene = hear.get_scene_embeddings(audio, model)
    assert scene.shape == (3, 16) and scene.dtype == torch.float32
    enc = ssl_music.load_encoder(ckpt)
    for i in range(3):
        np.testing.assert_allclose(scene[i].numpy(), enc.embed(audio[i].numpy(), 16000), rtol=1e-5, atol=1e-6)
    assert hear.get_scene_embeddings(_audio(2, 100), model).shape == (2, 16)  # shorter than a crop
    np.testing.assert_allclose(model(audio).numpy(), scene.numpy())


def test_a_sound_embeds_the_same_alone_and_in_a_batch(model):
    audio = _audio(4, 20_000, seed=3)
    emb, _ = hear.get_timestamp_embeddings(audio, model)
    alone, _ = hear.get_timestamp_embeddings(audio[2:3], model)
    np.testing.assert_allclose(alone[0].numpy(), emb[2].numpy(), rtol=1e-4, atol=1e-5)


def test_silence_gives_finite_embeddings(model):
    silence = torch.zeros(2, 16_000)
    emb, _ = hear.get_timestamp_embeddings(silence, model)
    assert torch.isfinite(emb).all() and torch.isfinite(hear.get_scene_embeddings(silence, model)).all()


def test_hop_and_other_sample_rates():
    cfg = load_config(overrides=["model.encoder=tiny", "model.width=8", "model.embed_dim=16", "data.crop_s=0.5",
                                 "data.sample_rate=22050", "objectives.tempo.weight=0"])
    model = hear.HearModel(EmbeddingModel.from_config(cfg), hop_ms=25.0)
    assert model.hop_samples == 551
    emb, ts = hear.get_timestamp_embeddings(_audio(2, 22050), model)
    assert emb.shape[:2] == ts.shape == (2, 22050 // 551 + 1)
    diff = torch.diff(ts)
    assert torch.all(torch.abs(diff - diff.mean()) < 1e-3) and abs(diff.mean().item() - 551 / 22.05) < 1e-3


def test_export_folder_loads_and_embeds_as_the_checkpoint(ckpt, model, tmp_path, monkeypatch):
    out = export_encoder(ckpt, tmp_path / "export")
    audio = _audio(2, 17_000, seed=4)
    from_export = hear.load_model(str(out))
    assert torch.equal(hear.get_timestamp_embeddings(audio, from_export)[0],
                       hear.get_timestamp_embeddings(audio, model)[0])
    monkeypatch.setenv(hear.MODEL_ENV, str(out))
    assert hear.load_model().scene_embedding_size == 16
    monkeypatch.delenv(hear.MODEL_ENV)
    with pytest.raises(SSLMusicError, match=hear.MODEL_ENV):
        hear.load_model()


def test_load_model_refuses_a_pickle_payload(tmp_path):
    from tests.test_checkpoint import malicious_checkpoint

    path, marker = malicious_checkpoint(tmp_path)
    with pytest.raises(SSLMusicError, match=f"refused to load {path}"):
        hear.load_model(str(path))
    assert not marker.exists()


def test_audio_must_be_sounds_by_samples(model):
    with pytest.raises(SSLMusicError, match=r"\[n_sounds, n_samples\]"):
        hear.get_scene_embeddings(torch.zeros(16000), model)


@CUDA
def test_cuda_model_and_audio_on_either_device(ckpt):
    cpu_model = hear.load_model(ckpt)
    audio = _audio(3, 20_000, seed=5)
    ref_emb, ref_ts = hear.get_timestamp_embeddings(audio, cpu_model)
    ref_scene = hear.get_scene_embeddings(audio, cpu_model)
    gpu_model = hear.load_model(ckpt).to("cuda")
    for device in ("cuda", "cpu"):
        emb, ts = hear.get_timestamp_embeddings(audio.to(device), gpu_model)
        scene = hear.get_scene_embeddings(audio.to(device), gpu_model)
        assert emb.device.type == ts.device.type == scene.device.type == device
        np.testing.assert_allclose(emb.cpu().numpy(), ref_emb.numpy(), rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(scene.cpu().numpy(), ref_scene.numpy(), rtol=1e-3, atol=1e-3)
        assert torch.equal(ts.cpu(), ref_ts)
    # a CPU model given CUDA audio computes on the CPU and answers on the audio's device
    assert hear.get_scene_embeddings(audio.cuda(), cpu_model).device.type == "cuda"


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("hearvalidator") is None or importlib.util.find_spec("tensorflow") is None,
                    reason="hear-validator not installed (make hear-validate or make test-slow installs it)")
@pytest.mark.parametrize("backend", ["pool", "attention"])
def test_hear_validator_passes_on_a_demo_checkpoint_and_its_export(tiny_shards, tmp_path, backend):
    """The demo's architecture (configs/pretrain/demo.yaml; and with the self-attention back-end) after 2 steps,
    and its export, through hear-validator."""
    from ssl_music.train import pretrain
    from tests.test_train import tiny_overrides

    overrides = tiny_overrides(tiny_shards, tmp_path / "run",
                               **{"trainer.max_steps": 2, "trainer.ckpt_every_n_steps": 2})
    keep = ("data.shards", "trainer.root_dir", "data.batch_size", "data.num_workers", "data.batches_per_epoch",
            "data.shuffle_buffer", "trainer.max_steps", "trainer.ckpt_every_n_steps", "trainer.progress_bar",
            "data.triplet.")  # demo's model, crop and objectives; a tiny corpus's data settings
    cfg = load_config(CONFIG_DIR / "pretrain" / "demo.yaml",
                      [o for o in overrides if o.startswith(keep)] + ["monitor.every_n_steps=0", f"model.backend={backend}"])
    pretrain(cfg)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    export = export_encoder(ckpt, tmp_path / "export")
    validator = Path(sys.executable).parent / "hear-validator"
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for path in (ckpt, export):
        for device in devices:
            out = subprocess.run([str(validator), "ssl_music.hear", "-m", str(path), "-d", device], cwd=ROOT,
                                 capture_output=True, text=True, timeout=600,
                                 env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
            assert out.returncode == 0 and "Looks good!" in out.stdout, out.stdout[-3000:] + out.stderr[-3000:]
            assert "Interval between timestamps is 50.0ms" in out.stdout


def test_hear_audio_follows_the_package_s_input_contract(model):
    audio = _audio(2, 20_000, seed=3)
    pcm = torch.round(audio * 32767).to(torch.int16)
    np.testing.assert_allclose(hear.get_scene_embeddings(pcm, model).numpy(),
                               hear.get_scene_embeddings(pcm.float() / 32768, model).numpy(), atol=1e-6)
    audio[1, 5] = float("nan")
    with pytest.raises(SSLMusicError, match="contains NaN or Inf samples"):
        hear.get_scene_embeddings(audio, model)
    with pytest.raises(SSLMusicError, match="empty"):
        hear.get_timestamp_embeddings(torch.zeros(2, 0), model)
