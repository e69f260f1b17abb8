"""Lossy files whose header declares a few more frames than they decode to -- as real catalogues hold.

Both are built the way the real ones came about, from audio libsndfile writes with an exact length:
  - an MP3 without a Xing/Info frame (old encoders wrote none): libsndfile's mpg123 then estimates the
    length from the file size and the first frame's size, ignoring padding bytes. At 80 kbps / 22.05 kHz
    frames are 261 or 262 bytes, so the estimate is 0.086 % too long, exactly as on the asc-music mp3s.
  - an Ogg Vorbis stream whose final granule position claims more samples than its packets hold.
"""
import io
import struct

import numpy as np
import pytest
import soundfile as sf

_MPEG_KBPS = {3: [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],   # MPEG-1 layer III
              2: [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160]}      # MPEG-2 / 2.5
_MPEG_RATES = {3: [44100, 48000, 32000], 2: [22050, 24000, 16000], 0: [11025, 12000, 8000]}


def music(seconds, sr, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def _mp3_frame_bytes(h: bytes) -> int:
    version = (h[1] >> 3) & 3
    kbps = _MPEG_KBPS[3 if version == 3 else 2][h[2] >> 4]
    rate = _MPEG_RATES[version][(h[2] >> 2) & 3]
    return (144 if version == 3 else 72) * kbps * 1000 // rate + ((h[2] >> 1) & 1)


def mp3_bytes(x, sr, cbr=True) -> bytes:
    """libsndfile's MP3 (LAME, with a Xing/Info frame that holds the exact length)."""
    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile cannot write MP3")
    buf = io.BytesIO()
    try:
        sf.write(buf, x, sr, format="MP3", compression_level=0.5, bitrate_mode="CONSTANT" if cbr else "VARIABLE")
    except TypeError:
        pytest.skip("soundfile < 0.13 cannot choose the MP3 bitrate mode")
    return buf.getvalue()


def mp3_without_info_frame(x, sr=22050) -> bytes:
    """A CBR MP3 with its Xing/Info frame removed: the length in the header is an estimate."""
    b = mp3_bytes(x, sr)
    i = 0
    if b[:3] == b"ID3":
        i = 10 + ((b[6] & 127) << 21 | (b[7] & 127) << 14 | (b[8] & 127) << 7 | (b[9] & 127))
    assert b[i] == 0xFF and b[i + 1] & 0xE0 == 0xE0, "no MPEG frame where expected"
    n = _mp3_frame_bytes(b[i:i + 4])
    assert b"Info" in b[i:i + n] or b"Xing" in b[i:i + n], "first frame is not a Xing/Info frame"
    return b[:i] + b[i + n:]


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def ogg_vorbis_with_long_last_granule(x, sr, extra: int) -> bytes:
    """Ogg Vorbis whose last page's granule position is ``extra`` samples past what it holds."""
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="OGG", subtype="VORBIS")
    b = bytearray(buf.getvalue())
    j = b.rfind(b"OggS")
    size = 27 + b[j + 26] + sum(b[j + 27: j + 27 + b[j + 26]])
    assert j + size == len(b) and b[j + 5] & 4, "last page is not the end-of-stream page"
    struct.pack_into("<q", b, j + 6, struct.unpack_from("<q", b, j + 6)[0] + extra)
    struct.pack_into("<I", b, j + 22, 0)
    struct.pack_into("<I", b, j + 22, _ogg_crc(bytes(b[j: j + size])))
    return bytes(b)
