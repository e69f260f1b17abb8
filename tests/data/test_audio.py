import io

import numpy as np
import pytest
import soundfile as sf

from ssl_music.data.audio import (check_audio, decode_bytes, decode_file, encode_flac, resample, to_mono)
from ssl_music.errors import AudioError


def tone(freq, sr, seconds=1.0, amp=0.5):
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spec)]


def test_resampled_1khz_tone_stays_1khz():
    y = resample(tone(1000, 44100, 2.0), 44100, 16000)
    assert y.dtype == np.float32 and abs(len(y) - 32000) <= 1
    assert abs(peak_hz(y, 16000) - 1000) < 1.0


def test_resample_removes_content_above_new_nyquist():
    # a 12 kHz tone cannot exist at 16 kHz; naive decimation would alias it to 4 kHz at full level
    y = resample(tone(12000, 44100, 1.0), 44100, 16000)
    assert np.sqrt(np.mean(y[200:-200] ** 2)) < 0.5 / np.sqrt(2) * 1e-3  # < -60 dB


def test_resample_multichannel_and_identity():
    x = np.stack([tone(440, 22050), tone(880, 22050)])
    y = resample(x, 22050, 16000)
    assert y.shape == (2, 16000)
    assert abs(peak_hz(y[1], 16000) - 880) < 2
    assert resample(x, 22050, 22050) is not None and np.array_equal(resample(x, 22050, 22050), x)


def test_flac_roundtrip_and_seek():
    x = tone(440, 16000, 2.0) + 0.01 * np.random.default_rng(0).standard_normal(32000).astype(np.float32)
    b = encode_flac(x, 16000)
    assert b[:4] == b"fLaC"
    y, sr = decode_bytes(b)
    assert sr == 16000 and y.shape == (32000,)
    assert np.max(np.abs(y - x)) <= 1.01 / 32768
    part, _ = decode_bytes(b, start=12345, frames=1000)
    assert np.array_equal(part, y[12345:13345])


def test_decode_file_shape_and_mono(tmp_path):
    x = np.stack([tone(440, 8000), tone(660, 8000)])
    p = tmp_path / "st.wav"
    sf.write(p, x.T, 8000)
    y, sr = decode_file(p)
    assert sr == 8000 and y.shape == (2, 8000)
    assert np.allclose(to_mono(y), x.mean(0), atol=1e-4)
    m, _ = decode_bytes(p.read_bytes(), mono=True)
    assert m.ndim == 1 and m.shape == (8000,)


def _encoded(fmt, seconds=2.0):
    buf = io.BytesIO()
    sf.write(buf, tone(440, 16000, seconds), 16000, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("name,data,reason", [
    ("empty.wav", b"", "zero-length"),
    ("cut.wav", _encoded("WAV")[:20000], "truncated"),
    ("cut.flac", _encoded("FLAC")[: len(_encoded("FLAC")) // 2], "truncated"),
    ("cut.ogg", _encoded("OGG")[: len(_encoded("OGG")) // 2], "truncated"),
    ("junk.wav", bytes(range(256)) * 40, "not decodable audio"),
])
def test_bad_files_raise_audio_error_naming_file(tmp_path, name, data, reason):
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(AudioError, match=reason) as exc:
        decode_file(p)
    assert str(p) in str(exc.value)


def test_missing_file_raises(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        decode_file(tmp_path / "nope.wav")


def test_check_audio():
    sr = 16000
    check_audio(tone(440, sr, 1.5), sr, 1.0, "ok.wav")
    with pytest.raises(AudioError, match="silent.*x.wav|x.wav.*silent"):
        check_audio(np.full(sr * 2, 5e-5, np.float32), sr, 1.0, "x.wav")
    with pytest.raises(AudioError, match="too short"):
        check_audio(tone(440, sr, 0.5), sr, 1.0, "short.wav")
    with pytest.raises(AudioError, match="no audio"):
        check_audio(np.zeros(0, np.float32), sr, 1.0, "empty.wav")
    bad = tone(440, sr, 2.0)
    bad[5] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        check_audio(bad, sr, 1.0, "nan.wav")


def test_load_audio_is_mono_at_the_asked_rate_and_names_bad_files(tmp_path):
    from ssl_music.data.audio import load_audio

    sr = 44100
    t = np.arange(sr) / sr
    stereo = np.stack([np.sin(2 * np.pi * 1000 * t), np.sin(2 * np.pi * 1000 * t)], axis=1).astype(np.float32)
    sf.write(tmp_path / "tone.wav", stereo, sr)
    y = load_audio(tmp_path / "tone.wav", 16000)
    assert y.ndim == 1 and y.shape[0] == 16000 and y.dtype == np.float32
    assert abs(np.argmax(np.abs(np.fft.rfft(y))) * 16000 / len(y) - 1000) < 2
    (tmp_path / "garbage.wav").write_bytes(b"not audio at all" * 10)
    with pytest.raises(AudioError, match="garbage.wav"):
        load_audio(tmp_path / "garbage.wav", 16000)


# ------------------------------------------------------------------ header length vs decoded length
from tests.data.lossy import mp3_bytes, mp3_without_info_frame, music, ogg_vorbis_with_long_last_granule  # noqa: E402
from ssl_music.data.audio import length_tolerance, load_audio  # noqa: E402


@pytest.mark.parametrize("kind", ["mp3 without Info frame", "ogg vorbis, long last granule"])
def test_lossy_file_a_hair_shorter_than_its_header_is_kept_with_a_note(tmp_path, kind):
    # as on real catalogues: asc-music's mp3s decode 0.086 % short of their estimated length, Ogg Vorbis
    # and Opus files 0.2-132 ms short of their granule positions; they play to the end and must be kept
    if kind.startswith("mp3"):
        sr, x = 22050, music(20.0, 22050)
        p, data = tmp_path / "no_info.mp3", mp3_without_info_frame(x, sr)
    else:
        sr, x = 44100, music(10.0, 44100)
        p, data = tmp_path / "long_granule.ogg", ogg_vorbis_with_long_last_granule(x, sr, 5806)
    p.write_bytes(data)
    declared = sf.info(p).frames
    y, got_sr = decode_file(p)  # used to raise "truncated"
    short = declared - y.shape[-1]
    assert got_sr == sr and 0 < short < sr // 2          # the mismatch is really there, and small
    assert abs(y.shape[-1] - len(x)) < 0.01 * len(x)      # and the whole track was decoded
    notes = []
    assert np.array_equal(decode_file(p, notes=notes)[0], y)
    assert notes == [{"kind": "length_mismatch", "format": sf.info(p).subtype, "sample_rate": sr,
                      "header_frames": declared, "decoded_frames": y.shape[-1],
                      "seconds_short": pytest.approx(short / sr, abs=1e-6)}]
    # the evaluation's reader keeps it too
    assert abs(len(load_audio(p, 16000)) - len(x) * 16000 / sr) < 0.01 * len(x) * 16000 / sr


def test_lossy_file_seconds_short_of_its_header_is_cut(tmp_path):
    # an MP3 with an Info frame knows its exact length: losing 10 % of it is a cut file, not padding
    b = mp3_bytes(music(20.0, 22050), 22050)
    p = tmp_path / "cut.mp3"
    p.write_bytes(b[: int(len(b) * 0.9)])
    with pytest.raises(AudioError, match=r"truncated: header declares 441000 frames, decoded \d+") as exc:
        decode_file(p)
    assert str(p) in str(exc.value)
    # same for an Ogg whose last granule claims 3 s more than it holds
    q = tmp_path / "long.ogg"
    q.write_bytes(ogg_vorbis_with_long_last_granule(music(10.0, 22050), 22050, 3 * 22050))
    with pytest.raises(AudioError, match="truncated: header declares") as exc:
        decode_file(q)
    assert str(q) in str(exc.value)


def test_length_tolerance_is_zero_for_lossless_and_max_1s_1pct_for_lossy():
    assert length_tolerance(10 ** 7, 44100, "PCM_16") == 0 and length_tolerance(10 ** 7, 44100, "FLAC") == 0
    assert length_tolerance(441000, 44100, "VORBIS") == 44100               # 10 s: 1 s dominates
    assert length_tolerance(44100 * 600, 44100, "MPEG_LAYER_III") == 264600  # 10 min: 1 % dominates
    assert length_tolerance(48000, 48000, "OPUS") == 48000


@pytest.mark.parametrize("seconds, sr, keep", [(600.0, 8000, 0.991), (30.0, 22050, 0.98)],
                         ids=["10 min, 5.4 s short (under 1 %)", "30 s, 0.6 s short (under 1 s)"])
def test_mp3_whose_info_frame_states_its_length_is_cut_when_short_by_less_than_the_lossy_tolerance(
        tmp_path, seconds, sr, keep):
    # the Xing/Info frame counts the frames exactly: the max(1 s, 1 %) tolerance is for lengths estimated from
    # the file size, not for this file, which lost its end
    b = mp3_bytes(music(seconds, sr), sr)
    p = tmp_path / "cut.mp3"
    p.write_bytes(b[: int(len(b) * keep)])
    short = (sf.info(p).frames - len(sf.read(p)[0])) / sr
    assert 0.5 < short < max(1.0, 0.01 * seconds)       # within the lossy tolerance: kept before
    with pytest.raises(AudioError, match=r"cut\.mp3: truncated: header declares \d+ frames"):
        decode_file(p)
    # the same file intact decodes to exactly its stated length
    p.write_bytes(b)
    assert decode_file(p)[0].shape[-1] == sf.info(p).frames


def test_length_tolerance_of_an_exact_header_is_one_mpeg_frame():
    assert length_tolerance(44100 * 600, 44100, "MPEG_LAYER_III", exact=True) == 1152
    assert length_tolerance(44100 * 600, 44100, "MPEG_LAYER_III", exact=False) == 264600
