import numpy as np

from ssl_music_eval.baselines.features import feature_dim, mfcc_chroma_features


def test_mfcc_chroma_statistics_shape_and_pitch_sensitivity():
    sr = 16000
    t = np.arange(sr * 2) / sr
    a4 = np.sin(2 * np.pi * 440.0 * t).astype(np.float32)
    c5 = np.sin(2 * np.pi * 523.25 * t).astype(np.float32)
    fa, fc = mfcc_chroma_features(a4, sr), mfcc_chroma_features(np.stack([c5, c5]), sr)
    assert fa.shape == fc.shape == (feature_dim(),) and fa.dtype == np.float32
    chroma_mean = slice(40, 52)  # [mfcc mean, delta mean, chroma mean, ...]
    assert np.argmax(fa[chroma_mean]) == 9 and np.argmax(fc[chroma_mean]) == 0  # A and C
    assert mfcc_chroma_features(a4[:300], sr).shape == (feature_dim(),)  # shorter than one FFT window
