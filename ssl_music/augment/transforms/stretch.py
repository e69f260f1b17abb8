"""time_stretch and pitch_shift: Signalsmith via audiomentations on cpu, the batched phase vocoder of
:mod:`ssl_music.augment.vocoder` on gpu, the magnitude warps of :mod:`ssl_music.augment.magnitude` on
spectral. ``gpu.BatchChain`` fuses a time_stretch directly followed by a pitch_shift into one vocoder pass;
these classes are what runs when they stand alone. On spectral the stretch happens as the STFT is taken
(``spectral.SpectralChain``), so time_stretch only says by how much."""
from __future__ import annotations

from ssl_music.augment.transforms.base import RATE, SEMITONES, Transform, frozen_apply, lerp, register_transform


@register_transform
class TimeStretch(Transform):
    name = "time_stretch"
    params = {"min_rate": (0.8, RATE), "max_rate": (1.25, RATE)}
    n_uniforms = 1
    # a stretch by r reads out_len * r source samples; rows it skips keep their first out_len samples
    sets_length = True

    def draw(self, cfg, u, xp):
        return {"rate": lerp(cfg["min_rate"], cfg["max_rate"], u[:, 0])}

    def cpu_apply(self, x, applied, drawn, cfg, sr, out_len, rng):
        from ssl_music.augment.signal import cpu_stretch, fit

        return cpu_stretch(x, drawn["rate"], out_len, sr) if applied else fit(x, out_len)

    def gpu_batch(self, x, applied, drawn, cfg, sr, out_len, g):
        from ssl_music.augment.signal import crop, on_rows, take
        from ssl_music.augment.vocoder import stretch

        return on_rows(crop(x, out_len), applied, lambda i: stretch(take(x, i), take(drawn["rate"], i), out_len))

    def spectral_rate(self, drawn):
        return drawn["rate"]


@register_transform
class PitchShift(Transform):
    name = "pitch_shift"
    params = {"min_semitones": (-4.0, SEMITONES), "max_semitones": (4.0, SEMITONES)}
    n_uniforms = 1

    def draw(self, cfg, u, xp):
        return {"semitones": lerp(cfg["min_semitones"], cfg["max_semitones"], u[:, 0])}

    def cpu(self, x, drawn, cfg, sr, rng):
        import audiomentations as am

        return frozen_apply(am.PitchShift(method="signalsmith_stretch", p=1.0), x, sr,
                            num_semitones=drawn["semitones"])

    def gpu(self, x, drawn, cfg, sr, g):
        from ssl_music.augment.vocoder import pitch_shift

        return pitch_shift(x, drawn["semitones"])

    def spectral_batch(self, mag, applied, drawn, cfg, ctx, signal):
        import torch

        from ssl_music.augment.magnitude import warp_bins

        if not bool(applied.any()):
            return mag
        # every row, by 1 where not applied (exact): cheaper than gathering the applied rows and scattering back
        ratio = torch.where(applied, 2.0 ** (drawn["semitones"] / 12.0), torch.ones_like(drawn["semitones"]))
        return warp_bins(mag, ratio)
