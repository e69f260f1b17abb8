"""Per-example augmentation with audiomentations (runs in DataLoader workers).

Parameters are drawn from the caller's ``np.random.Generator`` with the same mapping as the batched
backend (:func:`ssl_music.augment.chain.draw_params`) and handed to the audiomentations transform, so runs
are reproducible and both backends sample the same distributions. audiomentations has no delay and its
reverb needs impulse-response files, so those two (and the noise, to keep it on our generator) are numpy.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

import numpy as np
from scipy.signal import fftconvolve

import audiomentations as am
from ssl_music.augment.chain import N_UNIFORMS, draw_params


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    y = y[:n]
    return np.pad(y, (0, n - len(y))) if len(y) < n else y


def _stretch(x: np.ndarray, rate: float, out_len: int, sr: int) -> np.ndarray:
    """Signalsmith stretch of the first out_len * rate source samples to exactly out_len samples."""
    need = int(math.ceil(out_len * rate))
    src = _fit(np.asarray(x, np.float32), need)
    t = am.TimeStretch(min_rate=rate, max_rate=rate, leave_length_unchanged=False,
                       method="signalsmith_stretch", p=1.0)
    t.parameters = {"should_apply": True, "rate": rate}
    return _fit(t.apply(src, sr).astype(np.float32), out_len)


def _audiomentations(name: str, prm: Dict[str, float], params: Dict[str, Any]):
    """The audiomentations transform for ``name`` with its parameters frozen to ``prm``."""
    if name == "pitch_shift":
        t = am.PitchShift(method="signalsmith_stretch", p=1.0)
        t.parameters = {"num_semitones": prm["semitones"]}
    elif name == "gain":
        t = am.Gain(p=1.0)
        t.parameters = {"amplitude_ratio": 10 ** (prm["gain_db"] / 20)}
    elif name == "polarity":
        t = am.PolarityInversion(p=1.0)
    elif name in ("low_pass", "high_pass", "high_low_pass"):
        low = name == "low_pass" or (name == "high_low_pass" and prm["is_low"] > 0.5)
        cls = am.LowPassFilter if low else am.HighPassFilter
        t = cls(min_rolloff=6, max_rolloff=6 * int(prm["order"]), p=1.0)
        t.parameters = {"cutoff_freq": prm["cutoff_freq"], "rolloff": 6 * int(prm["order"])}
    elif name == "band_pass":
        t = am.BandPassFilter(min_rolloff=6, max_rolloff=6 * int(prm["order"]), p=1.0)
        t.parameters = {"center_freq": prm["center_freq"], "bandwidth": prm["bandwidth"],
                        "rolloff": 6 * int(prm["order"])}
    elif name == "eq":
        t = am.PeakingFilter(p=1.0)
        t.parameters = {"center_freq": prm["center_freq"], "gain_db": prm["gain_db"], "q_factor": prm["q"]}
    else:
        return None
    t.parameters["should_apply"] = True
    return t


def _numpy(name: str, x: np.ndarray, prm: Dict[str, float], params: Dict[str, Any], sr: int,
           rng: np.random.Generator) -> np.ndarray:
    if name == "noise":
        rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
        return x + rng.normal(0.0, rms / 10 ** (prm["snr_db"] / 20), x.shape).astype(np.float32)
    if name == "delay":
        d = int(round(prm["delay_ms"] * sr / 1000))
        delayed = np.concatenate([np.zeros(min(d, len(x)), np.float32), x[: max(0, len(x) - d)]])
        return x + np.float32(prm["volume"]) * delayed
    if name == "reverb":
        # Synthetic room: exponentially decaying Gaussian noise (-60 dB at rt60), unit energy.
        n_ir = max(1, int(math.ceil(float(params["max_rt60_s"]) * sr)))
        t = np.arange(n_ir) / sr
        ir = rng.standard_normal(n_ir) * np.exp(-math.log(1000.0) * t / prm["rt60_s"])
        ir /= max(np.sqrt(np.sum(ir ** 2)), 1e-9)
        wet = fftconvolve(x, ir.astype(np.float32))[: len(x)]
        return ((1 - prm["wet"]) * x + prm["wet"] * wet).astype(np.float32)
    raise KeyError(name)


def apply_chain(x: np.ndarray, chain: Dict[str, Dict[str, Any]], sr: int, out_len: int,
                rng: np.random.Generator, record: Optional[List] = None) -> np.ndarray:
    """One example [S] -> [out_len]; the crop to out_len happens at time_stretch or first thing."""
    x = np.asarray(x, np.float32)
    if "time_stretch" not in chain:
        x = _fit(x, out_len)
    for name, spec in chain.items():
        u = rng.random((1, 1 + N_UNIFORMS[name]))
        apply = bool(u[0, 0] < spec["p"])
        prm = {k: float(np.asarray(v).reshape(-1)[0])
               for k, v in draw_params(name, spec["params"], u[:, 1:], np).items()}
        if record is not None:
            record.append((name, apply, prm))
        if name == "time_stretch":
            x = _stretch(x, prm["rate"], out_len, sr) if apply else _fit(x, out_len)
            continue
        if not apply:
            continue
        t = _audiomentations(name, prm, spec["params"])
        x = t.apply(x, sr) if t is not None else _numpy(name, x, prm, spec["params"], sr, rng)
        x = np.asarray(x, np.float32)
    return x
