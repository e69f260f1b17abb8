"""A file as blocks of back-to-back crops at the model's sample rate, decoded by seeking.

The one-pass track embedding (``EmbeddingModel.embed``) decodes the whole file, mixes to mono, resamples
(``data.audio.resample``) and cuts back-to-back windows (``api.frame``). Here the same windows come out
``block_crops`` at a time, so memory is set by the block, not by the file (a 60-minute file costs what a
3-minute one does). Equality with the one-pass result rests on two facts about ``resample_poly``:

- output sample j sits at input position j·down/up, so a block read from input sample s0 with s0 a
  multiple of ``down`` lands exactly on the global output grid (offset s0·up/down);
- each output sample depends only on inputs within the filter's half-length (10·max(up, down) taps at
  the upsampled rate), so reading ``margin`` extra input samples on both sides of a block makes its
  outputs those of the whole-file resampling; the zero padding at a block's cut edges never reaches them.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

from ssl_music.data.audio import MIN_SECONDS, decode_error, resample, skip_reason, to_mono
from ssl_music.errors import AudioError


@dataclass
class Block:
    """``crops`` [K, crop_len] float32 starting at crop index ``first`` (start second = first · crop_s)."""

    first: int
    crops: np.ndarray


@dataclass
class FileInfo:
    """What streaming a file learnt about it; ``peak`` and ``frames`` are final once the blocks are exhausted."""

    sample_rate: int = 0
    frames: int = 0        # decoded input frames
    peak: float = 0.0


def _ratio(sr_in: int, sr_out: int) -> tuple[int, int, int]:
    """(up, down, margin in input samples) of the resampling from sr_in to sr_out."""
    if sr_in == sr_out:
        return 1, 1, 0
    g = gcd(sr_in, sr_out)
    up, down = sr_out // g, sr_in // g
    # resample_poly's filter half-length is 10·max(up, down) taps at the upsampled rate
    return up, down, -(-10 * max(up, down) // up) + 8


def _open(path: str | Path) -> sf.SoundFile:
    """A file, or one member of a shard (``SHARD.tar#KEY.flac``: a segment of at most a minute, read whole)."""
    text = str(path)
    if ".tar#" in text:
        return _open_member(*text.split("#", 1))
    p = Path(path)
    if not p.is_file():
        raise AudioError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise AudioError(f"{p}: zero-length file")
    try:
        return sf.SoundFile(str(p))
    except (sf.LibsndfileError, RuntimeError, ValueError, EOFError) as exc:
        raise decode_error(str(p), str(p), exc, opened=False) from None


def _open_member(tar: str, member: str) -> sf.SoundFile:
    import io
    import tarfile

    try:
        with tarfile.open(tar) as tf:
            data = tf.extractfile(member).read()
        return sf.SoundFile(io.BytesIO(data))
    except (OSError, KeyError, AttributeError, tarfile.TarError, sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{tar}#{member}: cannot read shard member ({exc})") from None


def _read(f: sf.SoundFile, name: str, start: int, frames: int) -> np.ndarray:
    try:
        f.seek(start)
        x = f.read(frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, EOFError) as exc:
        raise decode_error(f.name, f"{name} (frames {start}..{start + frames})", exc, opened=True) from None
    return to_mono(x.T)


def file_blocks(path: str | Path, sample_rate: int, crop_len: int, block_crops: int = 64,
                info: FileInfo | None = None, start_s: float = 0.0, end_s: float | None = None) -> Iterator[Block]:
    """Blocks of back-to-back crops of ``path`` resampled to ``sample_rate``: the windows of
    ``api.frame(resample(mono(file)), crop_len, crop_len)`` (tail shorter than a crop dropped, a file
    shorter than one crop zero-padded to one), ``block_crops`` at a time. ``start_s`` / ``end_s`` restrict
    it to a time range (crops then start at ``start_s``; a range shorter than a crop is padded to one).
    Raises AudioError naming the file for undecodable or non-finite audio; silence is the caller's call
    (``info.peak`` once exhausted)."""
    info = info if info is not None else FileInfo()
    name = str(path)
    with _open(path) as f:
        sr_in = int(f.samplerate)
        info.sample_rate = sr_in
        up, down, margin = _ratio(sr_in, int(sample_rate))
        span = crop_len * max(1, int(block_crops))
        origin = int(round(start_s * sample_rate))           # output sample of crop 0
        stop = None if end_s is None else int(round(end_s * sample_rate))
        n_crops_done = 0
        while True:
            o0 = origin + n_crops_done * crop_len
            o1 = o0 + span if stop is None else min(o0 + span, max(stop, origin + crop_len))
            s0 = max(0, o0 * down // up - margin) // down * down
            want = -(-o1 * down // up) + margin - s0
            x = _read(f, name, s0, want)
            if x.size and not np.all(np.isfinite(x)):
                raise AudioError(f"{name}: contains NaN or Inf samples")
            info.peak = max(info.peak, float(np.max(np.abs(x))) if x.size else 0.0)
            info.frames = max(info.frames, s0 + x.shape[0])
            eof = x.shape[0] < want
            y = resample(x, sr_in, int(sample_rate))
            off = s0 * up // down
            seg = y[o0 - off:o1 - off]
            if eof or stop is not None:
                n = seg.shape[0] // crop_len
                if n == 0 and n_crops_done == 0:   # shorter than one crop: zero-padded to one, as api.frame does
                    seg = np.pad(seg, (0, crop_len - seg.shape[0]))
                    n = 1
                if n:
                    yield Block(n_crops_done, np.ascontiguousarray(seg[:n * crop_len].reshape(n, crop_len)))
                    n_crops_done += n
                if eof or o1 >= max(stop, origin + crop_len) or n == 0:
                    return
                continue
            k = seg.shape[0] // crop_len
            yield Block(n_crops_done, np.ascontiguousarray(seg[:k * crop_len].reshape(k, crop_len)))
            n_crops_done += k


def read_excerpt(path: str | Path, sample_rate: int, start_s: float, seconds: float) -> np.ndarray:
    """``seconds`` of ``path`` from ``start_s``, mono at ``sample_rate`` (what a search page plays): the same
    samples the index embedded for that crop."""
    n = max(1, int(round(seconds * sample_rate)))
    blocks = list(file_blocks(path, sample_rate, n, 1, start_s=start_s, end_s=start_s + seconds))
    return blocks[0].crops[0] if blocks else np.zeros(n, np.float32)


def unusable(info: FileInfo, min_seconds: float = MIN_SECONDS) -> str | None:
    """Why a streamed file is not indexed (silent, too short: ``data.audio.skip_reason``, the shard build's
    rule), or None. NaN/Inf samples have already raised while streaming."""
    return skip_reason(info.frames, max(info.sample_rate, 1), info.peak, True, min_seconds)
