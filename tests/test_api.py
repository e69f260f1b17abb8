"""load_encoder reads the checkpoint's recorded format and config, and refuses what it does not know."""
import pytest
import torch

import ssl_music
from ssl_music.checkpoint import FORMAT, READABLE
from ssl_music.errors import SSLMusicError
from tests.evaluation.fakes import tiny_checkpoint


def test_load_encoder_rebuilds_the_recorded_config(tmp_path):
    model = ssl_music.load_encoder(tiny_checkpoint(tmp_path / "m.ckpt"))
    assert model.embed_dim == 16 and model.has_tempo_head and model.sample_rate == 16000


@pytest.mark.parametrize("fmt", ["ssl_music.checkpoint/99", None])
def test_unknown_checkpoint_format_is_refused_with_the_reason(tmp_path, fmt):
    path = tiny_checkpoint(tmp_path / "m.ckpt")
    ckpt = torch.load(path, weights_only=False)
    if fmt is None:
        del ckpt["ssl_music"]["format"]
    else:
        ckpt["ssl_music"]["format"] = fmt
    torch.save(ckpt, path)
    with pytest.raises(SSLMusicError, match=rf"checkpoint format {fmt!r} is not one this version reads.*{FORMAT}"):
        ssl_music.load_encoder(path)


def test_the_written_format_is_readable():
    assert FORMAT in READABLE
