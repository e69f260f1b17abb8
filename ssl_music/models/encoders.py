"""Encoders: front-end output -> embedding [B, embed_dim].

Every encoder ends with a back-end over its frame features (``ssl_music.models.backends``: mean+max pooling or
self-attention), so any crop length (down to a few hundred ms) works and the embedding of a long clip can be
computed window by window by the caller. ``valid_fraction`` [B] (how much of each input is real audio, the
rest zero padding) becomes the back-end's padding mask.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssl_music.models.backends import build_backend, frame_mask
from ssl_music.models.pooling import LearnedPeriodicity, PeriodicityPool, periodicity_mode


def _conv_bn_relu_2d(c_in: int, c_out: int, stride=1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class _Embed(nn.Sequential):
    """Dense head of Won et al.'s models, minus the tagging layer: [B, C] -> [B, embed_dim]."""

    def __init__(self, c_in: int, hidden: int, embed_dim: int):
        super().__init__(nn.Linear(c_in, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, embed_dim))


HEAD_READS = ("all", "pooled", "pitch_classes")   # model.head_reads: what one part of a split head reads


class _SplitEmbed(nn.Module):
    """One dense head per part of the learned block, each with its own hidden layer, concatenated: parts
    trained towards different invariances (objectives.subspaces) share the pooled features but no dense
    layer, so the content part's invariance cannot erase from a shared hidden layer what the pitch part needs.

    A part may read only some of the pooled features (``reads``): ``pooled`` the time-pooled CNN features,
    ``pitch_classes`` the pitch-class pooling's learned chroma, ``all`` both. A part reading the chroma alone
    cannot tell tracks apart by timbre, so instance discrimination can only use what it hears of pitch."""

    def __init__(self, c_in: int, hidden: int, split: list[int], reads: list[str], pooled_dim: int):
        super().__init__()
        spans = {"all": (0, c_in), "pooled": (0, pooled_dim), "pitch_classes": (pooled_dim, c_in)}
        self.spans = [spans[r] for r in (reads or ["all"] * len(split))]
        self.parts = nn.ModuleList(_Embed(b - a, hidden, int(d)) for d, (a, b) in zip(split, self.spans))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([part(x[:, a:b]) for part, (a, b) in zip(self.parts, self.spans)], dim=1)


def _dense(c_in: int, hidden: int, embed_dim: int, split, reads=(), pooled_dim: int = 0) -> nn.Module:
    return _SplitEmbed(c_in, hidden, list(split), list(reads), pooled_dim) if split else _Embed(c_in, hidden, embed_dim)


def _period_dim(width: int, embed_dim: int) -> int:
    """Embedding dimensions given to the periodicity statistic (at most an eighth of the embedding).

    It joins the embedding itself rather than the dense layers' input, as its trailing dimensions: the tempo
    head and downstream probes see it, the contrastive and triplet projector does not (``Encoder.content_dim``).
    Inside the dense layers, contrastive training with time-stretch erased it and the multitask tempo head
    stayed at chance.
    """
    return max(1, min(width, embed_dim // 8))


def _periodicity(mode, frame_rate: float, channels: int, out_dim: int) -> nn.Module | None:
    """The periodicity block of ``model.periodicity``: ``fixed`` reads the normalised input spectrogram at
    ``frame_rate`` (one frame per hop), ``learned`` the encoder's ``channels`` frame features at half that
    rate (the encoders below give it the frames after their first stride-2 stage), ``off`` none."""
    mode = periodicity_mode(mode)
    if mode == "fixed":
        return PeriodicityPool(frame_rate, out_dim=out_dim)
    if mode == "learned":
        return LearnedPeriodicity(channels, frame_rate / 2, out_dim)
    return None


# ------------------------------------------------------------------------------------------- TinyCNN
class _DilatedTemporal(nn.Module):
    """Residual 1-D conv over time; stacked with growing dilation it sees ~1 s, enough for a beat period."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.bn(self.conv(x)))


class PitchClassPool(nn.Module):
    """Key-preserving pooling: [B, C, F, T] on a semitone axis -> [B, filters * 12].

    Global max over frequency (every encoder's last step) is transposition-invariant, so key is gone before
    training starts (the random-init twin's key probe sits at chance). Here a conv at full semitone
    resolution is folded modulo the octave and averaged over octaves and time: a learned chroma per filter.
    It feeds the dense head, so the objectives decide what survives; with pitch-shift views, contrastive
    training is free to make it invariant (McCallum et al. 2024's key-locality direction).
    """

    def __init__(self, in_channels: int, filters: int, bands_per_octave: int = 12):
        super().__init__()
        self.bands_per_octave = bands_per_octave
        self.conv = _conv_bn_relu_2d(in_channels, filters)
        self.out_dim = filters * bands_per_octave

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        b, c, f, t = x.shape
        x = F.pad(x, (0, 0, 0, (-f) % self.bands_per_octave))
        return x.reshape(b, c, -1, self.bands_per_octave, t).mean(dim=(2, 4)).reshape(b, -1)


class TinyCNN(nn.Module):
    """Small spectrogram CNN for CPU tests and the demo: [B, C, F, T] -> [B, embed_dim].

    A stride-2 stem (a full-resolution first conv costs more on CPU than the rest of the network), then
    three conv blocks pooling only along frequency, so onsets stay at 20 ms resolution while timbre and
    pitch are summarised; after collapsing frequency, dilated temporal convolutions (dilations 1..16)
    relate onsets up to ~1.3 s apart, which tempo and rhythm need. Mean+max over time, then dense layers.
    With ``periodicity``, a log-lag onset autocorrelation fills part of the embedding: it makes tempo linearly
    readable, which the tempo-pair objective otherwise fails to learn on CPU budgets. ``fixed`` computes it
    from the input (``PeriodicityPool``), ``learned`` from the frames after the temporal convolutions
    (``LearnedPeriodicity``).
    """

    def __init__(self, in_channels: int = 1, embed_dim: int = 128, width: int = 32, periodicity: bool | str = False,
                 hop_ms: float = 10.0, pitch_classes: int = 0, bands_per_octave: int = 12, head_split=(),
                 head_reads=(), backend: str = "pool", backend_kw: dict | None = None):
        super().__init__()
        w = width
        self.pitch = PitchClassPool(in_channels, pitch_classes, bands_per_octave) if pitch_classes else None
        # Non-affine: with no learnable input normalisation, nothing upstream of a log-mel front-end needs a
        # gradient, so autograd skips the expensive input-gradient of the stem conv.
        self.input_bn = nn.BatchNorm2d(in_channels, affine=False)
        self.blocks = nn.Sequential(
            _conv_bn_relu_2d(in_channels, w, stride=2), nn.MaxPool2d((2, 1), ceil_mode=True),
            _conv_bn_relu_2d(w, w), nn.MaxPool2d((2, 1), ceil_mode=True),
            _conv_bn_relu_2d(w, 2 * w), nn.MaxPool2d((2, 1), ceil_mode=True),
            _conv_bn_relu_2d(2 * w, 2 * w),
        )
        self.temporal = nn.Sequential(*[_DilatedTemporal(2 * w, d) for d in (1, 2, 4, 8, 16)])
        self.backend = build_backend(backend, 2 * w, **(backend_kw or {}))
        p = _period_dim(w, embed_dim) if periodicity_mode(periodicity) != "off" else 0
        self.periodicity = _periodicity(periodicity, 1000.0 / hop_ms, 2 * w, p)
        b = self.backend.out_dim
        self.head = _dense(b + (self.pitch.out_dim if self.pitch else 0), 4 * w, embed_dim - p, head_split,
                           head_reads, b)

    def forward(self, x: torch.Tensor, valid_fraction: torch.Tensor | None = None) -> torch.Tensor:
        x = self.input_bn(x)
        # fixed: from the normalised input, not a learned map: no gradient reaches it, so it costs one FFT
        extra = [self.periodicity(x)] if isinstance(self.periodicity, PeriodicityPool) else []
        pitch = [self.pitch(x)] if self.pitch is not None else []
        x = self.temporal(self.blocks(x).amax(dim=2))
        # learned: the frames the back-end summarises (stem stride 2: half the hop rate)
        if isinstance(self.periodicity, LearnedPeriodicity):
            extra = [self.periodicity(x)]
        summary = self.backend(x, frame_mask(valid_fraction, x.shape[-1]))
        return torch.cat([self.head(torch.cat([summary, *pitch], dim=1)), *extra], dim=1)


# ------------------------------------------------------------------------------------ ShortChunkResNet
class _Res2d(nn.Module):
    """Won et al.'s Res_2d: two 3x3 convs with a strided (projected) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride=2):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(out + self.shortcut(x))


class ShortChunkResNet(nn.Module):
    """Short-chunk ResNet (Won et al. 2020): seven stride-2 residual blocks, channels w,w,2w,2w,2w,2w,4w.

    96 mel bands shrink to 1 after seven halvings; remaining frequency is max-pooled, then mean+max over
    time feed the dense layers (Won max-pools over time only; the mean adds a cheap density statistic).
    ``periodicity`` adds the log-lag onset autocorrelation and ``pitch_classes`` the key-preserving pooling, as in
    ``TinyCNN``.
    """

    def __init__(self, in_channels: int = 1, embed_dim: int = 512, width: int = 64, periodicity: bool | str = False,
                 hop_ms: float = 10.0, pitch_classes: int = 0, bands_per_octave: int = 12, head_split=(),
                 head_reads=(), backend: str = "pool", backend_kw: dict | None = None):
        super().__init__()
        w = width
        self.pitch = PitchClassPool(in_channels, pitch_classes, bands_per_octave) if pitch_classes else None
        chans = [w, w, 2 * w, 2 * w, 2 * w, 2 * w, 4 * w]
        self.input_bn = nn.BatchNorm2d(in_channels)
        layers, c_in = [], in_channels
        for c in chans:
            layers.append(_Res2d(c_in, c, stride=2))
            c_in = c
        self.layers = nn.Sequential(*layers)
        self.backend = build_backend(backend, c_in, **(backend_kw or {}))
        p = _period_dim(w, embed_dim) if periodicity_mode(periodicity) != "off" else 0
        # learned: the first block's frames (T/2); after seven halvings the last block has a frame per 1.28 s
        self.periodicity = _periodicity(periodicity, 1000.0 / hop_ms, chans[0], p)
        b = self.backend.out_dim
        self.head = _dense(b + (self.pitch.out_dim if self.pitch else 0), c_in, embed_dim - p, head_split,
                           head_reads, b)

    def forward(self, x: torch.Tensor, valid_fraction: torch.Tensor | None = None) -> torch.Tensor:
        x = self.input_bn(x)
        # fixed, detached: the input BN is affine here, and the statistic needs no gradient to be useful
        extra = [self.periodicity(x.detach())] if isinstance(self.periodicity, PeriodicityPool) else []
        pitch = [self.pitch(x)] if self.pitch is not None else []
        x = self.layers[0](x)
        if isinstance(self.periodicity, LearnedPeriodicity):
            extra = [self.periodicity(x.amax(dim=2))]
        x = self.layers[1:](x).amax(dim=2)
        summary = self.backend(x, frame_mask(valid_fraction, x.shape[-1]))
        return torch.cat([self.head(torch.cat([summary, *pitch], dim=1)), *extra], dim=1)


# ------------------------------------------------------------------------------------------ SampleCNN
class SampleCNN(nn.Module):
    """SampleCNN (Lee et al. 2017), 3^9 model: strided conv (3, stride 3), nine conv3 + max-pool3 blocks,
    channels w,w,w,2w x6,4w (Lee: 128,128,128,256..256,512), then a 1x1 conv and global pooling.

    Pools use ``ceil_mode`` so crops shorter than 3^10 samples (3 s at 16 kHz is 48000 < 59049) still reach
    the last block; global mean+max over the few remaining steps replaces Lee's flatten.
    """

    def __init__(self, in_channels: int = 1, embed_dim: int = 512, width: int = 64, backend: str = "pool",
                 backend_kw: dict | None = None):
        super().__init__()
        w = width
        chans = [w, w, 2 * w, 2 * w, 2 * w, 2 * w, 2 * w, 2 * w, 4 * w]
        layers = [nn.Conv1d(in_channels, w, 3, stride=3, bias=False), nn.BatchNorm1d(w), nn.ReLU(inplace=True)]
        c_in = w
        for c in chans:
            layers += [nn.Conv1d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm1d(c), nn.ReLU(inplace=True),
                       nn.MaxPool1d(3, ceil_mode=True)]
            c_in = c
        layers += [nn.Conv1d(c_in, c_in, 1, bias=False), nn.BatchNorm1d(c_in), nn.ReLU(inplace=True)]
        self.layers = nn.Sequential(*layers)
        self.backend = build_backend(backend, c_in, **(backend_kw or {}))
        self.head = _Embed(self.backend.out_dim, c_in, embed_dim)

    def forward(self, x: torch.Tensor, valid_fraction: torch.Tensor | None = None) -> torch.Tensor:
        x = self.layers(x)
        return self.head(self.backend(x, frame_mask(valid_fraction, x.shape[-1])))


# ---------------------------------------------------------------------------------------- HarmonicCNN
class _ConvPool2d(nn.Module):
    """Won's Conv_2d: conv3x3-BN-ReLU then max-pool."""

    def __init__(self, c_in: int, c_out: int, pool):
        super().__init__()
        self.body = _conv_bn_relu_2d(c_in, c_out)
        self.pool = nn.MaxPool2d(pool, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.body(x))


class _ResPool2d(nn.Module):
    """Won's Res_2d_mp: two conv3x3-BN (ReLU between), identity shortcut, ReLU, then max-pool."""

    def __init__(self, channels: int, pool):
        super().__init__()
        self.body = nn.Sequential(_conv_bn_relu_2d(channels, channels),
                                  nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels))
        self.pool = nn.MaxPool2d(pool, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.relu(x + self.body(x)))


class HarmonicCNN(nn.Module):
    """Harmonic CNN back-end (Won et al. 2020): seven blocks alternating Conv_2d and Res_2d_mp over the
    harmonic tensor [B, n_harmonics, F, T] (the harmonics are the input channels, so the first conv sees
    every harmonic of a band at once). Channels w,w,2w,2w,2w,2w,2w; the last two pools shrink time by 3.
    """

    def __init__(self, in_channels: int = 6, embed_dim: int = 512, width: int = 64, backend: str = "pool",
                 backend_kw: dict | None = None):
        super().__init__()
        w = width
        self.input_bn = nn.BatchNorm2d(in_channels)
        self.layers = nn.Sequential(
            _ConvPool2d(in_channels, w, 2), _ResPool2d(w, 2),
            _ConvPool2d(w, 2 * w, 2), _ResPool2d(2 * w, 2),
            _ConvPool2d(2 * w, 2 * w, 2), _ResPool2d(2 * w, (2, 3)),
            _ConvPool2d(2 * w, 2 * w, (2, 3)),
        )
        self.backend = build_backend(backend, 2 * w, **(backend_kw or {}))
        self.head = _Embed(self.backend.out_dim, 2 * w, embed_dim)

    def forward(self, x: torch.Tensor, valid_fraction: torch.Tensor | None = None) -> torch.Tensor:
        x = self.layers(self.input_bn(x)).amax(dim=2)
        return self.head(self.backend(x, frame_mask(valid_fraction, x.shape[-1])))


# name -> (class, compatible front-ends, default front-end)
ENCODERS = {
    "tiny": (TinyCNN, ("logmel", "harmonic", "logfreq"), "logmel"),
    "short_chunk_resnet": (ShortChunkResNet, ("logmel", "harmonic", "logfreq"), "logmel"),
    "samplecnn": (SampleCNN, ("raw",), "raw"),
    "harmonic_cnn": (HarmonicCNN, ("harmonic", "logmel"), "harmonic"),
}
