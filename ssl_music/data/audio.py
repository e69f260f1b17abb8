"""Decode, encode, resample and sanity-check audio. Arrays are float32, shape [N] (mono) or [C, N].

All file I/O goes through soundfile (libsndfile): torchaudio >= 2.9 has no I/O, and libsndfile decodes
WAV, FLAC, OGG/Vorbis, MP3, AIFF and friends from both paths and byte strings, with sample-accurate
seeking into FLAC -- which is what lets the loader decode a 3 s crop without decoding a 60 s segment.
"""
from __future__ import annotations

import io
import re
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from ssl_music.errors import AudioError

SILENCE_PEAK = 1e-4  # -80 dBFS: below this a "track" is digital silence or near it, useless for SSL

# How far a full decode may fall short of the length the header declares before the file counts as cut.
# Lossless formats (WAV, FLAC, AIFF, ...) store an exact sample count, so any shortfall is a cut file.
# For lossy codecs the declared length is bookkeeping that routinely disagrees with the decoder:
#   - MP3 without a Xing/Info/VBRI frame has no sample count at all: mpg123 estimates it from the file
#     size and the first frame's size, ignoring padding bytes, so a CBR file reads up to ~0.5 % too
#     long (measured: 0.47 % on a 56 kbps / 44.1 kHz file with 182-183 byte frames, 0.086 % =
#     250-380 ms on the 80 kbps / 22.05 kHz tracks of asc-music). Encoder delay and padding
#     (LAME: 1105 samples + up to 1152) are at most ~0.3 s at 8 kHz, 50 ms at 44.1 kHz.
#   - Ogg Vorbis/Opus lengths come from granule positions, which encoders and muxers set with offsets
#     (measured 104 frames on Vorbis, 10 on Opus; 5806 frames = 0.064 % on a 207 s orchestral track).
#     Vorbis priming is half a block: up to 4096 samples, 0.5 s at 8 kHz.
# A cut file loses whole seconds. So a lossy file may fall short by max(1 s, 1 %) -- twice the worst
# estimate error and codec delay above -- and is kept with a note; beyond that it is cut.
# That tolerance is for estimates only: an MP3 whose first frame is a Xing/Info header with a frame count
# (LAME and libsndfile write one) or a VBRI header states its exact length (mpg123 decodes such files to
# the sample), so one that decodes more than one MPEG frame short lost its end, whatever the percentage. (A cut Ogg
# file's declared length comes from its last complete page, so it matches what decodes; the missing
# end-of-stream flag, _truncation_hint, is what gives most of them away.)
LOSSY_SUBTYPES = frozenset({"VORBIS", "OPUS", "MPEG_LAYER_I", "MPEG_LAYER_II", "MPEG_LAYER_III"})
LENGTH_TOLERANCE_S = 1.0
LENGTH_TOLERANCE_REL = 0.01

# A WAV whose data chunk claims more bytes than the file holds was cut short (interrupted copy or
# download). 0 and 0xFFFFFFFF are what streaming writers put there on purpose, so they are not flagged.
_WAV_DATA_SHORT = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_STREAMING_SIZES = {0, 0xFFFFFFFF}


def _truncation_hint(info: sf._SoundFileInfo) -> str | None:
    extra = info.extra_info or ""
    m = _WAV_DATA_SHORT.search(extra)
    if m and int(m.group(1)) not in _STREAMING_SIZES and int(m.group(1)) > int(m.group(2)):
        return f"truncated: data chunk declares {m.group(1)} bytes, file holds {m.group(2)}"
    if "lacks an end-of-stream" in extra:
        return "truncated: last Ogg page has no end-of-stream flag"
    return None


MPEG_FRAME = 1152  # samples per MPEG-1 layer III frame (the largest of the layers' frames)


def length_tolerance(declared: int, sample_rate: int, subtype: str, exact: bool = False) -> int:
    """Frames a full decode may fall short of ``declared`` (the header's count) without the file being
    cut: 0 for lossless formats, max(1 s, 1 %) for lossy codecs (see LENGTH_TOLERANCE_S), one MPEG frame
    for an MP3 whose header counts its frames (``exact``, see ``mpeg_length_is_exact``)."""
    if subtype not in LOSSY_SUBTYPES:
        return 0
    if exact:
        return MPEG_FRAME
    return int(max(LENGTH_TOLERANCE_S * sample_rate, LENGTH_TOLERANCE_REL * declared))


_MPEG_KBPS = {1: [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],   # MPEG-1 layer III
              2: [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160]}      # MPEG-2 / 2.5 layer III
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def mpeg_length_is_exact(head: bytes) -> bool:
    """Whether an MP3 (its first bytes, 64 KiB is plenty past a small ID3 tag) opens with a Xing/Info frame
    that counts its frames, or a VBRI header: then the length libsndfile reports is exact, not estimated."""
    i = 0
    if head[:3] == b"ID3" and len(head) >= 10:
        i = 10 + ((head[6] & 127) << 21 | (head[7] & 127) << 14 | (head[8] & 127) << 7 | (head[9] & 127))
    while i + 4 <= len(head):  # the first frame sync after the tag (some files have a few junk bytes)
        if head[i] == 0xFF and head[i + 1] & 0xE0 == 0xE0 and (head[i + 1] >> 3) & 3 != 1 \
                and (head[i + 1] >> 1) & 3 == 1 and head[i + 2] >> 4 not in (0, 15) and (head[i + 2] >> 2) & 3 != 3:
            break
        i += 1
    else:
        return False
    version = (head[i + 1] >> 3) & 3
    kbps = _MPEG_KBPS[1 if version == 3 else 2][head[i + 2] >> 4]
    size = (144 if version == 3 else 72) * kbps * 1000 // _MPEG_RATES[version][(head[i + 2] >> 2) & 3]
    frame = head[i: i + size + 1]
    if frame[36:40] == b"VBRI":
        return True
    for tag in (b"Xing", b"Info"):
        j = frame.find(tag)
        if j >= 0 and len(frame) >= j + 8:
            return bool(int.from_bytes(frame[j + 4: j + 8], "big") & 1)  # flag 1: the frame count is present
    return False


def _head(src, n: int = 1 << 16) -> bytes:
    if hasattr(src, "getbuffer"):
        return bytes(src.getbuffer()[:n])
    with open(src, "rb") as f:
        return f.read(n)


def _not_audio(src, msg: str) -> str:
    """What a file libsndfile cannot open is, for the message: its own words would say an existing file
    "does not exist" (that is how it reports a format it does not recognise)."""
    if hasattr(src, "seek"):
        src.seek(0)
    head = _head(src, 512)
    try:
        text = head.decode("utf-8")
        if text.strip() and all(c.isprintable() or c in "\t\r\n" for c in text):
            return f"a text file, starts '{text.strip().splitlines()[0][:40]}'"
    except UnicodeDecodeError:
        pass
    if "does not exist" in msg:
        return f"no audio format libsndfile recognises; starts with bytes {head[:8].hex(' ')}"
    return msg


def decode_error(src, name: str, exc: BaseException, opened: bool) -> AudioError:
    """The error for a file libsndfile fails on, worded the same for every reader (shard build, index build):
    ``opened`` False when it found no audio in the file at all."""
    msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    if any(s in msg.lower() for s in ("lost sync", "end of file", "malformed")):
        return AudioError(f"{name}: truncated or corrupt stream ({msg})")
    if not opened:
        return AudioError(f"{name}: not decodable audio ({_not_audio(src, msg)})")
    return AudioError(f"{name}: cannot decode ({msg})")


def _read(src, name: str, start: int = 0, frames: int = -1,
          notes: list[dict] | None = None) -> tuple[np.ndarray, int]:
    """soundfile.read with every failure turned into an AudioError naming ``name``; returns [C, N].

    A whole-file decode that falls short of the header's length raises when the shortfall exceeds
    ``length_tolerance``; a smaller one is appended to ``notes`` (when given) as a "length_mismatch"."""
    info = None
    try:
        info = sf.info(src)
        if hasattr(src, "seek"):
            src.seek(0)
        hint = _truncation_hint(info)
        if hint:
            raise AudioError(f"{name}: {hint}")
        x, sr = sf.read(src, start=start, frames=frames, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError, EOFError) as exc:
        raise decode_error(src, name, exc, opened=info is not None) from None
    short = info.frames - x.shape[0]
    if frames < 0 and start == 0 and short > 0:
        exact = info.subtype.startswith("MPEG_LAYER") and mpeg_length_is_exact(_head(src))
        tol = length_tolerance(info.frames, int(sr), info.subtype, exact)
        if short > tol:
            raise AudioError(f"{name}: truncated: header declares {info.frames} frames, decoded {x.shape[0]} "
                             f"({short / sr:.3f} s short; {info.subtype} allows {tol / sr:.3f} s"
                             f"{', its Xing/Info header states the exact length' if exact else ''})")
        if notes is not None:
            notes.append({"kind": "length_mismatch", "format": info.subtype, "sample_rate": int(sr),
                          "header_frames": int(info.frames), "decoded_frames": int(x.shape[0]),
                          "seconds_short": round(short / sr, 6)})
    return np.ascontiguousarray(x.T), int(sr)


def decode_file(path: str | Path, notes: list[dict] | None = None) -> tuple[np.ndarray, int]:
    """Whole file -> (float32 [C, N], sample_rate). Raises AudioError naming the file. A lossy file that
    decodes a little shorter than its header says is kept; the mismatch is appended to ``notes``."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: zero-length file")
    return _read(str(path), str(path), notes=notes)


def decode_bytes(b: bytes, start: int = 0, frames: int = -1, mono: bool = True,
                 name: str = "<bytes>") -> tuple[np.ndarray, int]:
    """Decode ``frames`` frames from ``start`` of an encoded byte string, seeking rather than decoding
    the prefix. Returns ([N] if mono else [C, N], sample_rate)."""
    if not b:
        raise AudioError(f"{name}: zero-length byte string")
    x, sr = _read(io.BytesIO(b), name, start=start, frames=frames)
    return (to_mono(x) if mono else x), sr


def encode_flac(x: np.ndarray, sr: int) -> bytes:
    """[N] or [C, N] float32 -> FLAC bytes, PCM_16 (lossless at the precision we train on, ~50% of WAV)."""
    x = np.asarray(x, dtype=np.float32)
    data = x if x.ndim == 1 else x.T
    buf = io.BytesIO()
    sf.write(buf, np.clip(data, -1.0, 1.0), int(sr), format="FLAC", subtype="PCM_16")
    return buf.getvalue()


# The one input contract of every entry point that takes samples rather than a file (EmbeddingModel.embed,
# embed_windows, attention, the HEAR API); files reach it through load_audio. A 2-D array's layout is
# decided by its shape because both conventions are common: torch and this package write [C, N], soundfile
# reads [N, C]. Real audio has few channels and many samples, so the small axis is the channels.
MAX_CHANNELS = 8
# integer PCM -> float in [-1, 1): (offset, full scale). Other integer types have no PCM full scale.
_PCM = {"int16": (0, 32768.0), "int32": (0, 2.0 ** 31), "uint8": (128, 128.0), "int8": (0, 128.0)}


def as_waveform(x, what: str = "waveform", batch: bool = False):
    """``x`` (numpy array or torch tensor) checked and made float32, channels first.

    - layout (``batch=False``): mono [N], [C, N] or soundfile's [N, C], told apart by the shape: the axis of
      at most MAX_CHANNELS is the channels, the other (longer) one the samples; [N, C] comes back as [C, N].
      A 2-D shape where both axes or neither could be the channels is refused. ``batch=True``: [B, N], a
      batch of mono sounds (the HEAR API's layout), taken as it is.
    - integer PCM (int16, int32, uint8, int8) is rescaled from its full scale to [-1, 1).
    - empty, NaN or infinite input is refused, naming ``what`` and the problem (AudioError).
    A torch tensor stays a tensor on its device; a numpy array stays numpy."""
    is_torch = type(x).__module__.split(".")[0] == "torch"
    if not is_torch:
        x = np.asarray(x)
    shape = tuple(x.shape)
    dtype = str(x.dtype).removeprefix("torch.")
    if dtype in _PCM:
        offset, scale = _PCM[dtype]
        x = (x.float() - offset) / scale if is_torch else (x.astype(np.float32) - offset) / np.float32(scale)
    elif dtype.startswith(("float", "bfloat")):
        x = x.float() if is_torch else x.astype(np.float32, copy=False)
    else:
        raise AudioError(f"{what}: samples of type {dtype} are not audio: pass float, or integer PCM "
                            f"({', '.join(_PCM)})")
    if batch:
        if len(shape) != 2:
            raise AudioError(f"{what}: expected [n_sounds, n_samples], got shape {shape}")
    elif len(shape) == 2:
        a, b = shape
        if a <= MAX_CHANNELS < b:
            pass
        elif b <= MAX_CHANNELS < a:
            x = x.T
        else:
            raise AudioError(f"{what}: shape {shape} is ambiguous: a 2-D waveform is [C, N] or [N, C] with "
                                f"C <= {MAX_CHANNELS} channels and N > {MAX_CHANNELS} samples; pass mono audio "
                                f"as [N]")
    elif len(shape) != 1:
        raise AudioError(f"{what}: expected mono [N], [C, N] or [N, C], got shape {shape}")
    if not min(shape, default=0) or not x.shape[-1]:
        raise AudioError(f"{what}: empty (shape {shape}): no audio samples")
    finite = bool(x.isfinite().all()) if is_torch else bool(np.isfinite(x).all())
    if not finite:
        bad = int((~x.isfinite()).sum()) if is_torch else int((~np.isfinite(x)).sum())
        raise AudioError(f"{what}: contains NaN or Inf samples ({bad} of {int(np.prod(shape))})")
    return x


def to_mono(x: np.ndarray) -> np.ndarray:
    """[C, N] -> [N] by averaging channels; [N] passes through."""
    x = np.asarray(x, dtype=np.float32)
    return x if x.ndim == 1 else x.mean(axis=0, dtype=np.float32)


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling along the last axis.

    scipy's ``resample_poly`` rather than torchaudio's: it is the same Kaiser-windowed-sinc design
    (polyphase FIR, exact rational ratio up/down from the gcd, anti-aliasing cutoff at the lower
    Nyquist), but it runs on numpy, so shard-building worker processes never import torch, and it
    filters only the output samples it keeps. beta=8.6 gives ~ -80 dB stopband, below PCM16 noise
    relevance for music, instead of the default 5.0 (~ -45 dB) which lets audible aliasing through.
    """
    if sr_in == sr_out:
        return np.asarray(x, dtype=np.float32)
    if sr_in <= 0 or sr_out <= 0:
        raise AudioError(f"cannot resample from {sr_in} Hz to {sr_out} Hz")
    g = gcd(int(sr_in), int(sr_out))
    y = resample_poly(np.asarray(x, dtype=np.float32), sr_out // g, sr_in // g, axis=-1,
                      window=("kaiser", 8.6))
    return y.astype(np.float32, copy=False)


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """A whole file as mono float32 [N] at ``sample_rate``: what evaluation, the k-NN monitor and the
    augmentation preview read. Raises AudioError naming the file (undecodable, empty, NaN/Inf)."""
    x, sr = decode_file(path)
    if x.size == 0:
        raise AudioError(f"{path}: no audio samples")
    return resample(as_waveform(to_mono(x), str(path)), sr, sample_rate)   # a file's layout is known: [C, N]


MIN_SECONDS = 1.0   # shorter files are skipped: too short to crop training views from, or to be a track


def skip_reason(frames: int, sample_rate: int, peak: float, finite: bool = True,
                min_seconds: float = MIN_SECONDS) -> str | None:
    """Why a decoded file is not kept, or None: the one rule of the shard build (``check_audio``) and the
    index build (which streams a file and knows only these figures at its end). Empty, too short, NaN/Inf,
    silent (peak below -80 dBFS), in that order."""
    if frames == 0:
        return "no audio samples"
    if frames / sample_rate < min_seconds:
        return f"too short ({frames / sample_rate:.3f} s < {min_seconds} s)"
    if not finite:
        return "contains NaN or Inf samples"
    if peak < SILENCE_PEAK:
        db = 20 * np.log10(peak) if peak > 0 else float("-inf")
        return f"silent (peak {db:.1f} dBFS < -80 dBFS)"
    return None


def check_audio(x: np.ndarray, sr: int, min_seconds: float = MIN_SECONDS, source: str = "<audio>") -> None:
    """Raise AudioError naming ``source`` when audio is unusable (``skip_reason``)."""
    n = x.shape[-1] if x.ndim else 0
    finite = bool(np.all(np.isfinite(x)))
    peak = float(np.max(np.abs(x))) if n and finite else 0.0
    reason = skip_reason(n, sr, peak, finite, min_seconds)
    if reason:
        raise AudioError(f"{source}: {reason}")
