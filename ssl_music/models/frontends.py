"""Front-ends: waveform batch [B, L] -> model input.

A spectrogram front-end is its STFT (:meth:`~_Float32.stft`) followed by a filter bank and log on the power
(:meth:`~_Float32.from_power`); the spectral augmentation backend augments the STFT's magnitude between the
two and hands the front-end the power spectrogram [B, F, T] instead of the waveform.

All front-ends run on the model's device inside the forward pass, in float32 with autocast disabled: mel
filter banks and log compression lose too much precision in bf16, and the cost is negligible next to the
encoder.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torchaudio.functional import spectrogram
from torchaudio.transforms import MelSpectrogram, Spectrogram


def log_compress(x: torch.Tensor) -> torch.Tensor:
    """MULE's compression, log10(1 + 10^4 x): near-linear for quiet bins, logarithmic for loud ones."""
    return torch.log10(1.0 + 1e4 * x)


def _fft_size(win_length: int) -> int:
    return 1 << max(0, math.ceil(math.log2(win_length)))


class _Float32(nn.Module):
    """Base class of the spectrogram front-ends: runs in float32 whatever the surrounding autocast says.
    A subclass provides its STFT settings (:meth:`stft_module`) and :meth:`from_power`."""

    hop_length: int

    def stft_module(self) -> Spectrogram:
        raise NotImplementedError

    def from_power(self, power: torch.Tensor) -> torch.Tensor:
        """Power spectrogram [B, F, T] in :meth:`stft`'s layout -> model input (filter bank and log)."""
        raise NotImplementedError

    @property
    def n_fft(self) -> int:
        return self.stft_module().n_fft

    def stft(self, wave: torch.Tensor) -> torch.Tensor:
        """[B, L] -> complex [B, n_fft // 2 + 1, 1 + L // hop]: the STFT whose power :meth:`from_power` reads."""
        s = self.stft_module()
        with torch.autocast(device_type=wave.device.type, enabled=False):
            return spectrogram(wave.float(), s.pad, s.window, s.n_fft, s.hop_length, s.win_length, None,
                               s.normalized, s.center, s.pad_mode, s.onesided)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Waveform [B, L], or power spectrogram [B, F, T] from the spectral augmentation backend."""
        if x.dim() not in (2, 3):
            raise ValueError(f"front-end expects a waveform batch [B, L] or a power spectrogram [B, F, T], "
                             f"got shape {tuple(x.shape)}")
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x.float()
            return self.from_power(x if x.dim() == 3 else self.stft_module()(x))


class LogMel(_Float32):
    """Log-mel spectrogram with MULE's settings (McCallum et al. 2022): [B, L] -> [B, 1, n_mels, T].

    T = 1 + L // hop (centred frames), i.e. 301 frames for 3 s at 16 kHz with a 10 ms hop.
    """

    out_channels = 1

    def __init__(self, sample_rate: int = 16000, n_mels: int = 96, win_ms: float = 25.0, hop_ms: float = 10.0):
        super().__init__()
        win = round(sample_rate * win_ms / 1000)
        self.hop_length = round(sample_rate * hop_ms / 1000)
        self.n_mels = n_mels
        self.mel = MelSpectrogram(sample_rate=sample_rate, n_fft=_fft_size(win), win_length=win,
                                  hop_length=self.hop_length, n_mels=n_mels, power=2.0, center=True)

    def stft_module(self) -> Spectrogram:
        return self.mel.spectrogram

    def from_power(self, power: torch.Tensor) -> torch.Tensor:
        return log_compress(self.mel.mel_scale(power)).unsqueeze(1)


class HarmonicFilterBank(_Float32):
    """Data-driven harmonic filters (Won et al. 2020): [B, L] -> [B, n_harmonics, n_bands, T].

    Each band has a learnable fundamental f0 (log-Hz, so it stays positive) spaced ``semitone_scale`` bands per
    semitone from C1 up to sample_rate / (2 n_harmonics), so that the 6th harmonic of the top band stays below
    Nyquist. Harmonic h of band b is a triangular filter on the STFT power centred at h*f0_b with bandwidth
    ERB(h*f0_b) / Q, Q learnable and shared (Won's ``learn_bw='only_Q'``). The STFT is longer (64 ms at 16 kHz)
    than the log-mel's so that the narrowest low-frequency triangles still cover at least one FFT bin;
    otherwise those bands are dead at initialisation.
    """

    def __init__(self, sample_rate: int = 16000, hop_ms: float = 10.0, n_harmonics: int = 6,
                 semitone_scale: int = 2, low_midi: float = 24.0, n_fft: int | None = None):
        super().__init__()
        n_fft = n_fft or _fft_size(round(sample_rate * 0.064))
        self.hop_length = round(sample_rate * hop_ms / 1000)
        self.n_harmonics = n_harmonics
        self.out_channels = n_harmonics
        self.spec = Spectrogram(n_fft=n_fft, hop_length=self.hop_length, power=2.0, center=True)
        high_midi = 12 * math.log2(sample_rate / (2 * n_harmonics) / 440.0) + 69
        self.n_bands = int((high_midi - low_midi) * semitone_scale)
        midi = torch.linspace(low_midi, high_midi, self.n_bands + 1)[:-1]
        f0 = 440.0 * 2 ** ((midi - 69) / 12)
        self.log_f0 = nn.Parameter(f0.log())
        self.q = nn.Parameter(torch.ones(1))
        self.register_buffer("fft_hz", torch.linspace(0, sample_rate / 2, n_fft // 2 + 1), persistent=False)
        self.register_buffer("harmonics", torch.arange(1, n_harmonics + 1, dtype=torch.float32), persistent=False)

    def filters(self) -> torch.Tensor:
        """[n_fft//2+1, n_harmonics * n_bands] triangular filters, harmonic-major."""
        centre = (self.harmonics[:, None] * self.log_f0.exp()[None, :]).reshape(-1)       # [H*F]
        # Glasberg & Moore ERB; |Q| keeps the width positive if the optimiser pushes Q through zero.
        bw = (0.1079 * centre + 24.7) / self.q.abs().clamp_min(1e-3)
        dist = (self.fft_hz[:, None] - centre[None, :]).abs()
        return torch.relu(1 - 2 * dist / bw[None, :])

    def stft_module(self) -> Spectrogram:
        return self.spec

    def from_power(self, power: torch.Tensor) -> torch.Tensor:
        bands = torch.einsum("bkt,kf->bft", power, self.filters())                       # [B, H*F, T]
        b, _, t = bands.shape
        return log_compress(bands).reshape(b, self.n_harmonics, self.n_bands, t)


class LogFreq(HarmonicFilterBank):
    """Semitone-spaced log-frequency spectrogram, C2 (65 Hz) to Nyquist: [B, L] -> [B, 1, n_bands, T]
    (83 bands at 16 kHz).

    A single-harmonic ``HarmonicFilterBank`` with its centres and widths frozen, so band ``b`` stays exactly
    ``b`` semitones above C2 and ``b mod 12`` is a pitch class: what a key-preserving pooling
    (``TinyCNN(pitch_classes=...)``) folds on. A mel axis cannot be folded that way: its bands are neither
    semitone-spaced nor octave-periodic.
    """

    bands_per_octave = 12

    def __init__(self, sample_rate: int = 16000, hop_ms: float = 10.0, low_midi: float = 36.0):
        super().__init__(sample_rate, hop_ms=hop_ms, n_harmonics=1, semitone_scale=1, low_midi=low_midi)
        self.out_channels = 1
        for name in ("log_f0", "q"):     # buffers, not frozen parameters: the optimiser never sees them
            value = getattr(self, name).detach()
            delattr(self, name)
            self.register_buffer(name, value)


class Raw(nn.Module):
    """Identity front-end for waveform encoders: [B, L] -> [B, 1, L]."""

    out_channels = 1

    def __init__(self, sample_rate: int = 16000):
        super().__init__()

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return wave.unsqueeze(1)


FRONTENDS = {"logmel": LogMel, "harmonic": HarmonicFilterBank, "logfreq": LogFreq, "raw": Raw}


def build_frontend(name: str, sample_rate: int, n_mels: int = 96, win_ms: float = 25.0,
                   hop_ms: float = 10.0) -> nn.Module:
    if name == "logmel":
        return LogMel(sample_rate, n_mels=n_mels, win_ms=win_ms, hop_ms=hop_ms)
    if name == "harmonic":
        return HarmonicFilterBank(sample_rate, hop_ms=hop_ms)
    if name == "logfreq":
        return LogFreq(sample_rate, hop_ms=hop_ms)
    if name == "raw":
        return Raw(sample_rate)
    raise KeyError(f"unknown front-end '{name}' (known: {sorted(FRONTENDS)})")
