"""Music segmentation from timestamp embeddings (McCallum, ICASSP 2019; DESIGN §7): what the temporal-proximity
objective is for, measured.

Per track and feature set:

1. timestamp features on one grid: the encoder's crop-length windows every ``hop_s`` (``embed_windows(wave, sr,
   hop_s)``, cached like track embeddings); frame k covers [k·hop, k·hop + crop] and sits at its centre
   t_k = k·hop + crop/2. The classical baselines (MFCC, chroma frames from librosa) are averaged over the
   hop-long cell around the same t_k: their own short context, on the same grid.
2. self-similarity S = cosine similarity of the frames after z-scoring each dimension over the track (the
   same for every feature set).
3. Foote's (2000) novelty: a Gaussian-tapered checkerboard kernel of ``kernel_s`` slid along the diagonal of
   S, mirror-padded at both ends (time reflected at the track's start and end, so the edges themselves are
   not novel and a boundary near an edge can still be found), clipped at 0 and scaled to a maximum of 1.
4. boundaries: ``librosa.util.peak_pick`` -- a novelty maximum within ± ``peak_s`` that exceeds its moving
   mean over ± ``mean_s`` by ``delta``, at least ``peak_s`` after the previous boundary.
5. ``mir_eval.segment.detection`` hit rate (F-measure, precision, recall) at each tolerance (0.5 s and 3 s),
   ``trim=True``: the track's start and end are not boundaries to find.

Scores are the mean over tracks with a 95 % interval of that mean (± 1.96 bootstrap SE over tracks resampled,
:func:`ssl_music_eval.metrics.se_interval`); the difference model − baseline gets a paired interval (the same
track resamples). Tracks without an annotated boundary inside them are left out and counted.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ssl_music_eval.baselines.features import HOP as FRAME_HOP, feature_frames
from ssl_music_eval.datasets import EvalDataset
from ssl_music_eval.embed import embed_dataset
from ssl_music_eval.metrics import CI_LEVEL, mean_ci
from ssl_music.data.crops import seconds_to_frames

SET_NAMES = {"model": "model", "random_init": "random init", "mfcc": "MFCC frames", "chroma": "chroma frames"}
EXAMPLE_FRAMES = 120   # the report's example SSM is strided down to at most this many frames


class FrameFeatures:
    """MFCC or chroma frames on the timestamp grid of a model, behind the embedding-model interface (cached)."""

    has_tempo_head = False

    def __init__(self, kind: str, sample_rate: int, crop_s: float):
        self.kind, self.sample_rate, self.crop_s = kind, int(sample_rate), float(crop_s)
        self.identity = f"{kind}_frames/1"

    def embed_windows(self, wave: np.ndarray, sample_rate: int, hop_s: float | None = None) -> np.ndarray:
        crop = seconds_to_frames(self.crop_s, sample_rate)
        hop = crop if hop_s is None else max(1, int(round(hop_s * sample_rate)))
        n = max(1, (np.asarray(wave).shape[-1] - crop) // hop + 1)   # as many frames as the model's windows
        f = feature_frames(wave, sample_rate, self.kind)            # [F, D], frame j centred on j * FRAME_HOP
        cell = np.round((np.arange(len(f)) * FRAME_HOP - crop / 2) / hop).astype(np.int64)
        ok = (cell >= 0) & (cell < n)
        sums = np.zeros((n, f.shape[1]), np.float64)
        np.add.at(sums, cell[ok], f[ok])
        counts = np.bincount(cell[ok], minlength=n)[:, None]
        nearest = f[np.clip(np.round((np.arange(n) * hop + crop / 2) / FRAME_HOP).astype(int), 0, len(f) - 1)]
        return np.where(counts > 0, sums / np.maximum(counts, 1), nearest).astype(np.float32)


def frame_times(n_frames: int, crop_s: float, hop_s: float, sample_rate: int) -> np.ndarray:
    """Centre times (s) of the grid's frames: k · hop + crop / 2, hop and crop in whole samples."""
    hop = max(1, int(round(hop_s * sample_rate)))
    return (np.arange(n_frames) * hop + seconds_to_frames(crop_s, sample_rate) / 2) / sample_rate


# ---------------------------------------------------------------------------------------------- algorithm
def self_similarity(frames: np.ndarray) -> np.ndarray:
    """[T, D] -> [T, T] cosine similarity of per-dimension z-scored frames."""
    x = np.asarray(frames, dtype=np.float64)
    z = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-8)
    z /= np.linalg.norm(z, axis=1, keepdims=True) + 1e-12
    return z @ z.T


def checkerboard_kernel(half: int) -> np.ndarray:
    """[2·half + 1]² Foote kernel: +1 within past and within future, −1 across, Gaussian taper, |K| sums to 1."""
    axis = np.arange(-half, half + 1)
    taper = np.exp(-0.5 * (axis / (0.5 * half)) ** 2)
    k = np.outer(np.sign(axis), np.sign(axis)) * np.outer(taper, taper)
    return k / np.abs(k).sum()


def novelty(ssm: np.ndarray, half: int) -> np.ndarray:
    """Checkerboard novelty along the diagonal of ``ssm`` (mirror-padded), clipped at 0 and scaled to max 1."""
    n = len(ssm)
    half = max(1, min(half, n - 1))  # np.pad's reflection needs fewer pad frames than the matrix has
    k = checkerboard_kernel(half)
    pad = np.pad(ssm, half, mode="reflect")
    nov = np.array([(pad[i:i + 2 * half + 1, i:i + 2 * half + 1] * k).sum() for i in range(n)])
    nov = np.maximum(nov, 0.0)
    return nov / nov.max() if nov.max() > 0 else nov


def detect(frames: np.ndarray, times: np.ndarray, seg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boundary times inside the track, novelty curve, SSM) of one track's frames on ``times``."""
    import librosa

    hop = float(times[1] - times[0]) if len(times) > 1 else 1.0
    frames_of = lambda s: max(1, int(round(s / hop)))  # noqa: E731
    ssm = self_similarity(frames)
    nov = novelty(ssm, frames_of(seg.kernel_s / 2))
    peak, mean = frames_of(seg.peak_s), frames_of(seg.mean_s)
    idx = librosa.util.peak_pick(nov, pre_max=peak, post_max=peak + 1, pre_avg=mean, post_avg=mean + 1,
                                 delta=float(seg.delta), wait=peak)
    idx = [i for i in idx if nov[i] > 0]
    return times[idx], nov, ssm


def hit_rates(reference: list[float], estimated: np.ndarray, end: float, windows) -> dict[str, dict[str, float]]:
    """``mir_eval.segment.detection`` (trim=True) of estimated inner boundaries against the reference
    boundaries (start and end included) at each tolerance: {"hr@0.5": {"f", "p", "r"}, ...}."""
    import mir_eval

    ref = np.asarray(sorted(reference), dtype=float)
    est_end = max(end, float(np.max(estimated)) + 1e-3) if len(estimated) else end
    est = np.unique(np.concatenate([[min(0.0, ref[0])], np.asarray(estimated, float), [est_end]]))
    ref_iv, est_iv = mir_eval.util.boundaries_to_intervals(ref), mir_eval.util.boundaries_to_intervals(est)
    out = {}
    for w in windows:
        with warnings.catch_warnings():  # "Estimated intervals are empty" when nothing was found: F = 0, as meant
            warnings.simplefilter("ignore", UserWarning)
            p, r, f = mir_eval.segment.detection(ref_iv, est_iv, window=float(w), trim=True)
        out[f"hr@{w:g}"] = {"f": float(f), "p": float(p), "r": float(r)}
    return out


# ---------------------------------------------------------------------------------------------- intervals
def _boot_index(n: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """[n_boot, n] track indices drawn with replacement (no draws when there is no track)."""
    return np.random.default_rng(seed).integers(0, n, (max(0, n_boot) if n else 0, n))


def ci_text(n_boot: int) -> str:
    return (f"mean over tracks; {100 * CI_LEVEL:.0f} % CI = mean ± 1.96 × bootstrap SE of that mean ({n_boot} "
            f"resamples of the tracks, the same resamples for every feature set, so differences are paired)")


def protocol(seg) -> dict:
    return {"algorithm": "Foote checkerboard novelty on a self-similarity matrix (cosine of z-scored frames), "
                         "librosa.util.peak_pick, mir_eval.segment.detection (trim=True)",
            "hop_s": float(seg.hop_s), "kernel_s": float(seg.kernel_s), "peak_s": float(seg.peak_s),
            "mean_s": float(seg.mean_s), "delta": float(seg.delta), "windows": [float(w) for w in seg.windows],
            "interval": ci_text(int(seg.bootstrap))}


def protocol_line(p: dict) -> str:
    return (f"Segmentation: {p['algorithm']}; frames every {p['hop_s']:g} s (model: crop-length windows; MFCC / "
            f"chroma: librosa frames averaged over each hop), kernel {p['kernel_s']:g} s, peaks: maximum within "
            f"± {p['peak_s']:g} s above the ± {p['mean_s']:g} s moving mean by {p['delta']:g} (novelty scaled to 1); "
            f"hit rate F at {', '.join(f'{w:g}' for w in p['windows'])} s; {p['interval']}.")


# ---------------------------------------------------------------------------------------------- the task
def _duration(path: str, fallback: float) -> float:
    import soundfile as sf

    try:
        return float(sf.info(path).duration)
    except Exception:  # a format soundfile cannot read the header of: the grid's end is close enough
        return fallback


def _strided(x: np.ndarray, step: int) -> list:
    return np.asarray(x)[::step].round(3).tolist()


def segmentation_task(cfg, task, ds_name: str, items: list, sets: dict[str, Any], cache: Path | None,
                      progress: bool = True) -> tuple[dict, list]:
    """Score every feature set of ``sets`` ({name: embedding model}) on the items' ``task.column`` boundaries.
    Returns (the task's results, [[path, skip reason], ...])."""
    seg = cfg.segmentation
    rows = [it for it in items if len(it.labels.get(task.column) or []) >= 3]   # start, >= 1 inside, end
    no_inner = len([it for it in items if task.column in it.labels]) - len(rows)
    if seg.max_items:
        rows = rows[: seg.max_items]
    sub = EvalDataset(f"{ds_name}-{task.name}-frames", rows, {task.column: "segmentation"})
    frames, skipped = {}, {}
    for name, m in sets.items():
        _, kept, sk, windows = embed_dataset(m, sub, cache_dir=cache, keep_windows=True, progress=progress,
                                             batch_size=cfg.embed.batch_size, hop_s=seg.hop_s)
        frames[name] = {str(it.path): w for it, w in zip(kept, windows)}
        skipped.update({p: r for p, r in sk})
    common = [it for it in rows if all(len(f.get(str(it.path), ())) >= 4 for f in frames.values())]
    for it in rows:
        if str(it.path) not in skipped and it not in common:
            skipped[str(it.path)] = f"{it.path}: too short for segmentation (< 4 frames of {seg.hop_s:g} s)"
    model = next(iter(sets.values()))
    keys = [f"hr@{w:g}" for w in seg.windows]
    per = {n: {k: {"f": [], "p": [], "r": []} for k in keys} for n in sets}   # set -> tolerance -> metric -> [track]
    n_est: dict[str, list] = {n: [] for n in sets}
    example = None
    for t, it in enumerate(common):
        ref = list(it.labels[task.column])
        for name in sets:
            f = frames[name][str(it.path)]
            times = frame_times(len(f), model.crop_s, seg.hop_s, model.sample_rate)
            est, nov, ssm = detect(f, times, seg)
            end = _duration(str(it.path), times[-1] + model.crop_s / 2)
            for k, v in hit_rates(ref, est, end, seg.windows).items():
                for metric, x in v.items():
                    per[name][k][metric].append(x)
            n_est[name].append(len(est))
            if t == 0:  # the report's picture: the first track
                step = max(1, -(-len(ssm) // EXAMPLE_FRAMES))
                example = example or {"path": str(it.path), "times": _strided(times, step), "reference": ref[1:-1],
                                      "sets": {}}
                example["sets"][name] = {"ssm": np.asarray(ssm)[::step, ::step].round(3).tolist(),
                                         "novelty": _strided(nov, step), "estimated": est.round(3).tolist()}
    draws = _boot_index(len(common), int(seg.bootstrap))
    scores, delta = {}, {}
    if common:
        scores = {n: {k: {metric: mean_ci(np.asarray(v), draws) for metric, v in ms.items()} for k, ms in per[n].items()}
                  for n in sets}
        model_f = {k: np.asarray(per["model"][k]["f"]) for k in keys} if "model" in sets else None
        delta = {n: {k: mean_ci(model_f[k] - np.asarray(per[n][k]["f"]), draws, bounds=(-1.0, 1.0)) for k in keys}
                 for n in sets if n != "model" and model_f is not None}
    counts = {"reference": float(np.mean([len(it.labels[task.column]) - 2 for it in common])) if common else 0.0,
              **{n: float(np.mean(v)) if v else 0.0 for n, v in n_est.items()}}
    result = {"type": "segmentation", "column": task.column, "n": len(common), "no_inner_boundary": no_inner,
              "segmentation": {"scores": scores, "delta_f": delta, "windows": [float(w) for w in seg.windows],
                               "boundaries_per_track": counts, "example": example,
                               "per_track_f": {n: {k: np.round(per[n][k]["f"], 4).tolist() for k in keys} for n in sets}}}
    return result, [[p, r] for p, r in skipped.items()]


# ---------------------------------------------------------------------------------------------- report
def report_part(doc, task: str, seg: dict, fmt) -> None:
    """Table of hit rates per feature set (``fmt`` formats a {mean, std, ci_low, ci_high} dict), the paired
    differences, and one self-similarity matrix with the predicted and true boundaries."""
    scores, keys = seg.get("scores", {}), [f"hr@{w:g}" for w in seg.get("windows", [])]
    if not scores:
        doc.para("No track with an annotated boundary inside it could be scored.")
        return
    per, last = seg.get("boundaries_per_track", {}), keys[-1]
    header = ["features"] + [f"HR@{k[3:]} F" for k in keys] + [f"HR@{last[3:]} P", f"HR@{last[3:]} R", "boundaries / track"]
    rows = [[SET_NAMES.get(n, n)] + [fmt(s[k]["f"]) for k in keys]
            + [f"{s[last]['p']['mean']:.3f}", f"{s[last]['r']['mean']:.3f}", f"{per.get(n, float('nan')):.1f}"]
            for n, s in scores.items()]
    doc.table(header, rows + [["reference", *["—"] * (len(keys) + 2), f"{per.get('reference', 0):.1f}"]])
    if seg.get("delta_f"):
        doc.para("Model minus baseline, hit-rate F (paired over the same tracks; an interval above 0 = the model "
                 "segments better):")
        doc.table(["baseline"] + [f"Δ HR@{k[3:]} F" for k in keys],
                  [[SET_NAMES.get(n, n)] + [f"{d[k]['mean']:+.3f} [{d[k]['ci_low']:+.3f}, {d[k]['ci_high']:+.3f}]"
                                            for k in keys] for n, d in seg["delta_f"].items()])
    if seg.get("example"):
        doc.figure(_example_figure(task, seg["example"]), f"{task}: self-similarity with boundaries")


def _example_figure(task: str, ex: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [n for n in ("model", "mfcc", "chroma", "random_init") if n in ex["sets"]][:2]
    t = np.asarray(ex["times"])
    fig, axes = plt.subplots(2, len(shown), figsize=(4.2 * len(shown), 5.4), squeeze=False,
                             gridspec_kw={"height_ratios": [4, 1]})
    for j, name in enumerate(shown):
        s = ex["sets"][name]
        ax, ax2 = axes[0][j], axes[1][j]
        ax.imshow(np.asarray(s["ssm"]), cmap="magma", origin="lower", extent=(t[0], t[-1], t[0], t[-1]),
                  vmin=-1, vmax=1)
        for b in ex["reference"]:
            ax.axvline(b, color="c", lw=1.2)
            ax2.axvline(b, color="c", lw=1.2)
        for b in s["estimated"]:
            ax.axhline(b, color="w", lw=1, ls="--")
            ax2.axvline(b, color="r", lw=1, ls="--")
        ax2.plot(t, s["novelty"], color="k", lw=1)
        ax.set_title(f"{SET_NAMES.get(name, name)}", fontsize=9)
        ax2.set_xlim(t[0], t[-1])
        ax2.set_xlabel("time (s)")
        ax2.set_ylabel("novelty", fontsize=8)
    fig.suptitle(f"{task}: {Path(ex['path']).name} — true boundaries cyan (vertical), predicted dashed "
                 f"(white / red)", fontsize=9)
    return fig
