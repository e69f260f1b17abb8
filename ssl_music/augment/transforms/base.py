"""The transform base class, parameter checks, shared draws and the registry.

A transform is one :class:`Transform` subclass registered under its ``name``: its parameter spec, how it
maps shared uniforms to per-example parameters (one mapping for every backend, so a config means the same
distribution on each), its per-example numpy apply, its batched torch apply and its apply on a magnitude
spectrogram. The chain machinery in :mod:`ssl_music.augment.cpu`, :mod:`ssl_music.augment.gpu` and
:mod:`ssl_music.augment.spectral` only iterates :data:`TRANSFORMS`.

Config validation imports this registry, so transform modules import torch, scipy and audiomentations
inside the methods that use them, never at module level.
"""
from __future__ import annotations

import math
from typing import Any, Callable, ClassVar, Dict, Mapping, Tuple, Type

from ssl_music.errors import require

# Param checks: (predicate(value, nyquist), message). The nyquist argument lets frequency checks depend on
# the run's sample rate.
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


# ------------------------------------------------------------------------------ draws from uniforms
# ``u`` is a numpy array or a torch tensor and ``xp`` its module: the same expressions run on both.
def lerp(lo: float, hi: float, u):
    return lo + u * (hi - lo)


def _mel(f: float) -> float:
    return 2595.0 * math.log10(1.0 + f / 700.0)


def mel_uniform(lo: float, hi: float, u):
    # audiomentations draws cut-off and centre frequencies uniformly on the mel scale
    return 700.0 * (10.0 ** (lerp(_mel(lo), _mel(hi), u) / 2595.0) - 1.0)


def butter_order(cfg: Mapping[str, Any], u, xp):
    # Butterworth order = rolloff / 6 dB per octave, uniform over the allowed integers
    lo, hi = int(cfg["min_rolloff"]) // 6, int(cfg["max_rolloff"]) // 6
    return xp.floor(u * (hi - lo + 1)).clip(0, hi - lo) + lo


def frozen_apply(t, x, sr: int, **parameters):
    """audiomentations transform ``t`` applied with its random parameters frozen to ``parameters``: our
    generator draws them, which keeps runs reproducible and the backends on one distribution."""
    t.parameters = {**parameters, "should_apply": True}
    return t.apply(x, sr)


def fail(key: str, msg: str) -> None:
    require(False, key, msg)


# ------------------------------------------------------------------------------------- the class
class Transform:
    """One chain entry kind. ``cfg`` below is the entry's resolved params (defaults overlaid with the
    config), ``drawn`` the per-example parameters :meth:`draw` made: floats on the cpu backend, tensors
    [n] on the gpu backend.

    A subclass sets ``name``, ``params`` and ``n_uniforms`` and implements :meth:`draw`, :meth:`cpu` and
    :meth:`gpu` (or overrides :meth:`gpu_batch` instead of :meth:`gpu`); for the spectral backend also
    :meth:`spectral` (or :meth:`spectral_batch`, or :meth:`spectral_wave` with ``spectral_domain = "wave"``).
    Transforms without defaults in audiomentations follow CLMR (torchaudio-augmentations).
    """

    name: ClassVar[str]
    params: ClassVar[Dict[str, Tuple[Any, Check]]] = {}   # param -> (default, check)
    n_uniforms: ClassVar[int] = 0                         # uniforms :meth:`draw` reads per example
    # True for a transform that brings every row to the output length itself (applied or not); a chain
    # without one is cropped to the output length before its first entry.
    sets_length: ClassVar[bool] = False

    # -------------------------------------------------------------------------- spec and validation
    @classmethod
    def resolve(cls, params: Mapping[str, Any] | None) -> Dict[str, Any]:
        """Defaults overlaid with ``params`` (assumed validated)."""
        out = {k: default for k, (default, _) in cls.params.items()}
        out.update(dict(params or {}))
        return out

    @classmethod
    def validate(cls, params: Mapping[str, Any], sample_rate: int, key: str) -> None:
        """Raise ConfigError naming ``<key>.<param>`` for an unknown, non-numeric or out-of-range param,
        or a ``min_x`` above its ``max_x``. ``key`` is ``augment.chain.<name>.params``."""
        nyquist = sample_rate / 2
        for param, value in params.items():
            pkey = f"{key}.{param}"
            if param not in cls.params:
                fail(pkey, f"unknown param for '{cls.name}' (known: {', '.join(cls.params) or 'none'})")
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                fail(pkey, f"must be a number, got {value!r}")
            pred, msg = cls.params[param][1]
            if not pred(float(value), nyquist):
                extra = f" ({nyquist:g} Hz at sample rate {sample_rate})" if pred is FREQ[0] else ""
                fail(pkey, f"{msg}{extra}, got {value}")
        full = cls.resolve(params)
        for param, value in full.items():
            top = f"max_{param[4:]}"
            if param.startswith("min_") and top in full and value > full[top]:
                fail(f"{key}.{param}", f"must be <= {top} ({full[top]}), got {value}")

    # ------------------------------------------------------------------------------------- draws
    def draw(self, cfg: Mapping[str, Any], u, xp) -> Dict[str, Any]:
        """Per-example parameters from uniforms ``u`` [n, n_uniforms]; ``xp`` is numpy or torch."""
        return {}

    # ------------------------------------------------------------------------------- cpu backend
    def cpu(self, x, drawn: Dict[str, float], cfg: Mapping[str, Any], sr: int, rng):
        """One example [S] (float32 numpy) with the transform applied; ``rng`` a numpy Generator."""
        raise NotImplementedError(f"{type(self).__name__} has no cpu apply")

    def cpu_apply(self, x, applied: bool, drawn: Dict[str, float], cfg: Mapping[str, Any], sr: int,
                  out_len: int, rng):
        """The chain entry on one example: :meth:`cpu` where ``applied``, the input otherwise."""
        return self.cpu(x, drawn, cfg, sr, rng) if applied else x

    # ------------------------------------------------------------------------------- gpu backend
    def gpu(self, x, drawn: Dict[str, Any], cfg: Mapping[str, Any], sr: int, g):
        """Rows [n, S] (a torch tensor) with the transform applied, ``drawn`` tensors [n]; ``g`` a torch
        Generator on x's device for large random tensors."""
        raise NotImplementedError(f"{type(self).__name__} has no gpu apply")

    def gpu_batch(self, x, applied, drawn: Dict[str, Any], cfg: Mapping[str, Any], sr: int, out_len: int, g):
        """The chain entry on a batch [N, S]: :meth:`gpu` on the rows where ``applied`` [N] holds."""
        from ssl_music.augment.signal import on_rows, take

        return on_rows(x, applied, lambda i: self.gpu(take(x, i), {k: take(v, i) for k, v in drawn.items()},
                                                      cfg, sr, g))

    def draw_signal(self, n: int, cfg: Mapping[str, Any], sr: int, out_len: int, g, like):
        """The large random tensor (noise, impulse responses) an entry applied to ``n`` rows reads, or None.
        Both batched backends take it from ``g`` right after the entry's parameters, so one seed gives
        them the same parameters; ``like`` gives device and dtype."""
        return None

    # -------------------------------------------------------------------------- spectral backend
    # Where the spectral backend applies the entry: "spectrum", the magnitude STFT [n, F, T], in chain order
    # (what is exact there: gains, filter responses, the two warps); or "wave", the source waveform before
    # the STFT (linear time-invariant effects whose phase a magnitude cannot hold), with time constants
    # scaled by the row's stretch rate so that they come out as drawn.
    spectral_domain: ClassVar[str] = "spectrum"

    @classmethod
    def has_spectral(cls) -> bool:
        """Whether the spectral backend can run this transform (it overrides one of the spectral applies)."""
        return any(getattr(cls, m) is not getattr(Transform, m)
                   for m in ("spectral", "spectral_batch", "spectral_wave", "spectral_rate"))

    @classmethod
    def has_backend(cls, backend: str) -> bool:
        """Whether ``backend`` (cpu, gpu, spectral) can run this transform: it overrides one of that backend's
        applies. Config validation refuses a chain entry whose transform cannot run on the chosen backend."""
        methods = {"cpu": ("cpu", "cpu_apply"), "gpu": ("gpu", "gpu_batch")}.get(backend)
        if methods is None:
            return cls.has_spectral()
        return any(getattr(cls, m) is not getattr(Transform, m) for m in methods)

    def spectral_rate(self, drawn: Dict[str, Any]):
        """Per-row rates [n] of a transform that stretches time (the spectral backend stretches frames as it
        takes the STFT), None for any other."""
        return None

    def spectral(self, mag, drawn: Dict[str, Any], cfg: Mapping[str, Any], ctx, signal):
        """Rows of a magnitude STFT [n, F, T] with the transform applied; ``ctx`` the
        :class:`~ssl_music.augment.spectral.SpectralContext`, ``signal`` what :meth:`draw_signal` drew."""
        raise NotImplementedError(f"{type(self).__name__} has no spectral apply")

    def spectral_batch(self, mag, applied, drawn: Dict[str, Any], cfg: Mapping[str, Any], ctx, signal):
        """The chain entry on a magnitude batch [N, F, T]: :meth:`spectral` on the rows where ``applied``."""
        from ssl_music.augment.signal import on_rows, take

        return on_rows(mag, applied, lambda i: self.spectral(take(mag, i), {k: take(v, i) for k, v in drawn.items()},
                                                             cfg, ctx, signal))

    def spectral_wave(self, x, drawn: Dict[str, Any], cfg: Mapping[str, Any], sr: int, rate, signal):
        """Rows of the source waveform [n, S] with the transform applied (domain "wave"), before the stretch
        by ``rate`` [n] that follows it."""
        raise NotImplementedError(f"{type(self).__name__} has no waveform apply for the spectral backend")


# ------------------------------------------------------------------------------------- the registry
TRANSFORMS: Dict[str, Type[Transform]] = {}   # name -> class, in registration order


def register_transform(cls: Type[Transform]) -> Type[Transform]:
    """Make ``cls`` usable in chains as ``augment.chain.<cls.name>``; usable as a class decorator.
    Registering the same class again is a no-op; another class under a taken name is refused."""
    if not (isinstance(cls, type) and issubclass(cls, Transform)):
        raise TypeError(f"{cls!r} is not a Transform subclass")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__} has no name")
    if TRANSFORMS.get(name, cls) is not cls:
        raise ValueError(f"transform '{name}' is already registered ({TRANSFORMS[name].__name__})")
    TRANSFORMS[name] = cls
    return cls
