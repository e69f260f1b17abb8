"""Hand-crafted baseline features: MFCC and chroma statistics over time (the classical genre/tag baseline).

Per clip: mean and std over frames of 20 MFCCs, of their deltas and of 12 chroma bins (chroma_stft),
so ``2 * (n_mfcc + n_mfcc + 12)`` = 104 dimensions by default. Reports run it through the same probes
and splits as the learned embeddings. :func:`feature_frames` gives the frames themselves (MFCC or chroma
per STFT hop), the classical input of segmentation by self-similarity.
"""
from __future__ import annotations

import numpy as np

N_FFT = 2048
HOP = 512


def feature_dim(n_mfcc: int = 20) -> int:
    return 2 * (2 * n_mfcc + 12)


def mfcc_chroma_features(wave: np.ndarray, sample_rate: int, n_mfcc: int = 20) -> np.ndarray:
    """``[feature_dim(n_mfcc)]`` float32 statistics of a mono or ``[C, N]`` clip (channels are averaged)."""
    import librosa  # imported here: loading librosa costs seconds and only this baseline needs it

    y = np.asarray(wave, dtype=np.float32)
    if y.ndim == 2:
        y = y.mean(axis=0)
    if y.size < N_FFT:  # librosa warns and returns degenerate frames below one FFT window
        y = np.pad(y, (0, N_FFT - y.size))
    # one power spectrogram for both, as each of librosa's y= calls would compute it (centred, constant pad)
    power = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, pad_mode="constant")) ** 2
    mel = librosa.feature.melspectrogram(S=power, sr=sample_rate, n_fft=N_FFT)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), sr=sample_rate, n_mfcc=n_mfcc)
    # Delta needs at least `width` (9) frames; a shorter clip gets a narrower odd window.
    width = min(9, mfcc.shape[1] if mfcc.shape[1] % 2 else mfcc.shape[1] - 1)
    delta = librosa.feature.delta(mfcc, width=width) if width >= 3 else np.zeros_like(mfcc)
    chroma = librosa.feature.chroma_stft(S=power, sr=sample_rate, n_fft=N_FFT, hop_length=HOP)
    blocks = [mfcc, delta, chroma]
    feats = [b.mean(axis=1) for b in blocks] + [b.std(axis=1) for b in blocks]
    return np.nan_to_num(np.concatenate(feats)).astype(np.float32)


FRAME_KINDS = ("mfcc", "chroma")


def feature_frames(wave: np.ndarray, sample_rate: int, kind: str, n_mfcc: int = 20) -> np.ndarray:
    """``[n_frames, D]`` float32 frames every ``HOP`` samples (librosa, centred frames): ``mfcc`` (``n_mfcc``
    coefficients) or ``chroma`` (12 bins, chroma_stft) -- the same transforms as the clip statistics."""
    import librosa

    y = np.asarray(wave, dtype=np.float32)
    if y.ndim == 2:
        y = y.mean(axis=0)
    if y.size < N_FFT:
        y = np.pad(y, (0, N_FFT - y.size))
    if kind == "mfcc":
        f = librosa.feature.mfcc(y=y, sr=sample_rate, n_mfcc=n_mfcc, n_fft=N_FFT, hop_length=HOP)
    elif kind == "chroma":
        f = librosa.feature.chroma_stft(y=y, sr=sample_rate, n_fft=N_FFT, hop_length=HOP)
    else:
        raise ValueError(f"frame kind must be one of {FRAME_KINDS}, got '{kind}'")
    return np.nan_to_num(f.T).astype(np.float32)


class MfccChromaFeatures:
    """The hand-crafted baseline behind the embedding-model interface, so it is cached like the others."""

    identity = "mfcc_chroma/1"
    has_tempo_head = False
    embeds_on_threads = True  # librosa releases the GIL in its FFTs: 1.8x on 2 cores, the same features

    def __init__(self, sample_rate: int, crop_s: float):
        self.sample_rate, self.crop_s = int(sample_rate), float(crop_s)

    def embed_windows(self, wave: np.ndarray, sample_rate: int, hop_s: float | None = None) -> np.ndarray:
        # Statistics over the whole clip: one "window" per file.
        return np.asarray(mfcc_chroma_features(wave, sample_rate), dtype=np.float32)[None]
