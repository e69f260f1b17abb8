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


# ------------------------------------------------------------------ the input contract (data.audio.as_waveform)
@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    return ssl_music.load_encoder(tiny_checkpoint(tmp_path_factory.mktemp("api") / "m.ckpt"))


def _stereo(n=20_000, seed=0):
    import numpy as np

    return np.random.default_rng(seed).uniform(-0.5, 0.5, (2, n)).astype(np.float32)


def test_soundfile_s_frames_by_channels_embeds_as_channels_by_frames(small_model, tmp_path):
    import numpy as np
    import soundfile as sf

    x = _stereo()
    sf.write(tmp_path / "s.wav", x.T, 16000, subtype="FLOAT")
    read, sr = sf.read(tmp_path / "s.wav", dtype="float32")        # [N, 2], as a user gets it
    assert read.shape == (20_000, 2)
    ref = small_model.embed(x, 16000)
    np.testing.assert_allclose(small_model.embed(read, sr), ref, atol=1e-6)
    np.testing.assert_allclose(small_model.embed_windows(read, sr), small_model.embed_windows(x, 16000), atol=1e-6)
    silence = small_model.embed(np.zeros(20_000, np.float32), 16000)
    assert np.abs(small_model.embed(read, sr) - silence).max() > 1e-3


@pytest.mark.parametrize("dtype,scale,offset", [("int16", 32768, 0), ("int32", 2 ** 31, 0), ("uint8", 128, 128)])
def test_integer_pcm_is_rescaled_from_full_scale(small_model, dtype, scale, offset):
    import numpy as np

    x = _stereo(seed=1)
    pcm = np.round(x * (scale - 1) + offset).astype(dtype)
    as_float = (pcm.astype(np.float64) - offset) / scale
    np.testing.assert_allclose(small_model.embed(pcm.T, 16000), small_model.embed(as_float.astype(np.float32), 16000),
                               atol=1e-5)


@pytest.mark.parametrize("bad,message", [
    ([], r"empty \(shape \(0,\)\)"),
    ("nan", r"contains NaN or Inf samples \(1 of"),
    ("inf", r"contains NaN or Inf samples \(1 of"),
    ((4, 4), r"shape \(4, 4\) is ambiguous"),
    ((16, 20_000), r"shape \(16, 20000\) is ambiguous"),
    ((2, 3, 100), r"expected mono \[N\], \[C, N\] or \[N, C\]"),
    ("int64", r"samples of type int64 are not audio"),
])
def test_unusable_input_is_refused_naming_the_problem(small_model, bad, message):
    import numpy as np

    from ssl_music.errors import AudioError

    if bad in ("nan", "inf"):
        x = np.zeros(20_000, np.float32)
        x[7] = np.nan if bad == "nan" else np.inf
    elif bad == "int64":
        x = np.zeros(20_000, np.int64)
    elif isinstance(bad, tuple):
        x = np.zeros(bad, np.float32)
    else:
        x = np.asarray(bad, np.float32)
    for call in (small_model.embed, small_model.embed_windows):
        with pytest.raises(AudioError, match=message):
            call(x, 16000)
