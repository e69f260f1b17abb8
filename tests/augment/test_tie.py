"""Draws shared between views (``Objective.tie``), on every backend: each key of the subspace objective
takes from its query exactly the draws of the transforms its part is sensitive to, and draws the rest."""
import numpy as np
import pytest
import torch

from ssl_music.augment import ViewAugmenter
from ssl_music.config import load_config
from ssl_music.objectives import view_treatments
from ssl_music.models import build_encoder

SR = 16000
CHAIN = ["augment.preset=stretch_pitch", "augment.chain.time_stretch.p=1.0", "augment.chain.pitch_shift.p=1.0",
         "augment.chain.gain.p=1.0"]


def _cfg(backend):
    return load_config(overrides=["data.crop_s=0.25", f"augment.backend={backend}", "objectives.subspaces.weight=1",
                                  *CHAIN])


def _draws(backend, b=3, seed=0):
    """{(example, view, transform): params} and the views' output for one batch of subspace views."""
    cfg = _cfg(backend)
    aug = ViewAugmenter(cfg.augment, cfg.data, view_treatments(cfg.data))
    v = 1 + len(cfg.data.subspaces.shared)
    src = 0.1 * np.random.default_rng(seed).standard_normal((b, v, aug.source_len("subspaces"))).astype(np.float32)
    record, draws = [], {}
    if backend == "cpu":
        rng = np.random.default_rng(seed)
        for i in range(b):
            rec = []
            aug.apply_sample({"subspaces": src[i]}, rng, rec)
            for view, row, name, applied, prm in rec:
                draws[i, row, name] = (applied, prm)
        return cfg, draws
    frontend = build_encoder(cfg.model, SR).frontend if backend == "spectral" else None
    out = aug.apply_batch({"subspaces": torch.from_numpy(src)}, torch.Generator().manual_seed(seed), record,
                          frontend=frontend)
    assert torch.isfinite(out["subspaces"]).all() and out["subspaces"].shape[:2] == (b, v)
    for name, applied, prm in record:
        for n in range(b * v):
            draws[n // v, n % v, name] = (bool(applied[n]), {k: float(x[n]) for k, x in prm.items()})
    return cfg, draws


@pytest.mark.parametrize("backend", ["cpu", "gpu", "spectral"])
def test_each_key_shares_exactly_its_parts_transforms_with_the_query(backend):
    cfg, draws = _draws(backend)
    shared = [list(s) for s in cfg.data.subspaces.shared]
    names = sorted({k[2] for k in draws})
    assert {"time_stretch", "pitch_shift", "gain"} <= set(names)
    for b in range(3):
        for j, part in enumerate(shared, start=1):
            for name in names:
                same = draws[b, j, name] == draws[b, 0, name]
                assert same == (name in part), (backend, b, j, name, draws[b, j, name], draws[b, 0, name])
