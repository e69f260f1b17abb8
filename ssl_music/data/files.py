"""Files on disk: which suffixes are audio, checksums, and CSV manifests (a ``path`` column and labels).

Every reader of a folder of audio or of a CSV manifest goes through here: the shard builder, ``embed``,
the evaluation datasets and the online k-NN monitor.
"""
from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Sequence, Type

from ssl_music.errors import SSLMusicError

# What libsndfile (soundfile) decodes, plus .m4a: a folder's m4a files are reported as undecodable rather
# than silently left out.
AUDIO_EXTENSIONS = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".aifc",
                              ".au", ".caf", ".w64", ".rf64", ".m4a"})


def is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS and path.is_file()


def audio_files(folder: Path) -> list[Path]:
    """Audio files under ``folder`` (recursive), in a stable order."""
    return sorted(p for p in Path(folder).rglob("*") if is_audio(p))


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_csv(path: str | Path, required: Sequence[str] = ("path",), what: str = "CSV file",
             error: Type[SSLMusicError] = SSLMusicError) -> tuple[list[str], list[dict[str, str]]]:
    """(columns, rows) of a CSV (or tab-separated) file, cells stripped; ``error`` naming the file when it
    is missing, unreadable, or lacks one of the ``required`` columns."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
        first = text.splitlines()[0] if text else ""
        reader = csv.DictReader(text.splitlines(), delimiter="\t" if first.count("\t") > first.count(",") else ",")
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise error(f"cannot read {what} {path}: {exc}") from None
    columns = [c.strip() for c in (reader.fieldnames or [])]
    require_columns(columns, required, path, error)
    return columns, rows


def require_columns(columns: Sequence[str], wanted: Sequence[str], path: str | Path,
                    error: Type[SSLMusicError] = SSLMusicError) -> None:
    absent = [c for c in wanted if c not in columns]
    if absent:
        raise error(f"{path}: no column {', '.join(repr(c) for c in absent)} (columns: {', '.join(columns)})")


def resolve(path_text: str, base: Path) -> Path:
    """A manifest's path: absolute as written, else relative to ``base`` (by default the CSV's folder)."""
    p = Path(path_text)
    return p if p.is_absolute() else Path(base) / p
