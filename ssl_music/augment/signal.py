"""Helpers the transforms and both backends share: fitting lengths, working on a subset of a batch's rows,
and the CPU time-stretch. Imports nothing of the package, so transforms and backends can both use it."""
from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np


def fit(y: np.ndarray, n: int) -> np.ndarray:
    """[S] -> [n]: cut, or zero-pad at the end."""
    y = y[:n]
    return np.pad(y, (0, n - len(y))) if len(y) < n else y


def cpu_stretch(x: np.ndarray, rate: float, out_len: int, sr: int) -> np.ndarray:
    """Signalsmith stretch of the first out_len * rate source samples to exactly out_len samples."""
    import audiomentations as am

    need = int(math.ceil(out_len * rate))
    src = fit(np.asarray(x, np.float32), need)
    t = am.TimeStretch(min_rate=rate, max_rate=rate, leave_length_unchanged=False,
                       method="signalsmith_stretch", p=1.0)
    t.parameters = {"should_apply": True, "rate": rate}
    return fit(t.apply(src, sr).astype(np.float32), out_len)


def crop(x, n: int):
    """Batch [N, S] -> [N, n]: a view when x is long enough (a copy of the whole batch costs as much as a
    cheap transform), else zero-padded."""
    import torch

    return x[:, :n] if x.shape[1] >= n else torch.nn.functional.pad(x, (0, n - x.shape[1]))


def on_rows(y, mask, fn: Callable):
    """y with the rows where ``mask`` holds replaced by fn(those row indices); fn sees only those rows."""
    idx = mask.nonzero().squeeze(1)
    if idx.numel() == 0:
        return y
    if idx.numel() == mask.numel():  # all rows: skip the gather/scatter copies
        return fn(None)
    y = y.clone()
    y[idx] = fn(idx)
    return y


def take(t, idx: Optional[object]):
    return t if idx is None else t[idx]
