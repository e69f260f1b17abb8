"""Per-example augmentation on numpy, mostly through audiomentations (runs in DataLoader workers).

Each chain entry draws its uniforms from the caller's ``np.random.Generator`` and maps them to parameters
with its transform's :meth:`~ssl_music.augment.transforms.Transform.draw`, the mapping the batched backend
uses too, so runs are reproducible and both backends sample the same distributions.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

import numpy as np

import audiomentations as am
from ssl_music.augment.chain import TRANSFORMS


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


def apply_chain(x: np.ndarray, chain: Dict[str, Dict[str, Any]], sr: int, out_len: int,
                rng: np.random.Generator, record: Optional[List] = None) -> np.ndarray:
    """One example [S] -> [out_len]; the crop to out_len happens at the entry that sets the length
    (time_stretch) or first thing when there is none."""
    x = np.asarray(x, np.float32)
    transforms = {name: TRANSFORMS[name]() for name in chain}
    if not any(t.sets_length for t in transforms.values()):
        x = _fit(x, out_len)
    for name, spec in chain.items():
        t = transforms[name]
        # 1 + n_uniforms per entry, applied or not, as the batched backend draws them for every row
        u = rng.random((1, 1 + t.n_uniforms))
        applied = bool(u[0, 0] < spec["p"])
        drawn = {k: float(np.asarray(v).reshape(-1)[0]) for k, v in t.draw(spec["params"], u[:, 1:], np).items()}
        if record is not None:
            record.append((name, applied, drawn))
        x = np.asarray(t.cpu_apply(x, applied, drawn, spec["params"], sr, out_len, rng), np.float32)
    return x
