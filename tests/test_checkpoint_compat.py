"""Checkpoints written before model.periodicity took fixed | learned | off, model.part_norm and
objectives.tempo.reads: they load, and embed and score exactly as the code that wrote them did
(tests/fixtures/make_old_checkpoint.py wrote the fixture with commit f6d6cea's code)."""
from pathlib import Path

import numpy as np
import torch

import ssl_music

FIXTURES = Path(__file__).parent / "fixtures"
OLD = FIXTURES / "old_subspaces.ckpt"


def _inputs(crop_len):
    rng = np.random.default_rng(0)   # as make_old_checkpoint.py draws them
    wave = (0.1 * rng.standard_normal(16000 * 3)).astype(np.float32)
    crops = (0.1 * rng.standard_normal((4, crop_len))).astype(np.float32)
    return wave, crops


def test_an_old_subspaces_checkpoint_embeds_and_scores_as_its_own_code_did(tmp_path):
    saved = torch.load(OLD, weights_only=True)["ssl_music"]["config"]
    assert saved["model"]["periodicity"] is True and "part_norm" not in saved["model"]
    assert "reads" not in saved["objectives"]["tempo"]
    model = ssl_music.load_encoder(OLD)
    assert model.cfg.model.part_norm is False and list(model.cfg.objectives.tempo.reads) == []
    assert model.subspaces == ["content", "pitch", "tempo"]
    expected = np.load(FIXTURES / "old_subspaces_embeddings.npz")
    wave, crops = _inputs(model.crop_len)
    np.testing.assert_array_equal(model.embed(wave, 16000), expected["embedding"])
    np.testing.assert_array_equal(model.tempo_same_prob(crops, crops[::-1].copy()), expected["tempo_same"])
    exported = ssl_music.load_encoder(ssl_music.api.export_encoder(OLD, tmp_path / "export"))
    np.testing.assert_array_equal(exported.embed(wave, 16000), expected["embedding"])
