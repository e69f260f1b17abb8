"""Realistic degradations of a test clip, for robustness as an evaluation task (issue #25; Won et al., SMC 2020:
front-ends differ in how they degrade, not only in clean accuracy).

A degradation is named ``KIND`` or ``KIND@LEVEL`` (``white@20``, ``pink@0``, ``mp3@0.9``, ``reverb@1.2``,
``lowpass@3000``) and found through the :data:`DEGRADATIONS` registry. Each is a pure function of the clip, its
sample rate and a generator: the same seed gives the same degraded copy, so every compared model (and
MFCC+chroma) is scored on identical audio. Levels: noise in dB SNR (signal power over noise power, over the
whole clip), lossy coding as the MP3 encoder's compression level (0 best … 1 smallest), reverb as RT60 in
seconds, band-limiting as the cut-off in Hz.
"""
from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ssl_music.errors import ConfigError


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def _at_snr(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """x + noise scaled so that power(x) / power(noise) is ``snr_db``; a silent clip stays as it is."""
    px, pn = _power(x), _power(noise)
    if px == 0.0 or pn == 0.0:
        return x.copy()
    scale = np.sqrt(px / (pn * 10.0 ** (snr_db / 10.0)))
    return (x + scale * noise).astype(x.dtype)


def white_noise(x: np.ndarray, sr: int, rng: np.random.Generator, snr_db: float = 20.0) -> np.ndarray:
    return _at_snr(x, rng.standard_normal(x.shape[-1]), snr_db)


def pink_noise(x: np.ndarray, sr: int, rng: np.random.Generator, snr_db: float = 20.0) -> np.ndarray:
    """1/f noise: white noise shaped by 1/sqrt(f) in the frequency domain (DC left out)."""
    n = x.shape[-1]
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.size, dtype=np.float64)
    spec[1:] /= np.sqrt(f[1:])
    spec[0] = 0.0
    return _at_snr(x, np.fft.irfft(spec, n), snr_db)


def mp3(x: np.ndarray, sr: int, rng: np.random.Generator, level: float = 0.9) -> np.ndarray:
    """Encode to MP3 at ``level`` (libsndfile's compression level, 1 = lowest bitrate) and decode back, the
    length restored (encoder delay trimmed by libsndfile; a short tail is zero-padded)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1.0, 1.0).astype(np.float32), sr, format="MP3", compression_level=float(level))
    buf.seek(0)
    y, _ = sf.read(buf, dtype="float32")
    y = y if y.ndim == 1 else y.mean(axis=1)
    out = np.zeros_like(x)
    out[: min(len(y), len(x))] = y[: len(x)]
    return out


def reverb(x: np.ndarray, sr: int, rng: np.random.Generator, rt60: float = 1.0) -> np.ndarray:
    """A synthetic room: exponentially decaying noise (60 dB down after ``rt60`` s) after a unit direct path,
    convolved and rescaled to the clip's own power."""
    from scipy.signal import fftconvolve

    n = max(1, int(rt60 * sr))
    t = np.arange(n) / sr
    ir = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)   # ln(1000) = 6.9078: -60 dB at rt60
    ir[0] = 1.0
    y = fftconvolve(x.astype(np.float64), ir)[: len(x)]
    py = _power(y)
    return (y * np.sqrt(_power(x) / py) if py > 0 else y).astype(x.dtype)


def lowpass(x: np.ndarray, sr: int, rng: np.random.Generator, cutoff_hz: float = 3000.0) -> np.ndarray:
    """Band-limiting (a telephone or an old recording): 8th-order Butterworth low-pass, zero phase."""
    from scipy.signal import butter, sosfiltfilt

    if cutoff_hz >= sr / 2:
        return x.copy()
    sos = butter(8, cutoff_hz, btype="low", fs=sr, output="sos")
    return sosfiltfilt(sos, x.astype(np.float64)).astype(x.dtype)


@dataclass(frozen=True)
class Degradation:
    apply: Callable[..., np.ndarray]
    default: float
    unit: str


DEGRADATIONS: dict[str, Degradation] = {
    "white": Degradation(white_noise, 20.0, "dB SNR"),
    "pink": Degradation(pink_noise, 20.0, "dB SNR"),
    "mp3": Degradation(mp3, 0.9, "compression level"),
    "reverb": Degradation(reverb, 1.0, "s RT60"),
    "lowpass": Degradation(lowpass, 3000.0, "Hz cut-off"),
}


def parse(spec: str, key: str = "robustness.degradations") -> tuple[str, float]:
    """``'pink@10'`` -> (``'pink'``, 10.0); ``'mp3'`` -> its default level. Unknown kinds and bad levels are
    ConfigErrors naming ``key``."""
    kind, _, level = str(spec).partition("@")
    if kind not in DEGRADATIONS:
        raise ConfigError(f"invalid value for suite key '{key}': unknown degradation '{kind}' in '{spec}' "
                          f"(known: {', '.join(DEGRADATIONS)})")
    if not level:
        return kind, DEGRADATIONS[kind].default
    try:
        return kind, float(level)
    except ValueError:
        raise ConfigError(f"invalid value for suite key '{key}': level of '{spec}' must be a number "
                          f"({DEGRADATIONS[kind].unit})") from None


def degrade(x: np.ndarray, sr: int, spec: str, seed: int, item: str = "") -> np.ndarray:
    """The degraded copy of one clip. Its generator derives from ``seed``, the degradation and ``item`` (e.g.
    the file's path), so each clip gets its own noise and a re-run, or another model, gets the same copy."""
    kind, level = parse(spec)
    rng = np.random.default_rng([int(seed), zlib.crc32(f"{spec}|{item}".encode())])
    return DEGRADATIONS[kind].apply(np.asarray(x, dtype=np.float32), int(sr), rng, level)


def snr_db(clean: np.ndarray, degraded: np.ndarray) -> float:
    """Measured SNR of an additive degradation: power(clean) / power(degraded - clean), in dB."""
    noise = np.asarray(degraded, np.float64) - np.asarray(clean, np.float64)
    return 10.0 * np.log10(_power(clean) / _power(noise))
