"""BYOL-A's two spectrogram augmentations (Niizumi et al., IJCNN 2021): mixup in the power domain and a
random-resize crop of the time-frequency plane. Spectral backend only: both act on a spectrogram, and on a
waveform neither has a counterpart that draws the same thing (a waveform mixup adds amplitudes, not powers;
a crop-and-resize of the frequency axis is a resampling of the spectrum, not of the signal), so config
validation refuses them on the cpu and gpu backends (augment.chain.<name>).

Both draw their parameters from the chain's generator like every transform (one seed, one draw), and act
on the magnitude STFT [n, T, F] the spectral backend hands them, before the front-end's filter bank and log.
"""
from __future__ import annotations

from ssl_music.augment.transforms.base import POSITIVE, UNIT, Transform, lerp, register_transform

AT_LEAST_ONE = (lambda v, ny: v >= 1, "must be >= 1")


@register_transform
class Mixup(Transform):
    """BYOL-A's log-mixup-exp: a row becomes (1 - lam) x its power + lam x the power of another row of the
    batch, lam ~ U(0, alpha). Mixing powers before the filter bank and the log is mixing the mel powers, which
    is what log-mixup-exp does to a log-mel spectrogram (log((1 - lam) exp(x) + lam exp(x_k))).

    The partner is another row of the same batch (drawn uniformly among the others); BYOL-A takes it from a
    memory of past inputs, which needs state in the augmenter. A row may draw the other view of its own track."""

    name = "mixup"
    params = {"alpha": (0.4, UNIT)}
    n_uniforms = 2

    def draw(self, cfg, u, xp):
        return {"lam": cfg["alpha"] * u[:, 0], "partner": u[:, 1]}

    def spectral_batch(self, mag, applied, drawn, cfg, ctx, signal):
        import torch

        n = mag.shape[0]
        if n < 2 or not bool(applied.any()):
            return mag
        # partner i + 1 + floor(u * (n - 1)) mod n: uniform over the other rows, never the row itself
        step = (drawn["partner"] * (n - 1)).floor().long().clamp_(0, n - 2) + 1
        partner = (torch.arange(n, device=mag.device) + step) % n
        lam = drawn["lam"].to(mag.dtype)[:, None, None]
        mixed = ((1 - lam) * mag.square() + lam * mag[partner].square()).sqrt()
        return torch.where(applied[:, None, None], mixed, mag)   # rows not drawn stay exactly as they were


@register_transform
class RandomResizeCrop(Transform):
    """BYOL-A's random-resize crop: the spectrogram sits centred on a virtual canvas ``virtual_freq`` x
    ``virtual_time`` times its size (zeros around it); a window of ``freq_scale`` x ``time_scale`` times the
    spectrogram's size (each drawn uniformly, clipped to the canvas) is placed uniformly on the canvas and
    resized back to the spectrogram's size. BYOL-A's defaults: canvas 1.0 x 1.5, scales (0.6, 1.5) on both.

    Resizing is bilinear (BYOL-A: bicubic, whose overshoot would make magnitudes negative) and acts on the
    linear-frequency STFT bins before the mel filter bank (BYOL-A: on the log-mel bins), so a frequency scale
    here stretches the spectrum in Hz; see docs/training.md "Methods"."""

    name = "random_resize_crop"
    params = {"min_freq_scale": (0.6, POSITIVE), "max_freq_scale": (1.5, POSITIVE),
              "min_time_scale": (0.6, POSITIVE), "max_time_scale": (1.5, POSITIVE),
              "virtual_freq": (1.0, AT_LEAST_ONE), "virtual_time": (1.5, AT_LEAST_ONE)}
    n_uniforms = 4

    def draw(self, cfg, u, xp):
        return {"freq_scale": lerp(cfg["min_freq_scale"], cfg["max_freq_scale"], u[:, 0]),
                "time_scale": lerp(cfg["min_time_scale"], cfg["max_time_scale"], u[:, 1]),
                "freq_pos": u[:, 2], "time_pos": u[:, 3]}

    def spectral(self, mag, drawn, cfg, ctx, signal):
        import torch
        import torch.nn.functional as F

        n, t, f = mag.shape
        dtype = mag.dtype

        def axis(size: int, virtual: float, scale, pos):
            # normalised input coordinates (align_corners=False: -1 and 1 are the outer pixel edges) of the
            # output pixel centres, per row: [n, size]
            canvas = size * virtual
            width = torch.minimum(size * scale.to(dtype), torch.full_like(scale, canvas, dtype=dtype))
            start = pos.to(dtype) * (canvas - width) - (canvas - size) / 2        # window start, input pixels
            centres = (torch.arange(size, device=mag.device, dtype=dtype) + 0.5) / size
            return 2 * (start[:, None] + centres[None, :] * width[:, None]) / size - 1

        gf = axis(f, float(cfg["virtual_freq"]), drawn["freq_scale"], drawn["freq_pos"])    # [n, F]
        gt = axis(t, float(cfg["virtual_time"]), drawn["time_scale"], drawn["time_pos"])    # [n, T]
        grid = torch.stack(torch.broadcast_tensors(gf[:, None, :], gt[:, :, None]), dim=-1)  # [n, T, F, (x=f, y=t)]
        out = F.grid_sample(mag[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return out[:, 0].contiguous()
