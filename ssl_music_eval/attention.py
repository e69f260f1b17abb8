"""Where a self-attention back-end listens (issue #25; Won et al. 2019's figures): the attention rollout of the
class token over time, drawn under the clip's log-mel spectrogram on one time axis."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def draw_attention(wave: np.ndarray, sample_rate: int, times: np.ndarray, weights: np.ndarray, path: str | Path,
                   title: str = "", marks: tuple[float, ...] = ()) -> Path:
    """Log-mel spectrogram of ``wave`` over [times[0] - half a frame, times[-1] + half a frame], attention
    under it; ``marks`` (seconds) draws dashed lines on both, e.g. where drums enter."""
    import librosa
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times, weights = np.asarray(times, float), np.asarray(weights, float)
    step = float(np.median(np.diff(times))) if times.size > 1 else 0.1
    t0, t1 = max(0.0, times[0] - step / 2), times[-1] + step / 2
    seg = np.asarray(wave, np.float32)[int(t0 * sample_rate): int(t1 * sample_rate)]
    mel = librosa.power_to_db(librosa.feature.melspectrogram(y=seg, sr=sample_rate, n_mels=64, hop_length=256),
                              ref=np.max)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 4.2), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    top.imshow(mel, origin="lower", aspect="auto", cmap="magma", extent=(t0, t0 + seg.size / sample_rate, 0, 64))
    top.set_ylabel("mel band")
    top.set_title(title or "attention rollout of the class token")
    bottom.bar(times, weights, width=step, color="#3b6ea8")
    bottom.axhline(1.0 / max(1, weights.size), color="grey", lw=0.8, ls=":", label="uniform")
    bottom.set_ylabel("attention")
    bottom.set_xlabel("time (s)")
    bottom.legend(loc="upper right", fontsize=8)
    for m in marks:
        for ax in (top, bottom):
            ax.axvline(m, color="white" if ax is top else "black", ls="--", lw=1)
    bottom.set_xlim(t0, t1)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
