"""The spectral backend: batched augmentation of a spectrogram front-end's magnitude STFT.

A spectrogram front-end keeps only the magnitude of its STFT, so the gpu backend's waveform round trip
(phase vocoder, inverse STFT, resampling, then the front-end's STFT) rebuilds a phase that is thrown away.
Here each view is one STFT with the front-end's own settings, augmented as a magnitude, and leaves as a
power spectrogram [N, F, T] for the front-end's filter bank and log (``frontend.from_power``).

The parameters are drawn as the gpu backend draws them (its :class:`~ssl_music.augment.gpu.BatchTransform`
draws in chain order, each entry's large random tensor right after its parameters), so one seed gives
both backends the same parameters. Then, per row:

1. the entries whose ``spectral_domain`` is "wave" (delay, reverb) act on the source waveform, in chain
   order, their time constants scaled by the stretch rate where they follow the stretch in the chain;
2. the STFT: a stretched row's output frame k is source frame k * rate (magnitudes interpolated), so the
   view covers the source's first out_len * rate samples as on the waveform backends; any other row is
   cropped to out_len first, as there;
3. the "spectrum" entries act on the magnitude, in chain order (pitch shift warps the frequency axis).

Reordering is exact for what commutes (gains, filters, polarity, an echo or a room against a stretch or a
pitch shift up to the vocoder's own smearing); the one approximation is an echo or a room placed after
noise in a chain, which here also echoes the signal but not the noise.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import torch
from torch import Tensor, nn

from ssl_music.augment.gpu import BatchTransform, Tie
from ssl_music.augment.magnitude import magnitude, stretch_frames
from ssl_music.augment.signal import crop, on_rows, take


@dataclass
class SpectralContext:
    """What a transform's :meth:`~ssl_music.augment.transforms.Transform.spectral` may read. Magnitudes are
    [n, T, F] (:mod:`ssl_music.augment.magnitude`)."""

    sr: int
    out_len: int
    bin_hz: Tensor                        # [F] centre frequency of each STFT bin
    stft: Callable[[Tensor], Tensor]      # waveform rows [n, out_len] -> complex [n, T, F]: the front-end's


def _rows(drawn: Dict[str, Tensor], i) -> Dict[str, Tensor]:
    return {k: take(v, i) for k, v in drawn.items()}


def magnitudes(x: Tensor, rate: Tensor, stretched: Tensor, out_len: int, stft: Callable, n_out: int) -> Tensor:
    """Source rows [N, S] -> magnitude STFT [N, n_out, F], each row stretched by its ``rate``.

    With no row ``stretched`` it is the STFT of the first out_len samples, exactly the front-end's of the
    crop. Otherwise every row reads the source's STFT (a rate of 1 reads its first frames exactly): a row
    the stretch skips then differs from its crop's only in the last frames, whose window reaches past the
    crop into the source instead of into the crop's reflection (one STFT instead of a split batch).
    """
    if not bool(stretched.any()):
        return magnitude(stft(crop(x, out_len)))
    return stretch_frames(magnitude(stft(x)), rate, n_out)


class SpectralChain(nn.Module):
    """A resolved chain on source batches [N, S] -> power spectrograms [N, F, 1 + out_len // hop] in the
    given front-end's STFT layout (a transposed view of [N, T, F] memory)."""

    def __init__(self, chain: Dict[str, Dict[str, Any]], sample_rate: int, out_len: int):
        super().__init__()
        self.sample_rate, self.out_len = sample_rate, out_len
        self.transforms = nn.ModuleList(
            BatchTransform(name, spec["p"], spec["params"], sample_rate, out_len) for name, spec in chain.items())

    def forward(self, x: Tensor, g: Optional[torch.Generator] = None, record: Optional[List] = None,
                rate: Optional[Tensor] = None, frontend: Optional[nn.Module] = None,
                tie: Optional[Tie] = None) -> Tensor:
        """``rate`` [N]: every row is stretched by it first (the tempo view; the chain has no time_stretch).
        ``frontend``: a spectrogram front-end (``stft``, ``n_fft``, ``hop_length``). ``tie``: draws shared
        between the views of an example, as on the gpu backend."""
        n, sr = x.shape[0], self.sample_rate
        stretched = torch.full((n,), rate is not None, dtype=torch.bool, device=x.device)
        rate = torch.ones(n, dtype=x.dtype, device=x.device) if rate is None else rate.to(x.dtype)
        after_stretch = bool(stretched.all())
        entries = []
        for t in self.transforms:  # every draw first, in chain order: the gpu backend's random stream
            applied, prm, big_g = t.draw(x, g, record, tie)
            n_applied = int(applied.sum())
            signal = t.transform.draw_signal(n_applied, t.params, sr, self.out_len, big_g, x) if n_applied else None
            r = t.transform.spectral_rate(prm)
            if r is not None:
                rate, stretched, after_stretch = torch.where(applied, r, rate), stretched | applied, True
            else:
                entries.append((t, applied, prm, signal, rate if after_stretch else torch.ones_like(rate)))

        for t, applied, prm, signal, scale in entries:
            if t.transform.spectral_domain == "wave":
                x = on_rows(x, applied, lambda i: t.transform.spectral_wave(
                    take(x, i), _rows(prm, i), t.params, sr, take(scale, i), signal))

        n_fft = frontend.n_fft
        ctx = SpectralContext(sr, self.out_len, torch.arange(n_fft // 2 + 1, device=x.device) * (sr / n_fft),
                              lambda w: frontend.stft(w).transpose(1, 2))
        mag = magnitudes(x, rate, stretched, self.out_len, frontend.stft, 1 + self.out_len // frontend.hop_length)
        for t, applied, prm, signal, _ in entries:
            if t.transform.spectral_domain == "spectrum":
                mag = t.transform.spectral_batch(mag, applied, prm, t.params, ctx, signal)
        return mag.square().transpose(1, 2)     # [N, F, T], the front-end's layout (a view)
