"""Tempo estimation with the same-vs-different tempo head (Henkel et al. 2024), and its metrics.

The head answers "do these two crops have the same tempo?". To estimate a tempo we ask it about the
target against synthetic reference clips (clicks or a drum pattern) on a geometric BPM grid, average the
*same* probability over several windows of the target, and take the grid tempo where it peaks. Acc1 /
Acc2 are the MIREX tempo accuracies: within ±4 % of the reference, and (Acc2) also of ×2, ×3, ½, ⅓ of it.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ssl_music.data.crops import seconds_to_frames
from ssl_music.errors import SSLMusicError

ACC_TOLERANCE = 0.04
OCTAVE_FACTORS = (1.0, 2.0, 3.0, 1.0 / 2.0, 1.0 / 3.0)


# -------------------------------------------------------------------------------------------- metrics
def _correct(est, ref, factors: Sequence[float], tol: float) -> np.ndarray:
    est = np.atleast_1d(np.asarray(est, dtype=np.float64))
    ref = np.atleast_1d(np.asarray(ref, dtype=np.float64))
    if est.shape != ref.shape:
        raise ValueError(f"estimates {est.shape} and references {ref.shape} differ in shape")
    hits = np.zeros(est.shape, dtype=bool)
    for f in factors:
        hits |= np.abs(est - f * ref) <= tol * f * ref
    return hits


def acc1(est, ref, tol: float = ACC_TOLERANCE) -> float:
    """Share of estimates within ±tol (default 4 %) of the reference tempo."""
    hits = _correct(est, ref, (1.0,), tol)
    return float(hits.mean()) if hits.size else float("nan")


def acc2(est, ref, tol: float = ACC_TOLERANCE) -> float:
    """Like acc1, but ×2, ×3, ½ and ⅓ of the reference also count (octave errors forgiven)."""
    hits = _correct(est, ref, OCTAVE_FACTORS, tol)
    return float(hits.mean()) if hits.size else float("nan")


def librosa_tempo(wave: np.ndarray, sr: int) -> float:
    """Classical baseline: librosa's onset-autocorrelation tempo (global, one value per clip)."""
    import librosa

    y = np.asarray(wave, dtype=np.float32)
    y = y.mean(axis=0) if y.ndim == 2 else y
    return float(np.atleast_1d(librosa.feature.tempo(y=y, sr=int(sr)))[0])


# ------------------------------------------------------------------------------------------ estimation
# The BPM grid the head is asked against, by default: the span of common music tempi (and of the synthetic
# corpus's), in 2 % steps, half the 4 % Acc1 tolerance so an estimate can always land within it. Read by the
# suite's tempo section and `ssl-music tempo estimate`.
MIN_BPM, MAX_BPM, GRID_STEP = 60.0, 200.0, 0.02


def bpm_grid(lo: float = MIN_BPM, hi: float = MAX_BPM, step: float = GRID_STEP) -> np.ndarray:
    """Geometric grid lo, lo·(1+step), … ≤ hi: equal relative spacing, finer than the 4 % tolerance."""
    if not (0 < lo < hi) or step <= 0:
        raise SSLMusicError(f"invalid BPM grid: lo={lo}, hi={hi}, step={step}")
    n = int(np.floor(np.log(hi / lo) / np.log1p(step))) + 1
    return lo * (1.0 + step) ** np.arange(n)


def _fit(x: np.ndarray, length: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    return x[:length] if x.size >= length else np.pad(x, (0, length - x.size))


def reference_clips(grid: Sequence[float], crop_s: float, sample_rate: int, kind: str = "click",
                    click_fn: Callable | None = None) -> np.ndarray:
    """[G, L] synthetic clips, one per grid tempo, exactly crop length."""
    if click_fn is None:
        from ssl_music.data.synth import click_track as click_fn
    length = seconds_to_frames(crop_s, sample_rate)
    return np.stack([_fit(click_fn(float(b), crop_s, sample_rate, kind=kind), length) for b in grid])


def target_windows(wave: np.ndarray, sr: int, sample_rate: int, crop_s: float, n_windows: int) -> np.ndarray:
    """[W, L]: up to ``n_windows`` crops spread evenly over the clip (mono, resampled, zero-padded if short)."""
    x = np.asarray(wave, dtype=np.float32)
    x = x.mean(axis=0) if x.ndim == 2 else x
    if sr != sample_rate:
        from ssl_music.data.audio import resample

        x = resample(x, int(sr), int(sample_rate))
    length = seconds_to_frames(crop_s, sample_rate)
    if x.size <= length:
        return _fit(x, length)[None]
    starts = np.unique(np.linspace(0, x.size - length, max(1, n_windows)).round().astype(int))
    return np.stack([x[s:s + length] for s in starts])


def same_prob_curve(prob_fn: Callable, targets: np.ndarray, references: np.ndarray,
                    batch_size: int = 256) -> np.ndarray:
    """Mean P(same) of the W targets against each of the G references -> [G].

    ``prob_fn(a, b)`` scores row pairs: crops with ``model.tempo_same_prob``, or embeddings with
    ``model.tempo_same_prob_from_embeddings``."""
    W, G = len(targets), len(references)
    a = np.repeat(targets, G, axis=0)
    b = np.tile(references, (W, 1))
    probs = np.concatenate([np.asarray(prob_fn(a[i:i + batch_size], b[i:i + batch_size]),
                                       dtype=np.float64).reshape(-1) for i in range(0, len(a), batch_size)])
    return probs.reshape(W, G).mean(axis=0)


def pick_tempo(grid: np.ndarray, probs: np.ndarray, octave_correction: bool = True,
               typical: tuple[float, float] = (70.0, 180.0), close: float = 0.9) -> float:
    """Grid tempo with the highest *same* probability. With octave correction, when the winner lies outside
    the typical range and a candidate inside it scores at least ``close`` × the maximum, take that one:
    the head separates tempo octaves worst, and most music sits in the typical range."""
    best = int(np.argmax(probs))
    if not octave_correction or typical[0] <= grid[best] <= typical[1]:
        return float(grid[best])
    inside = (grid >= typical[0]) & (grid <= typical[1]) & (probs >= close * probs[best])
    if not inside.any():
        return float(grid[best])
    return float(grid[np.flatnonzero(inside)[np.argmax(probs[inside])]])


class TempoEstimator:
    """Holds the reference clips for one model so many files share them."""

    def __init__(self, model: Any, lo: float = MIN_BPM, hi: float = MAX_BPM, step: float = GRID_STEP,
                 kind: str = "click", n_windows: int = 4, octave_correction: bool = True,
                 typical: tuple[float, float] = (70.0, 180.0), click_fn: Callable | None = None):
        if not getattr(model, "has_tempo_head", False):
            raise SSLMusicError("tempo estimation needs a checkpoint trained with the tempo objective "
                                "(objectives.tempo.weight > 0); this one has no tempo head")
        self.model = model
        self.grid = bpm_grid(lo, hi, step)
        self.references = reference_clips(self.grid, model.crop_s, model.sample_rate, kind, click_fn)
        self.n_windows, self.octave_correction, self.typical = n_windows, octave_correction, tuple(typical)
        # Models that expose the head on embeddings embed the references once, not once per target file.
        self._ref_emb = (model.embed_crops(self.references)
                         if hasattr(model, "tempo_same_prob_from_embeddings") else None)

    def curves(self, waves: Sequence[np.ndarray], sr: int) -> list[np.ndarray]:
        """:meth:`curve` of several clips, their windows through the encoder in one call."""
        ws = [target_windows(w, sr, self.model.sample_rate, self.model.crop_s, self.n_windows) for w in waves]
        if self._ref_emb is None:
            return [same_prob_curve(self.model.tempo_same_prob, w, self.references) for w in ws]
        emb = self.model.embed_crops(np.concatenate(ws)) if ws else None
        ends = np.cumsum([len(w) for w in ws])
        return [same_prob_curve(self.model.tempo_same_prob_from_embeddings, emb[e - len(w):e], self._ref_emb)
                for w, e in zip(ws, ends)]

    def curve(self, wave: np.ndarray, sr: int) -> np.ndarray:
        return self.curves([wave], sr)[0]

    def estimates(self, waves: Sequence[np.ndarray], sr: int) -> list[float]:
        return [pick_tempo(self.grid, c, self.octave_correction, self.typical) for c in self.curves(waves, sr)]

    def estimate(self, wave: np.ndarray, sr: int) -> float:
        return self.estimates([wave], sr)[0]


def evaluate_tempo(estimator: TempoEstimator | None, paths: Sequence[str], ref_bpm: Sequence[float],
                   with_librosa: bool = True, progress: bool = False, group: int = 16) -> dict:
    """Acc1/Acc2 of the head (when ``estimator`` is given) and of librosa over files with known tempo.
    Undecodable, empty and silent files are listed under ``skipped`` as ``(path, reason)``, not scored.
    ``group`` files are held in memory at a time and go through the encoder in one call."""
    from ssl_music_eval.embed import load_audio

    sr = estimator.model.sample_rate if estimator is not None else 22050
    est_m, est_l, refs, kept, skipped = [], [], [], [], []
    iterator = zip(paths, ref_bpm)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(list(iterator), desc="tempo", unit="file")
    # Files go to the head a group at a time (one fuller encoder call) and to librosa after each group, so
    # torch seldom starts while librosa's BLAS threads still spin (ssl_music.threads). Head time per file on
    # the demo's eval set: 85 ms file by file, 18 ms with one BLAS thread, 16 ms grouped as well.
    pending: list[np.ndarray] = []

    def flush():
        if estimator is not None and pending:
            est_m.extend(estimator.estimates(pending, sr))
        if with_librosa:
            est_l.extend(librosa_tempo(w, sr) for w in pending)
        pending.clear()

    for path, ref in iterator:
        try:
            wave = load_audio(path, sr)
        except SSLMusicError as exc:
            skipped.append((str(path), str(exc)))
            continue
        kept.append(str(path))
        refs.append(float(ref))
        pending.append(wave)
        if len(pending) == group:
            flush()
    flush()
    out: dict = {"n": len(refs), "paths": kept, "reference": refs, "skipped": skipped}
    if estimator is not None:
        out["model"] = {"acc1": acc1(est_m, refs), "acc2": acc2(est_m, refs), "estimates": est_m}
    if with_librosa:
        out["librosa"] = {"acc1": acc1(est_l, refs), "acc2": acc2(est_l, refs), "estimates": est_l}
    return out
