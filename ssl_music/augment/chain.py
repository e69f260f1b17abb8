"""Chains: resolution, validation and description, shared by both backends; and the tempo view's rates.

A chain is an ordered mapping ``name -> {p, params}`` (YAML order = application order). Every name must be
in :data:`TRANSFORMS` (the registry of :mod:`ssl_music.augment.transforms`, re-exported here); missing
params take the transform's defaults, so a preset only lists what it changes and any param can be
overridden with a dotlist such as ``augment.chain.pitch_shift.params.max_semitones=2``.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Mapping

from omegaconf import DictConfig, OmegaConf

from ssl_music.augment.transforms import TRANSFORMS, Transform, register_transform
from ssl_music.augment.transforms.base import fail, lerp

__all__ = ["TRANSFORMS", "Transform", "register_transform", "resolve_params", "resolve_chain", "describe_chain",
           "validate_chain", "has_time_stretch", "without", "tempo_rates"]


def _plain(chain: Any) -> Dict[str, Any]:
    if isinstance(chain, DictConfig):
        return OmegaConf.to_container(chain, resolve=True)
    return dict(chain or {})


def resolve_params(name: str, params: Mapping[str, Any] | None) -> Dict[str, float]:
    """Registry defaults overlaid with ``params`` (assumed validated)."""
    return TRANSFORMS[name].resolve(params)


def resolve_chain(chain: Any) -> Dict[str, Dict[str, Any]]:
    """``{name: {"p": float, "params": {...all params...}}}`` in application order."""
    out = {}
    for name, spec in _plain(chain).items():
        spec = spec or {}
        out[name] = {"p": float(spec.get("p", 1.0)), "params": resolve_params(name, spec.get("params"))}
    return out


def describe_chain(chain: Any) -> str:
    """One line, in application order: ``time_stretch p=0.8 (min_rate=0.8, max_rate=1.25) → ...``."""
    parts, chain = [], resolve_chain(chain)
    for name, spec in chain.items():
        params = ", ".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
                           for k, v in spec["params"].items())
        parts.append(f"{name} p={spec['p']:g}" + (f" ({params})" if params else ""))
    if not parts:
        return "none (no augmentation)"
    if all(spec["p"] == 0 for spec in chain.values()):   # drawn, so that arms share their draws, never applied
        return "none (no augmentation), drawn at p=0: " + " → ".join(parts)
    return " → ".join(parts)


def validate_chain(chain: Any, sample_rate: int) -> None:
    """Raise ConfigError naming ``augment.chain.<name>[.params.<param>]`` for anything unusable."""
    for name, spec in _plain(chain).items():
        base = f"augment.chain.{name}"
        if name not in TRANSFORMS:
            fail(base, f"unknown transform '{name}'; known: {', '.join(TRANSFORMS)}")
        spec = spec or {}
        for key in spec:
            if key not in ("p", "params"):
                fail(f"{base}.{key}", "unknown key (a transform has only 'p' and 'params')")
        p = spec.get("p", 1.0)
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p <= 1:
            fail(f"{base}.p", f"must be in [0, 1], got {p}")
        TRANSFORMS[name].validate(spec.get("params") or {}, sample_rate, f"{base}.params")


def has_time_stretch(chain: Any) -> bool:
    spec = resolve_chain(chain).get("time_stretch")
    return spec is not None and spec["p"] > 0


def without(chain: Dict[str, Dict[str, Any]], name: str) -> Dict[str, Dict[str, Any]]:
    return {k: v for k, v in chain.items() if k != name}


def tempo_rates(u, min_rate: float, max_rate: float, tolerance: float, same_p: float, xp):
    """Rates [n, 2] and same-tempo labels [n] from uniforms ``u`` [n, 3].

    r1 is log-uniform on [min_rate, max_rate]. For a *same* pair r2 is log-uniform within the tolerance
    band around r1; for a *different* pair it is log-uniform over the rest of the range. The label is
    recomputed from the rates, so it is exact even where the band covers the whole range.
    """
    a, b, t = math.log(min_rate), math.log(max_rate), math.log(tolerance)
    want_same = u[:, 0] < same_p
    l1 = lerp(a, b, u[:, 1])
    lo_in, hi_in = xp.maximum(l1 - t, l1 * 0 + a), xp.minimum(l1 + t, l1 * 0 + b)
    l2_same = lo_in + u[:, 2] * (hi_in - lo_in)
    left, right = (lo_in - a), (b - hi_in)
    v = u[:, 2] * (left + right)
    l2_diff = xp.where(v < left, a + v, hi_in + (v - left))
    l2 = xp.where(want_same, l2_same, l2_diff)
    rates = xp.stack([xp.exp(l1), xp.exp(l2)], 1)
    same = (abs(l1 - l2) <= t + 1e-9) * 1.0
    return rates, same
