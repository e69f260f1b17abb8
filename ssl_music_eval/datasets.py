"""Labelled evaluation datasets: one loader per on-disk format, all returning an :class:`EvalDataset`.

A task is a label name with a kind: ``multiclass`` (one string per item), ``multilabel`` (a list of tags
per item), ``tempo`` (a BPM written as a string) or ``segmentation`` (the item's boundary times in seconds,
sorted floats from the start of its first to the end of its last section; ``"0|9.6|19.2|30"`` in a CSV).
The loaders of annotated segmentation sets (SALAMI, Harmonix, clips joined into tracks) are in
:mod:`ssl_music_eval.segment_data`. Audio files that do not exist are not an error
here: they go to ``dataset.missing`` with the reason, so a report can list what was skipped. Label
columns that do not exist are an error, raised before any work, naming the column and the file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

from ssl_music.data.files import AUDIO_EXTENSIONS, read_csv, require_columns, resolve
from ssl_music.errors import SSLMusicError

TASK_KINDS = ("multiclass", "multilabel", "tempo", "segmentation")
BOUNDARY_SEP = "|"


@dataclass
class Item:
    path: Path
    track_id: str
    labels: dict[str, str | list[str]]
    split: str | None = None


@dataclass
class EvalDataset:
    name: str
    items: list[Item]
    tasks: dict[str, str]                               # task name -> kind (TASK_KINDS)
    missing: list[dict[str, str]] = field(default_factory=list)   # [{"path", "reason"}]

    def labelled(self, task: str) -> list[Item]:
        """Items that carry a label for ``task`` (GiantSteps tracks may have a key but no tempo)."""
        if task not in self.tasks:
            raise SSLMusicError(f"dataset '{self.name}' has no task '{task}' (tasks: {', '.join(self.tasks)})")
        return [it for it in self.items if task in it.labels]


def split_where(where: str) -> tuple[str, str]:
    """A task's ``where: COLUMN=VALUE`` filter -> (column, value), both stripped."""
    column, _, value = where.partition("=")
    return column.strip(), value.strip()


_TRUE, _FALSE = frozenset({"true", "yes"}), frozenset({"false", "no"})


def where_value(text) -> bool | float | str:
    """A where value or label cell as what it means: true/yes and false/no as booleans, numbers as numbers
    (so ``drums=true`` matches a column of 1/0, ``bpm=120`` one of 120.0), anything else case-blind text."""
    low = str(text).strip().lower()
    if low in _TRUE or low in _FALSE:
        return low in _TRUE
    try:
        return float(low)
    except ValueError:
        return low


def matches_where(item: "Item", where: str) -> bool:
    """Whether ``item`` belongs to a task filtered by ``where`` (empty: every item); see ``where_value``."""
    if not where:
        return True
    column, value = split_where(where)
    return where_value(item.labels.get(column, "")) == where_value(value)


def parse_boundaries(text: str, sep: str = BOUNDARY_SEP) -> list[float]:
    """``"0|9.6|19.2|30"`` -> sorted unique boundary times ``[0.0, 9.6, 19.2, 30.0]``; SSLMusicError when a
    value is not a finite time >= 0 or fewer than two boundaries (one section) are given."""
    try:
        times = sorted({float(t) for t in text.split(sep) if t.strip()})
    except ValueError:
        raise SSLMusicError(f"boundaries must be times in seconds joined by '{sep}', got '{text}'") from None
    if len(times) < 2 or not all(np.isfinite(times)) or times[0] < 0:
        raise SSLMusicError(f"boundaries need at least two finite times >= 0 (start and end), got '{text}'")
    return times


def _split_name(text: str | None) -> str | None:
    if not text:
        return None
    low = text.strip().lower()
    return {"valid": "val", "validation": "val", "dev": "val", "training": "train", "testing": "test"}.get(low, low)


def load_csv_manifest(csv_path: str | Path, label_cols: Sequence[str] | Mapping[str, str], tag_sep: str = "|",
                      audio_root: str | Path | None = None, name: str | None = None) -> EvalDataset:
    """Rows ``path, <label columns>, [split], [track_id]``; paths relative to ``audio_root`` (default: the CSV's folder).

    ``label_cols`` maps column -> kind, or lists columns whose kind is inferred: ``multilabel`` when any
    value contains ``tag_sep``, else ``multiclass``. Rows with an empty single label are skipped (listed
    in ``missing``); an empty tag list is a valid multi-label row (no tag applies).
    """
    csv_path = Path(csv_path)
    columns, rows = read_csv(csv_path, required=(), what="label file")
    wanted = list(label_cols)
    require_columns(columns, ["path", *wanted], csv_path)
    if isinstance(label_cols, Mapping):
        kinds = dict(label_cols)
        bad = {c: k for c, k in kinds.items() if k not in TASK_KINDS}
        if bad:
            raise SSLMusicError(f"{csv_path}: unknown task kind(s) {bad}; use one of {TASK_KINDS}")
    else:
        kinds = {c: "multilabel" if any(tag_sep in r[c] for r in rows) else "multiclass" for c in wanted}
    root = Path(audio_root) if audio_root is not None else csv_path.parent
    items, missing = [], []
    for row in rows:
        path = resolve(row["path"], root)
        if not path.is_file():
            missing.append({"path": str(path), "reason": "audio file not found"})
            continue
        labels: dict[str, str | list[str]] = {}
        empty = [c for c in wanted if kinds[c] != "multilabel" and not row[c]]
        if empty:
            missing.append({"path": str(path), "reason": f"empty label in column {', '.join(empty)}"})
            continue
        try:
            for c in wanted:
                labels[c] = [t.strip() for t in row[c].split(tag_sep) if t.strip()] if kinds[c] == "multilabel" \
                    else parse_boundaries(row[c]) if kinds[c] == "segmentation" else row[c]
        except SSLMusicError as exc:
            missing.append({"path": str(path), "reason": f"column {c}: {exc}"})
            continue
        items.append(Item(path, row.get("track_id") or path.stem, labels, _split_name(row.get("split"))))
    return EvalDataset(name or csv_path.stem, items, kinds, missing)


def load_folder_per_class(root: str | Path, task: str = "genre", name: str | None = None) -> EvalDataset:
    """GTZAN layout: ``root/<class>/<file>``; the class is the folder name, the track id the file stem."""
    root = Path(root)
    if not root.is_dir():
        raise SSLMusicError(f"dataset folder not found: {root}")
    items = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(class_dir.iterdir()):
            if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS:
                items.append(Item(f, f.stem, {task: class_dir.name}))
    if not items:
        raise SSLMusicError(f"{root}: no audio files in class sub-folders (expected root/<class>/<file>)")
    return EvalDataset(name or root.name, items, {task: "multiclass"})


def load_tag_csv(csv_path: str | Path, audio_root: str | Path | None = None, tag_cols: Sequence[str] | None = None,
                 tags_col: str | None = None, tag_sep: str = "|", path_col: str | None = None,
                 top_n: int | None = None, task: str = "tags", name: str | None = None) -> EvalDataset:
    """MagnaTagATune-style multi-label table (tab or comma separated).

    Either one 0/1 column per tag (``tag_cols``; default: every column except path, id and split columns)
    or one column of joined tags (``tags_col``, split on ``tag_sep``). ``path_col`` defaults to
    ``mp3_path`` or ``path``, the track id to ``clip_id`` / ``track_id`` / the file stem; a ``split``
    column, when present, gives fixed splits. ``top_n`` keeps the most frequent tags (MTAT: 50).
    """
    csv_path = Path(csv_path)
    columns, rows = read_csv(csv_path, required=(), what="label file")
    if path_col is None:
        path_col = next((c for c in ("mp3_path", "path") if c in columns), "path")
    id_col = next((c for c in ("clip_id", "track_id") if c in columns), None)
    meta = {path_col, "split", *([id_col] if id_col else [])}
    if tags_col is not None:
        require_columns(columns, [path_col, tags_col], csv_path)
        tag_lists = [[t.strip() for t in r[tags_col].split(tag_sep) if t.strip()] for r in rows]
    else:
        tag_cols = list(tag_cols) if tag_cols is not None else [c for c in columns if c not in meta]
        require_columns(columns, [path_col, *tag_cols], csv_path)
        if not tag_cols:
            raise SSLMusicError(f"{csv_path}: no tag columns besides {sorted(meta)}")
        tag_lists = [[c for c in tag_cols if r[c] not in ("", "0", "0.0", "false", "False")] for r in rows]
    if top_n is not None:
        counts: dict[str, int] = {}
        for tags in tag_lists:
            for t in tags:
                counts[t] = counts.get(t, 0) + 1
        keep = set(sorted(counts, key=lambda t: (-counts[t], t))[:top_n])
        tag_lists = [[t for t in tags if t in keep] for tags in tag_lists]
    root = Path(audio_root) if audio_root is not None else csv_path.parent
    items, missing = [], []
    for row, tags in zip(rows, tag_lists):
        if not row[path_col]:
            missing.append({"path": "", "reason": f"empty {path_col} (id {row.get(id_col, '?') if id_col else '?'})"})
            continue
        path = resolve(row[path_col], root)
        if not path.is_file():
            missing.append({"path": str(path), "reason": "audio file not found"})
            continue
        track = (row.get(id_col) if id_col else None) or path.stem
        items.append(Item(path, track, {task: tags}, _split_name(row.get("split"))))
    return EvalDataset(name or csv_path.stem, items, {task: "multilabel"}, missing)


_PITCH = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
_KEY_RE = re.compile(r"^\s*([A-Ga-g])\s*([#b♯♭]?)\s*[:\s]?\s*(maj|major|min|minor)?\s*$", re.IGNORECASE)


def normalise_key(text: str) -> str:
    """``"Eb minor"``, ``"d# min"``, ``"C:maj"`` -> ``"Eb:min"`` / ``"C:maj"`` (flat spelling, like GiantSteps)."""
    m = _KEY_RE.match(text)
    if not m:
        raise SSLMusicError(f"cannot parse key '{text}' (expected e.g. 'Eb minor' or 'C:maj')")
    pc = (_PITCH[m.group(1).lower()] + {"#": 1, "♯": 1, "b": -1, "♭": -1}.get(m.group(2), 0)) % 12
    mode = "min" if (m.group(3) or "maj").lower().startswith("min") else "maj"
    return f"{_NAMES[pc]}:{mode}"


def _annotation_index(folder: Path, suffix: str) -> dict[str, Path]:
    return {p.name[: -len(suffix)]: p for p in folder.rglob(f"*{suffix}")}


def load_giantsteps(audio_dir: str | Path, annotations_dir: str | Path, name: str = "giantsteps") -> EvalDataset:
    """GiantSteps tempo / key: ``<id>.LOFI.mp3`` in ``audio_dir``, ``<id>.LOFI.bpm`` / ``.key`` text files
    anywhere under ``annotations_dir``. Tasks: ``tempo`` (BPM) and ``key`` (normalised, e.g. ``Eb:min``)."""
    audio_dir, annotations_dir = Path(audio_dir), Path(annotations_dir)
    for folder in (audio_dir, annotations_dir):
        if not folder.is_dir():
            raise SSLMusicError(f"GiantSteps folder not found: {folder}")
    bpm, key = _annotation_index(annotations_dir, ".bpm"), _annotation_index(annotations_dir, ".key")
    if not bpm and not key:
        raise SSLMusicError(f"{annotations_dir}: no .bpm or .key annotation files")
    audio = {p.name.rsplit(".", 1)[0]: p for p in audio_dir.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS}
    items, missing = [], []
    for stem in sorted(set(bpm) | set(key)):
        labels: dict[str, str | list[str]] = {}
        for task, index in (("tempo", bpm), ("key", key)):
            if stem not in index:
                continue
            text = index[stem].read_text(encoding="utf-8", errors="replace").strip()
            try:
                labels[task] = f"{float(text.split()[0]):g}" if task == "tempo" else normalise_key(text)
            except (ValueError, IndexError, SSLMusicError) as exc:
                missing.append({"path": str(index[stem]), "reason": f"unreadable {task} annotation: {exc}"})
        if stem not in audio:
            missing.append({"path": str(audio_dir / f"{stem}.mp3"), "reason": "audio file not found"})
        elif labels:
            items.append(Item(audio[stem], stem.split(".")[0], labels))
    tasks = {t: k for t, k, idx in (("tempo", "tempo", bpm), ("key", "multiclass", key)) if idx}
    return EvalDataset(name, items, tasks, missing)


SYNTHETIC_TASKS = {"tempo": "tempo", "tempo_class": "multiclass", "key": "multiclass",
                   "timbre": "multiclass", "style": "multiclass", "drums": "multiclass"}


def load_synthetic(labels_csv: str | Path) -> EvalDataset:
    """The corpus of ``ssl_music.data.synth.generate_corpus`` (labels.csv beside the audio). Its section
    boundaries (task ``boundaries``, kind segmentation) come from the ``boundaries`` column, or for a corpus
    written before that column existed from the sections.csv beside labels.csv."""
    labels_csv = Path(labels_csv)
    columns, _ = read_csv(labels_csv, required=(), what="label file")
    if "boundaries" in columns:
        return load_csv_manifest(labels_csv, {**SYNTHETIC_TASKS, "boundaries": "segmentation"}, name="synthetic")
    ds = load_csv_manifest(labels_csv, SYNTHETIC_TASKS, name="synthetic")
    sections = labels_csv.parent / "sections.csv"
    if sections.is_file():
        _, rows = read_csv(sections, required=("track_id", "start_s", "end_s"), what="sections file")
        starts: dict[str, list[float]] = {}
        ends: dict[str, float] = {}
        for r in rows:  # section starts and the last end (an end and the next start may differ by rounding)
            starts.setdefault(r["track_id"], []).append(float(r["start_s"]))
            ends[r["track_id"]] = max(ends.get(r["track_id"], 0.0), float(r["end_s"]))
        for it in ds.items:
            if it.track_id in starts:
                it.labels["boundaries"] = sorted(set(starts[it.track_id]) | {ends[it.track_id]})
        ds.tasks["boundaries"] = "segmentation"
    return ds


def _is_multilabel(labels: Sequence) -> bool:
    if hasattr(labels, "ndim") and labels.ndim == 2:
        return True
    return len(labels) > 0 and isinstance(labels[0], (list, tuple, set))


def encode_labels(labels: Sequence, task: str) -> tuple[np.ndarray, list[str]]:
    """Multi-class strings -> (int codes [N], sorted classes); tag lists -> (0/1 matrix [N, T], sorted tags).

    A 0/1 matrix is passed through with tags named by column number.
    """
    if task == "multilabel":
        if hasattr(labels, "ndim") and labels.ndim == 2:
            return (np.asarray(labels) > 0).astype(np.int8), [str(i) for i in range(labels.shape[1])]
        tags = sorted({t for tl in labels for t in tl})
        col = {t: j for j, t in enumerate(tags)}
        Y = np.zeros((len(labels), len(tags)), dtype=np.int8)
        for i, tl in enumerate(labels):
            Y[i, [col[t] for t in tl]] = 1
        return Y, tags
    classes, codes = np.unique(np.asarray(labels).astype(str), return_inverse=True)
    return codes.astype(np.int64), [str(c) for c in classes]


def make_splits(labels: Sequence, n_folds: int = 5, seed: int = 0, fixed: Sequence[str | None] | None = None,
                task: str = "label") -> list[dict[str, np.ndarray | None]]:
    """Index splits ``[{"train", "val" (None = carve from train), "test"}, ...]``.

    ``fixed`` (per-item split names: train / val / test) gives one fold as written; otherwise stratified
    k-fold for single labels, shuffled k-fold for tag lists (stratifying 50 overlapping tags is not
    possible exactly; shuffled folds of a few thousand clips keep every frequent tag in each fold).
    """
    n = len(labels)
    if fixed is not None and any(s is not None for s in fixed):
        names = np.array([_split_name(s) if s is not None else None for s in fixed], dtype=object)
        unknown = sorted({str(s) for s in names if s not in ("train", "val", "test")})
        if unknown:
            raise SSLMusicError(f"task '{task}': split names must be train / val / test; "
                                f"got {', '.join(unknown)}")
        folds = {s: np.flatnonzero(names == s) for s in ("train", "val", "test")}
        for s in ("train", "test"):
            if folds[s].size == 0:
                raise SSLMusicError(f"task '{task}': the fixed splits have no '{s}' items")
        return [{"train": folds["train"], "val": folds["val"] if folds["val"].size else None, "test": folds["test"]}]
    if _is_multilabel(labels):
        splitter = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
        parts = splitter.split(np.zeros(n))
    else:
        values = np.asarray(labels).astype(str)
        classes, counts = np.unique(values, return_counts=True)
        small = [(c, k) for c, k in zip(classes, counts) if k < n_folds]
        if small:
            listed = ", ".join(f"'{c}' ({k})" for c, k in small)
            raise SSLMusicError(f"task '{task}': class {listed} has fewer examples than the {n_folds} folds; "
                                f"drop the class, add examples or use fewer folds")
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        parts = splitter.split(np.zeros(n), values)
    return [{"train": tr, "val": None, "test": te} for tr, te in parts]


def probe_items(items: Sequence, task: Any, cfg: Any, multiclass: bool) -> tuple[list[int], list, list, dict]:
    """The items a probe task scores and its splits: (indexes into ``items``, their labels, the splits, the
    classes left out). A multiclass task skips unlabelled items and, with ``rare_classes: drop`` and no fixed
    splits, classes with fewer items than folds; items with a ``split`` keep it."""
    from collections import Counter

    idx = [i for i, it in enumerate(items) if matches_where(it, task.where)
           and (not multiclass or it.labels.get(task.column) not in (None, ""))]
    fixed = [getattr(items[i], "split", None) for i in idx]
    dropped: dict = {}
    if multiclass and not any(fixed) and cfg.rare_classes == "drop":
        counts = Counter(str(items[i].labels[task.column]) for i in idx)
        dropped = {c: n for c, n in sorted(counts.items()) if n < cfg.folds}
        idx = [i for i in idx if str(items[i].labels[task.column]) not in dropped]
        fixed = [None] * len(idx)
    labels = [items[i].labels[task.column] for i in idx]
    splits = make_splits(labels, cfg.folds, int(cfg.seeds[0]), fixed if any(fixed) else None, task=task.name)
    return idx, labels, splits, dropped
