"""Per-example augmentation on numpy, mostly through audiomentations (runs in DataLoader workers).

Each chain entry draws its uniforms from the caller's ``np.random.Generator`` and maps them to parameters
with its transform's :meth:`~ssl_music.augment.transforms.Transform.draw`, the mapping the batched backend
uses too, so runs are reproducible and both backends sample the same distributions.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from ssl_music.augment.signal import fit
from ssl_music.augment.transforms import TRANSFORMS


def apply_chain(x: np.ndarray, chain: Dict[str, Dict[str, Any]], sr: int, out_len: int,
                rng: np.random.Generator, record: Optional[List] = None,
                fixed: Optional[Dict[str, tuple]] = None) -> np.ndarray:
    """One example [S] -> [out_len]; the crop to out_len happens at the entry that sets the length
    (time_stretch) or first thing when there is none. ``fixed`` {name: (applied, params)}: those entries
    take these draws (another view's, as ``record`` holds them) instead of their own."""
    x = np.asarray(x, np.float32)
    transforms = {name: TRANSFORMS[name]() for name in chain}
    if not any(t.sets_length for t in transforms.values()):
        x = fit(x, out_len)
    for name, spec in chain.items():
        t = transforms[name]
        # 1 + n_uniforms per entry, applied or not, as the batched backend draws them for every row
        u = rng.random((1, 1 + t.n_uniforms))
        applied = bool(u[0, 0] < spec["p"])
        drawn = {k: float(np.asarray(v).reshape(-1)[0]) for k, v in t.draw(spec["params"], u[:, 1:], np).items()}
        if fixed is not None and name in fixed:  # drawn all the same, so the random stream does not move
            applied, drawn = fixed[name]
        if record is not None:
            record.append((name, applied, drawn))
        x = np.asarray(t.cpu_apply(x, applied, drawn, spec["params"], sr, out_len, rng), np.float32)
    return x
