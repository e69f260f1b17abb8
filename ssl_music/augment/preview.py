"""Augmentation preview: hear and see what a chain does to one audio file.

Writes ``original.wav``, ``aug_00.wav`` ... and ``grid.png`` (log-mel spectrograms, drawn parameters in
the titles). The config is a pretrain config (its ``augment`` section) or an augment preset YAML. The
clip goes through the chain as a view of a chain-treated objective would (not a rate pair's). A ``spectral``
config previews as the gpu backend with the same draws: its views are spectrograms, which a WAV cannot hold.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ssl_music.augment.transforms.base import TRANSFORMS, fail
from ssl_music.data.audio import load_audio


def _title(entries) -> str:
    parts = []
    for name, prm in entries:
        short = ", ".join(f"{k}={v:.3g}" for k, v in prm.items())
        parts.append(f"{name}({short})" if short else name)
    return "; ".join(parts) or "no transform applied"


def _chain_view(aug) -> str:
    """A view name the augmenter puts through the chain itself (the first chain-treated objective)."""
    return next(name for name, pair in aug.pairs.items() if pair is None)


def _draw(aug, src: np.ndarray, n: int, backend: str, seed: int):
    """n augmented crops of src and, per crop, the transforms applied with their parameters."""
    view = _chain_view(aug)
    views = np.repeat(src[None], n, 0)[:, None]        # [n, 1, S]
    titles = [[] for _ in range(n)]
    if backend == "cpu":
        rng = np.random.default_rng(seed)
        outs = []
        for i in range(n):
            record = []
            outs.append(aug.apply_sample({view: views[i]}, rng, record)[view][0])
            titles[i] = [(name, prm) for _, _, name, applied, prm in record if applied]
        return np.stack(outs), titles
    import torch

    record = []
    out = aug.apply_batch({view: torch.from_numpy(views)}, torch.Generator().manual_seed(seed), record)
    for name, applied, prm in record:
        for i in range(n):
            if applied[i]:
                titles[i].append((name, {k: float(v[i]) for k, v in prm.items()}))
    return out[view][:, 0].cpu().numpy(), titles


def _grid(path: Path, clips, titles, sr: int) -> None:
    import librosa
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(clips), 1, figsize=(10, 2.2 * len(clips)), squeeze=False)
    for ax, clip, title in zip(axes[:, 0], clips, titles):
        mel = librosa.feature.melspectrogram(y=clip, sr=sr, n_fft=1024, hop_length=256, n_mels=64)
        ax.imshow(librosa.power_to_db(mel + 1e-10, ref=1.0, top_db=80), origin="lower", aspect="auto")
        ax.set_title(title, fontsize=7)
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def preview(augment_cfg, data_cfg, treatments, audio: str | Path, out: str | Path, n: int = 8,
            backend: str | None = None, seed: int = 0) -> tuple[Path, int]:
    """Write ``original.wav``, ``n`` augmented WAVs and ``grid.png`` into ``out``; returns (out, n). The
    sections come from :func:`ssl_music.config.load_augment` (the caller reads the config: augment sits
    below config, which validates chains with it)."""
    import soundfile as sf

    from ssl_music.augment import ViewAugmenter

    aug = ViewAugmenter(augment_cfg, data_cfg, treatments)
    playable = "cpu" if (backend or aug.backend) == "cpu" else "gpu"   # what gives the WAVs
    for name in aug.chain:
        if not TRANSFORMS[name].has_backend(playable):
            fail(f"augment.chain.{name}", f"transform '{name}' acts on a spectrogram and has no waveform to play: "
                                          f"drop it from the chain to preview the rest")
    sr = aug.sample_rate
    y = load_audio(audio, sr)
    need = aug.source_len(_chain_view(aug))
    src = np.pad(y, (0, max(0, need - len(y))))[:need]
    clips, titles = _draw(aug, src, n, backend or aug.backend, seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sf.write(out / "original.wav", src[: aug.out_len], sr)
    for i, clip in enumerate(clips):
        sf.write(out / f"aug_{i:02d}.wav", np.clip(clip, -1, 1), sr)
    _grid(out / "grid.png", [src[: aug.out_len], *clips], ["original (crop)", *map(_title, titles)], sr)
    return out, len(clips)
