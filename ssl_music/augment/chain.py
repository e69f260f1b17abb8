"""The transform registry and chain validation, shared by both backends.

A chain is an ordered mapping ``name -> {p, params}`` (YAML order = application order). Every name must be
in :data:`TRANSFORMS`; missing params take the registry defaults, so a preset only lists what it changes
and any param can be overridden with a dotlist such as ``augment.chain.pitch_shift.params.max_semitones=2``.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Tuple

from omegaconf import DictConfig, OmegaConf

from ssl_music.errors import ConfigError

# Param checks: name -> (predicate(value, nyquist), message). The nyquist argument lets frequency checks
# depend on the run's sample rate.
Check = Tuple[Callable[[float, float], bool], str]
POSITIVE: Check = (lambda v, ny: v > 0, "must be > 0")
NON_NEGATIVE: Check = (lambda v, ny: v >= 0, "must be >= 0")
UNIT: Check = (lambda v, ny: 0 <= v <= 1, "must be in [0, 1]")
FREQ: Check = (lambda v, ny: 0 < v < ny, "must be in (0, Nyquist)")
# Signalsmith (cpu backend) accepts these ranges; the gpu backend follows them so both run the same configs.
RATE: Check = (lambda v, ny: 0.1 <= v <= 10, "must be in [0.1, 10] (rate <= 0 is meaningless)")
SEMITONES: Check = (lambda v, ny: -24 <= v <= 24, "must be in [-24, 24]")
ROLLOFF: Check = (lambda v, ny: v >= 6 and v % 6 == 0, "must be a multiple of 6 dB/octave, >= 6")
DB: Check = (lambda v, ny: -120 <= v <= 120, "must be in [-120, 120] dB")
BANDWIDTH: Check = (lambda v, ny: 0 < v < 2, "must be in (0, 2) (fraction of the centre frequency)")

# name -> {param: (default, check)}. Defaults follow audiomentations where it has the transform, CLMR
# (torchaudio-augmentations) where it does not.
TRANSFORMS: Dict[str, Dict[str, Tuple[Any, Check]]] = {
    "time_stretch": {"min_rate": (0.8, RATE), "max_rate": (1.25, RATE)},
    "pitch_shift": {"min_semitones": (-4.0, SEMITONES), "max_semitones": (4.0, SEMITONES)},
    "gain": {"min_gain_db": (-12.0, DB), "max_gain_db": (0.0, DB)},
    "polarity": {},
    "noise": {"min_snr_db": (10.0, DB), "max_snr_db": (40.0, DB)},
    "low_pass": {"min_cutoff_freq": (2200.0, FREQ), "max_cutoff_freq": (4000.0, FREQ),
                 "min_rolloff": (12, ROLLOFF), "max_rolloff": (24, ROLLOFF)},
    "high_pass": {"min_cutoff_freq": (200.0, FREQ), "max_cutoff_freq": (1200.0, FREQ),
                  "min_rolloff": (12, ROLLOFF), "max_rolloff": (24, ROLLOFF)},
    # CLMR's HighLowPass: a fair coin picks a low-pass or a high-pass per example.
    "high_low_pass": {"min_low_pass_freq": (2200.0, FREQ), "max_low_pass_freq": (4000.0, FREQ),
                      "min_high_pass_freq": (200.0, FREQ), "max_high_pass_freq": (1200.0, FREQ),
                      "min_rolloff": (12, ROLLOFF), "max_rolloff": (12, ROLLOFF)},
    "band_pass": {"min_center_freq": (200.0, FREQ), "max_center_freq": (4000.0, FREQ),
                  "min_bandwidth_fraction": (0.5, BANDWIDTH), "max_bandwidth_fraction": (1.99, BANDWIDTH),
                  "min_rolloff": (12, ROLLOFF), "max_rolloff": (24, ROLLOFF)},
    "eq": {"min_center_freq": (50.0, FREQ), "max_center_freq": (7500.0, FREQ),
           "min_gain_db": (-12.0, DB), "max_gain_db": (12.0, DB), "min_q": (0.5, POSITIVE), "max_q": (5.0, POSITIVE)},
    "delay": {"min_delay_ms": (200.0, POSITIVE), "max_delay_ms": (500.0, POSITIVE),
              "min_volume": (0.5, UNIT), "max_volume": (0.5, UNIT)},
    "reverb": {"min_rt60_s": (0.2, POSITIVE), "max_rt60_s": (1.2, POSITIVE),
               "min_wet": (0.1, UNIT), "max_wet": (0.5, UNIT)},
}


def _plain(chain: Any) -> Dict[str, Any]:
    if isinstance(chain, DictConfig):
        return OmegaConf.to_container(chain, resolve=True)
    return dict(chain or {})


def resolve_params(name: str, params: Mapping[str, Any] | None) -> Dict[str, float]:
    """Registry defaults overlaid with ``params`` (assumed validated)."""
    out = {k: default for k, (default, _) in TRANSFORMS[name].items()}
    out.update(dict(params or {}))
    return out


def resolve_chain(chain: Any) -> Dict[str, Dict[str, Any]]:
    """``{name: {"p": float, "params": {...all params...}}}`` in application order."""
    out = {}
    for name, spec in _plain(chain).items():
        spec = spec or {}
        out[name] = {"p": float(spec.get("p", 1.0)), "params": resolve_params(name, spec.get("params"))}
    return out


def describe_chain(chain: Any) -> str:
    """One line, in application order: ``time_stretch p=0.8 (min_rate=0.8, max_rate=1.25) → ...``."""
    parts = []
    for name, spec in resolve_chain(chain).items():
        params = ", ".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
                           for k, v in spec["params"].items())
        parts.append(f"{name} p={spec['p']:g}" + (f" ({params})" if params else ""))
    return " → ".join(parts) if parts else "none (no augmentation)"


def _fail(key: str, msg: str) -> None:
    raise ConfigError(f"invalid value for config key '{key}': {msg}")


def validate_chain(chain: Any, sample_rate: int) -> None:
    """Raise ConfigError naming ``augment.chain.<name>[.params.<param>]`` for anything unusable."""
    nyquist = sample_rate / 2
    for name, spec in _plain(chain).items():
        base = f"augment.chain.{name}"
        if name not in TRANSFORMS:
            _fail(base, f"unknown transform '{name}'; known: {', '.join(TRANSFORMS)}")
        spec = spec or {}
        for key in spec:
            if key not in ("p", "params"):
                _fail(f"{base}.{key}", "unknown key (a transform has only 'p' and 'params')")
        p = spec.get("p", 1.0)
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p <= 1:
            _fail(f"{base}.p", f"must be in [0, 1], got {p}")
        params = spec.get("params") or {}
        for key, value in params.items():
            pkey = f"{base}.params.{key}"
            if key not in TRANSFORMS[name]:
                known = ", ".join(TRANSFORMS[name]) or "none"
                _fail(pkey, f"unknown param for '{name}' (known: {known})")
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                _fail(pkey, f"must be a number, got {value!r}")
            pred, msg = TRANSFORMS[name][key][1]
            if not pred(float(value), nyquist):
                extra = f" ({nyquist:g} Hz at sample rate {sample_rate})" if pred is FREQ[0] else ""
                _fail(pkey, f"{msg}{extra}, got {value}")
        full = resolve_params(name, params)
        for key, value in full.items():
            if key.startswith("min_") and f"max_{key[4:]}" in full and value > full[f"max_{key[4:]}"]:
                _fail(f"{base}.params.{key}", f"must be <= max_{key[4:]} ({full['max_' + key[4:]]}), got {value}")


def has_time_stretch(chain: Any) -> bool:
    spec = resolve_chain(chain).get("time_stretch")
    return spec is not None and spec["p"] > 0


def without(chain: Dict[str, Dict[str, Any]], name: str) -> Dict[str, Dict[str, Any]]:
    return {k: v for k, v in chain.items() if k != name}


# --------------------------------------------------------------------------------------- random draws
# Both backends map the same uniforms to parameters with these functions (``xp`` is numpy or torch), so
# a config means the same distribution on either backend.
N_UNIFORMS = {"time_stretch": 1, "pitch_shift": 1, "gain": 1, "polarity": 0, "noise": 1, "low_pass": 2,
              "high_pass": 2, "high_low_pass": 3, "band_pass": 3, "eq": 3, "delay": 2, "reverb": 2}


def _lerp(lo: float, hi: float, u):
    return lo + u * (hi - lo)


def _mel(f: float) -> float:
    import math

    return 2595.0 * math.log10(1.0 + f / 700.0)


def _mel_uniform(lo: float, hi: float, u):
    # audiomentations draws cut-off and centre frequencies uniformly on the mel scale
    return 700.0 * (10.0 ** (_lerp(_mel(lo), _mel(hi), u) / 2595.0) - 1.0)


def _order(prm: Mapping[str, Any], u, xp):
    # Butterworth order = rolloff / 6 dB per octave, uniform over the allowed integers
    lo, hi = int(prm["min_rolloff"]) // 6, int(prm["max_rolloff"]) // 6
    return xp.floor(u * (hi - lo + 1)).clip(0, hi - lo) + lo


def draw_params(name: str, prm: Mapping[str, Any], u, xp) -> Dict[str, Any]:
    """Per-example parameters from uniforms ``u`` [n, N_UNIFORMS[name]]."""
    if name == "time_stretch":
        return {"rate": _lerp(prm["min_rate"], prm["max_rate"], u[:, 0])}
    if name == "pitch_shift":
        return {"semitones": _lerp(prm["min_semitones"], prm["max_semitones"], u[:, 0])}
    if name == "gain":
        return {"gain_db": _lerp(prm["min_gain_db"], prm["max_gain_db"], u[:, 0])}
    if name == "polarity":
        return {}
    if name == "noise":
        return {"snr_db": _lerp(prm["min_snr_db"], prm["max_snr_db"], u[:, 0])}
    if name in ("low_pass", "high_pass"):
        return {"cutoff_freq": _mel_uniform(prm["min_cutoff_freq"], prm["max_cutoff_freq"], u[:, 0]),
                "order": _order(prm, u[:, 1], xp)}
    if name == "high_low_pass":
        low = _mel_uniform(prm["min_low_pass_freq"], prm["max_low_pass_freq"], u[:, 1])
        high = _mel_uniform(prm["min_high_pass_freq"], prm["max_high_pass_freq"], u[:, 1])
        is_low = u[:, 0] < 0.5
        return {"is_low": is_low * 1.0, "cutoff_freq": xp.where(is_low, low, high), "order": _order(prm, u[:, 2], xp)}
    if name == "band_pass":
        center = _mel_uniform(prm["min_center_freq"], prm["max_center_freq"], u[:, 0])
        frac = _lerp(prm["min_bandwidth_fraction"], prm["max_bandwidth_fraction"], u[:, 1])
        return {"center_freq": center, "bandwidth": center * frac, "order": _order(prm, u[:, 2], xp)}
    if name == "eq":
        return {"center_freq": _mel_uniform(prm["min_center_freq"], prm["max_center_freq"], u[:, 0]),
                "gain_db": _lerp(prm["min_gain_db"], prm["max_gain_db"], u[:, 1]),
                "q": _lerp(prm["min_q"], prm["max_q"], u[:, 2])}
    if name == "delay":
        return {"delay_ms": _lerp(prm["min_delay_ms"], prm["max_delay_ms"], u[:, 0]),
                "volume": _lerp(prm["min_volume"], prm["max_volume"], u[:, 1])}
    if name == "reverb":
        return {"rt60_s": _lerp(prm["min_rt60_s"], prm["max_rt60_s"], u[:, 0]),
                "wet": _lerp(prm["min_wet"], prm["max_wet"], u[:, 1])}
    raise KeyError(name)


def tempo_rates(u, min_rate: float, max_rate: float, tolerance: float, same_p: float, xp):
    """Rates [n, 2] and same-tempo labels [n] from uniforms ``u`` [n, 3].

    r1 is log-uniform on [min_rate, max_rate]. For a *same* pair r2 is log-uniform within the tolerance
    band around r1; for a *different* pair it is log-uniform over the rest of the range. The label is
    recomputed from the rates, so it is exact even where the band covers the whole range.
    """
    import math

    a, b, t = math.log(min_rate), math.log(max_rate), math.log(tolerance)
    want_same = u[:, 0] < same_p
    l1 = _lerp(a, b, u[:, 1])
    lo_in, hi_in = xp.maximum(l1 - t, l1 * 0 + a), xp.minimum(l1 + t, l1 * 0 + b)
    l2_same = lo_in + u[:, 2] * (hi_in - lo_in)
    left, right = (lo_in - a), (b - hi_in)
    v = u[:, 2] * (left + right)
    l2_diff = xp.where(v < left, a + v, hi_in + (v - left))
    l2 = xp.where(want_same, l2_same, l2_diff)
    rates = xp.stack([xp.exp(l1), xp.exp(l2)], 1)
    same = (abs(l1 - l2) <= t + 1e-9) * 1.0
    return rates, same
