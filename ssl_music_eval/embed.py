"""Track embeddings for evaluation: decode, window, embed, mean-pool, cached on disk.

A track embedding is the mean of the model's window embeddings over the whole clip (DESIGN §7). The
cache key hashes the model identity (checkpoint hash or "random-<seed>"), every file's path, size and
mtime, and the embedding settings, so re-evaluating the same checkpoint on the same files reads the
``.npz`` back and any change to the checkpoint, the files or the settings recomputes.

The model is duck-typed: anything with ``sample_rate``, ``crop_s``, ``identity`` and
``embed_windows(wave, sample_rate, hop_s=None) -> [W, D]`` works (checkpoint encoders, the MFCC+chroma
baseline, the fakes in the tests).
"""
from __future__ import annotations

import hashlib
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ssl_music.data import audio as _audio
from ssl_music.data.files import audio_files, read_csv, resolve
from ssl_music.errors import AudioError

CACHE_VERSION = 2  # 2: silent files are skipped (version 1 caches embedded them as music)


def _item_path(item: Any) -> str:
    return str(item.path if hasattr(item, "path") else item)


def _items_of(dataset: Any) -> list:
    return list(dataset.items if hasattr(dataset, "items") else dataset)


def _file_stamp(path: str) -> list:
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return [path, None, None]
    return [path, st.st_size, st.st_mtime_ns]


def _architecture(model: Any) -> Any:
    # Random-init encoders all have identity "random-<seed>" whatever their architecture, so the
    # model config (when the model carries one) is part of the key too.
    cfg = getattr(model, "cfg", None)
    if cfg is None:
        return None
    try:
        from omegaconf import OmegaConf

        return OmegaConf.to_container(cfg.model, resolve=True)
    except Exception:  # a duck-typed model with some other cfg: its repr is stable enough
        return repr(cfg)


def cache_key(model: Any, paths: Sequence[str], settings: dict) -> str:
    """sha256 over (model identity, files with size + mtime, settings)."""
    payload = {"version": CACHE_VERSION, "identity": str(model.identity),
               "sample_rate": int(model.sample_rate), "crop_s": float(model.crop_s),
               "architecture": _architecture(model),
               "files": [_file_stamp(p) for p in paths], "settings": settings}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """A whole file as mono float32 ``[N]`` at ``sample_rate``, for everything evaluation reads (embeddings,
    tempo). Like ``ssl_music.data.audio.load_audio``, but digital silence (and an empty file) is refused
    the way the shard builder refuses it: AudioError "<path>: silent (peak ... dBFS < -80 dBFS)". A
    silent file has no music to embed or tempo to estimate; it is reported and skipped, not scored."""
    x = _audio.load_audio(path, sample_rate)
    # min_seconds=0: a clip shorter than a window is zero-padded by the models, not refused
    _audio.check_audio(x, int(sample_rate), min_seconds=0.0, source=str(path))
    return x


def bare_reason(path: str, reason: str) -> str:
    """A skip reason without the leading "<path>: " that AudioError messages carry, for lines that name
    the path already."""
    prefix = f"{path}: "
    return reason[len(prefix):] if reason.startswith(prefix) else reason


def _decode(path: str, sample_rate: int) -> tuple[np.ndarray | None, str | None]:
    try:
        return load_audio(path, sample_rate), None
    except AudioError as exc:
        return None, str(exc)
    except (OSError, RuntimeError, ValueError) as exc:  # anything else soundfile/torchaudio may raise
        return None, f"{path}: {type(exc).__name__}: {exc}"


def _windows(model, wave: np.ndarray, sample_rate: int, hop_s: float | None) -> np.ndarray:
    return np.asarray(model.embed_windows(wave, sample_rate, hop_s=hop_s), dtype=np.float32)


def _compute(model, items, keep_windows, batch_size, hop_s, progress):
    paths = [_item_path(it) for it in items]
    rows, kept, skipped, windows = [], [], [], []
    bar = None
    if progress:
        from tqdm import tqdm

        # labelled with the file at hand: the model's identity is a hash, which tells a user nothing
        bar = tqdm(total=len(paths), desc="embed", unit="file", file=sys.stderr)
    sr = int(model.sample_rate)
    # Decoding (I/O + resampling) runs up to ``batch_size`` files ahead of the model on threads; a model
    # that says ``embeds_on_threads`` (numpy / librosa work that releases the GIL) is run there too.
    on_threads = bool(getattr(model, "embeds_on_threads", False))

    def job(i: int):
        wave, reason = _decode(paths[i], sr)
        return wave, reason, (_windows(model, wave, sr, hop_s) if on_threads and wave is not None else None)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for start in range(0, len(paths), max(1, batch_size)):
            chunk = list(range(start, min(len(paths), start + max(1, batch_size))))
            for i, (wave, reason, w) in zip(chunk, pool.map(job, chunk)):
                if wave is None:
                    skipped.append((paths[i], reason))
                else:
                    w = _windows(model, wave, sr, hop_s) if w is None else w
                    if w.ndim != 2 or w.shape[0] == 0 or not np.all(np.isfinite(w)):
                        skipped.append((paths[i], f"{paths[i]}: model returned no finite embedding"))
                    else:
                        rows.append(w.mean(axis=0))
                        kept.append(i)
                        if keep_windows:
                            windows.append(w)
                if bar is not None:
                    bar.set_postfix_str(Path(paths[i]).name[:40], refresh=False)
                    bar.update(1)
    if bar is not None:
        bar.close()
    X = np.stack(rows).astype(np.float32) if rows else np.zeros((0, 0), np.float32)
    return X, kept, skipped, windows


def _save(path: Path, X, kept, skipped, windows, paths: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # paths: which file each row is, for readers of the cache without the dataset (benchmarks/embedding_blocks.py)
    arrays = {"X": X, "kept": np.asarray(kept, dtype=np.int64), "paths": np.asarray([paths[i] for i in kept], dtype=str),
              "skipped_paths": np.asarray([s[0] for s in skipped], dtype=str),
              "skipped_reasons": np.asarray([s[1] for s in skipped], dtype=str)}
    if windows:
        arrays["windows"] = np.concatenate(windows).astype(np.float32)
        arrays["window_counts"] = np.asarray([len(w) for w in windows], dtype=np.int64)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)  # atomic: an interrupted run never leaves a half-written cache entry


def _load(path: Path, keep_windows: bool):
    with np.load(path) as z:
        X, kept = z["X"], z["kept"].tolist()
        skipped = list(zip(z["skipped_paths"].tolist(), z["skipped_reasons"].tolist()))
        windows = []
        if keep_windows and "windows" in z:
            windows = np.split(z["windows"], np.cumsum(z["window_counts"])[:-1])
    return X, kept, skipped, windows


def embed_dataset(model: Any, dataset: Any, cache_dir: str | Path | None = None, keep_windows: bool = False,
                  batch_size: int = 8, progress: bool = True, hop_s: float | None = None):
    """Embed every file of ``dataset`` (an EvalDataset, or any sequence of Items / paths).

    Returns ``(X [n_kept, D] float32, kept_items, skipped)`` where ``skipped`` is a list of
    ``(path, reason)`` for missing, undecodable, empty or silent files; with ``keep_windows=True`` a fourth element,
    the list of per-file window embeddings ``[W_i, D]``, is appended. ``cache_dir=None`` disables caching.
    """
    items = _items_of(dataset)
    paths = [_item_path(it) for it in items]
    settings = {"hop_s": hop_s, "keep_windows": bool(keep_windows), "pool": "mean"}
    cache_file = None
    if cache_dir is not None:
        name = getattr(dataset, "name", "files")
        cache_file = Path(cache_dir) / f"{name}-{cache_key(model, paths, settings)[:24]}.npz"
    if cache_file is not None and cache_file.is_file():
        X, kept, skipped, windows = _load(cache_file, keep_windows)
    else:
        X, kept, skipped, windows = _compute(model, items, keep_windows, batch_size, hop_s, progress)
        if cache_file is not None:
            _save(cache_file, X, kept, skipped, windows, paths)
    kept_items = [items[i] for i in kept]
    return (X, kept_items, skipped, windows) if keep_windows else (X, kept_items, skipped)


# ------------------------------------------------------------------------------------------------ CLI
def collect_inputs(inputs: Iterable[str]) -> list[tuple[str, str]]:
    """Audio files, folders (searched recursively) and CSV manifests (a ``path`` column, relative to the
    CSV's folder, optional ``track_id``) -> [(path, track_id)]."""
    out: list[tuple[str, str]] = []
    for raw in inputs:
        p = Path(raw)
        if p.suffix.lower() == ".csv":
            _, rows = read_csv(p)
            for row in rows:
                fp = resolve(row["path"], p.parent)
                out.append((str(fp), row.get("track_id") or fp.stem))
        elif p.is_dir():
            out += [(str(f), f.stem) for f in audio_files(p)]
        else:
            out.append((str(p), p.stem))  # a missing file is reported as skipped, not fatal
    return out
