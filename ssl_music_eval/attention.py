"""Where a self-attention back-end listens (issue #25; Won et al. 2019's figures): the attention rollout of the
class token over time, drawn under the clip's log-mel spectrogram on one time axis. The CLI (`ssl-music
attention`) draws one clip; an evaluation suite's ``attention`` section records a few clips per dataset
(:func:`listen_clips`) and the report draws them from the recorded figures alone (:func:`attention_figure`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

N_MELS = 64
HOP = 256


def _window(times: np.ndarray) -> tuple[float, float, float]:
    step = float(np.median(np.diff(times))) if times.size > 1 else 0.1
    return step, max(0.0, float(times[0]) - step / 2), float(times[-1]) + step / 2


def log_mel_under(wave: np.ndarray, sample_rate: int, times) -> tuple[np.ndarray, float, float]:
    """The spectrogram under attention at frame ``times``: [N_MELS, frames] dB (0 = the loudest bin) of ``wave``
    from half a frame before the first time to half a frame after the last, its start and the seconds it covers."""
    import librosa

    _, t0, t1 = _window(np.asarray(times, float))
    seg = np.asarray(wave, np.float32)[int(t0 * sample_rate): int(t1 * sample_rate)]
    mel = librosa.feature.melspectrogram(y=seg, sr=sample_rate, n_mels=N_MELS, hop_length=HOP)
    return librosa.power_to_db(mel, ref=np.max), t0, seg.size / sample_rate


def attention_figure(mel: np.ndarray, t0: float, seconds: float, times, weights, title: str = "",
                     marks: tuple[float, ...] = ()):
    """The spectrogram (``mel`` dB from ``t0`` over ``seconds``) above the attention over frame ``times``."""
    from ssl_music_eval.reports.report_doc import pyplot

    plt = pyplot()
    times, weights = np.asarray(times, float), np.asarray(weights, float)
    step, _, t1 = _window(times)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 4.2), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    top.imshow(np.asarray(mel, float), origin="lower", aspect="auto", cmap="magma",
               extent=(t0, t0 + seconds, 0, len(mel)))
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
    return fig


def draw_attention(wave: np.ndarray, sample_rate: int, times: np.ndarray, weights: np.ndarray, path: str | Path,
                   title: str = "", marks: tuple[float, ...] = ()) -> Path:
    """Log-mel spectrogram of ``wave`` over [times[0] - half a frame, times[-1] + half a frame], attention
    under it, saved as a PNG; ``marks`` (seconds) draws dashed lines on both, e.g. where drums enter."""
    mel, t0, seconds = log_mel_under(wave, sample_rate, times)
    fig = attention_figure(mel, t0, seconds, times, weights, title, marks)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    from ssl_music_eval.reports.report_doc import pyplot

    pyplot().close(fig)
    return out


def listen_clips(model, items, spec) -> list[dict]:
    """For a model that :attr:`~ssl_music.api.EmbeddingModel.listens`, each chosen clip's attention over its
    crop-length window from ``spec.start_s`` and the spectrogram under it (dB rounded to 1), as the report
    draws them: the clips named in ``spec.paths`` (as the dataset lists them), else its first ``spec.clips``."""
    from ssl_music.data.audio import load_audio

    if not getattr(model, "listens", False) or not items:
        return []
    chosen = ([it for p in spec.paths for it in items if str(it.path) == p or str(it.path).endswith("/" + p)]
              if spec.paths else list(items)[: int(spec.clips)])
    out = []
    for it in chosen:
        wave = load_audio(it.path, model.sample_rate)
        times, weights = model.attention(wave, model.sample_rate, start_s=float(spec.start_s))
        mel, t0, seconds = log_mel_under(wave, model.sample_rate, times)
        out.append({"path": str(it.path), "start_s": float(spec.start_s), "t0": round(t0, 4),
                    "seconds": round(seconds, 4), "times": np.round(times, 4).tolist(),
                    "weights": np.round(weights, 6).tolist(), "mel_db": np.round(mel, 1).tolist()})
    return out


def report_part(doc, clips: list[dict]) -> None:
    """The report's "where the model listens" section: one figure per recorded clip."""
    if not clips:
        return
    doc.heading("Where the model listens", 3)
    doc.para("Attention rollout of the self-attention back-end's class token over one crop-length window "
             "(Won et al. 2019): the share of the clip embedding each moment draws on; dotted line = uniform.")
    for c in clips:
        name = Path(c["path"]).name
        doc.figure(attention_figure(c["mel_db"], c["t0"], c["seconds"], c["times"], c["weights"],
                                    title=f"{name}: where the model listens"), f"attention over {name}")
