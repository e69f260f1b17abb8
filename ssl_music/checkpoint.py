"""The checkpoint format, the export format, and their readers: what readers accept and how they load it.

A pretraining checkpoint (Lightning's ``.ckpt``) carries ``ssl_music = {"format": FORMAT, "config": <the
run's config as a plain dict>}`` beside Lightning's own state (optimizer states, loops, callbacks,
hyper-parameters); readers use only ``state_dict`` and ``ssl_music``. It is read with
``torch.load(weights_only=True)``: tensors and plain containers are rebuilt, any other pickled object (a
class or function the file names, whose construction would run code) is refused before it is built.

An export (``ssl-music export``) is what to share: a folder with ``model.safetensors`` (the encoder and
the heads that outlive pretraining, under the same keys as in ``state_dict``) and ``config.json`` (the
run's config, the export format and the weights' SHA-256). Reading it involves no pickle at all.

``load_encoder`` and evaluation rebuild the model from the config and refuse, with the reason, a format
they do not know. Kept apart from the LightningModule so readers need not import Lightning.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from omegaconf import DictConfig

from ssl_music.data.files import file_sha256
from ssl_music.errors import SSLMusicError

FORMAT = "ssl_music.checkpoint/3"  # /3: heads under heads.<name>; /2: the projector reads Encoder.content_dim
# Formats whose encoder and heads this version rebuilds (/1 differs only in the projector's input width,
# which resuming refuses and embedding does not use; /1 and /2 keep each head at the top level, which
# ``heads_renamed`` moves under ``heads.``).
READABLE = ("ssl_music.checkpoint/1", "ssl_music.checkpoint/2", FORMAT)

EXPORT_FORMAT = "ssl_music.export/1"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"

# Globals ``torch.load(weights_only=True)`` may rebuild beyond its defaults (tensors, storages, dict, list,
# tuple, OrderedDict, str, numbers, None). A pretraining checkpoint needs none: Lightning 2.6 writes its
# loops, callback states (ModelCheckpoint: paths as str, scores as tensors), optimizer and LR-scheduler
# states and the hyper-parameters (``{"config": <plain dict>}``) as those types only, and so does
# ``metadata`` below. Add a class here only if the format starts storing one, never to admit a file.
SAFE_GLOBALS: list = []


def heads_renamed(state: dict) -> dict:
    """``state`` with every head under ``heads.<name>.``: checkpoints and exports written before the model
    kept its heads in one mapping have them at the top level (``tempo_head.*``, ``projector.*``); the
    encoder is the only other top-level module, so any other first key component is a head; ``states.`` (an
    objective's queue or EMA target, since /3) is training state that readers skip."""
    return {k if k.startswith(("encoder.", "heads.", "states.")) else f"heads.{k}": v for k, v in state.items()}


def metadata(config: dict) -> dict:
    return {"format": FORMAT, "config": config}


def _unsafe_globals(path: Path, exc: Exception) -> str:
    """The globals that made a weights-only load fail, listed without unpickling anything."""
    import torch

    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception:  # noqa: BLE001 - fall back to the name torch's message gives
        names = re.findall(r"Unsupported global: GLOBAL (\S+)", str(exc))
    return ", ".join(names) or "an object that is not a tensor or plain data"


# What a file starts with -> what it is: read before torch is asked, so a file that is no checkpoint is
# named for what it is instead of by the exception torch's reader happens to raise on it.
_AUDIO_MAGIC = ((b"RIFF", "WAV"), (b"RF64", "WAV"), (b"fLaC", "FLAC"), (b"OggS", "Ogg"), (b"ID3", "MP3"),
                (b"FORM", "AIFF"), (b".snd", "AU"), (b"caff", "CAF"))
# torch.save's legacy (pre-zip) format opens with this pickled magic number
_TORCH_LEGACY = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"


def sniff(path: Path) -> tuple[str, str]:
    """(kind, what the file is in words); kind is "torch" (zip or legacy torch.save) or "other"."""
    import zipfile

    with open(path, "rb") as f:
        head = f.read(4096)
    if not head:
        return "other", "is empty (0 bytes)"
    if head.startswith(b"PK\x03\x04"):
        try:
            names = zipfile.ZipFile(path).namelist()
        except (zipfile.BadZipFile, OSError):
            return "torch", "a zip archive"   # torch reads it and says how it is damaged
        if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
            return "torch", "a torch zip checkpoint"
        return "other", f"is a zip archive but not a torch checkpoint (no data.pkl among {len(names)} entries)"
    if head.startswith(_TORCH_LEGACY):
        return "torch", "a legacy torch.save file"
    if head[:1] == b"\x80":
        return "other", ("is a plain Python pickle, not a torch checkpoint: not loaded, since unpickling runs "
                         "whatever code the file names")
    for magic, name in _AUDIO_MAGIC:
        if head.startswith(magic):
            return "other", f"is audio ({name}), not a checkpoint"
    if head[0] == 0xFF and head[1:2] and head[1] & 0xE0 == 0xE0:
        return "other", "is audio (MP3), not a checkpoint"
    if head[8:10] == b'{"' and int.from_bytes(head[:8], "little") + 8 <= path.stat().st_size:
        return "other", (f"is a safetensors file; ssl_music reads safetensors only inside an export folder "
                         f"({WEIGHTS_FILE} + {CONFIG_FILE}, written by `ssl-music export`)")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\t\r\n" for c in text):
        first = text.strip().splitlines()[0][:60] if text.strip() else ""
        return "other", f"is a text file (starts '{first}'), not a checkpoint"
    return "other", f"is not a torch checkpoint (unrecognised content, starts with bytes {head[:8].hex(' ')})"


def _run_folder(path: Path) -> str | None:
    """Where a pretraining run folder passed as a checkpoint keeps its last checkpoint, in an error message."""
    if path.is_dir() and ((path / "checkpoints").is_dir() or (path / "config.yaml").is_file()):
        last = path / "checkpoints" / "last.ckpt"
        return (f"{path} is a pretraining run folder, not a checkpoint: pass its checkpoint, {last}"
                + ("" if last.is_file() else " (not written yet: the run has not saved one)"))
    return None


def read_checkpoint(path: str | Path) -> tuple[dict, DictConfig]:
    """Load a pretraining checkpoint (weights only: no pickled code runs) and its ssl_music config;
    anything else is refused with the path and what the file is in the message."""
    import pickle

    import torch

    path = Path(path)
    if _run_folder(path):
        raise SSLMusicError(_run_folder(path))
    if not path.is_file():
        raise SSLMusicError(f"checkpoint not found: {path}")
    kind, what = sniff(path)
    if kind != "torch":
        raise SSLMusicError(f"{path} {what}")
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" not in str(exc):
            raise SSLMusicError(f"cannot read checkpoint {path}: {exc}") from None
        raise SSLMusicError(
            f"refused to load {path}: it contains pickled objects that are neither tensors nor plain data "
            f"({_unsafe_globals(path, exc)}); unpickling them would run code named by the file. An ssl_music "
            "checkpoint never needs them: do not load this file unless you trust where it came from, and "
            "share models as `ssl-music export` folders (safetensors + JSON).") from None
    except Exception as exc:  # noqa: BLE001 - a truncated or damaged file: say so, torch's words only as detail
        detail = str(exc).strip().splitlines()[-1][:160] if str(exc).strip() else type(exc).__name__
        raise SSLMusicError(f"cannot read checkpoint {path}: {what} that is truncated or damaged ({detail})") from None
    meta = ckpt.get("ssl_music") if isinstance(ckpt, dict) else None
    if not isinstance(meta, dict) or "config" not in meta:
        raise SSLMusicError(f"{path} is not an ssl_music checkpoint (no 'ssl_music' section)")
    fmt = meta.get("format")
    if fmt not in READABLE:
        raise SSLMusicError(f"{path}: checkpoint format {fmt!r} is not one this version reads "
                            f"({', '.join(READABLE)}); it was written by a different ssl_music version")
    if not isinstance(ckpt.get("state_dict"), dict):
        raise SSLMusicError(f"{path}: ssl_music checkpoint without a 'state_dict'")
    from ssl_music.config import saved_config

    return ckpt, saved_config(meta["config"])


def is_export(path: str | Path) -> bool:
    """An export folder, or the weights file inside one (a pretraining run folder is not one)."""
    path = Path(path)
    return (path.is_dir() and not _run_folder(path)) or path.suffix == ".safetensors"


def _module_name(key: str) -> str:
    """``encoder``, or ``heads.<name>`` for a head's key."""
    parts = key.split(".")
    return ".".join(parts[:2]) if parts[0] == "heads" else parts[0]


def write_export(out_dir: str | Path, state: dict, config: dict, source: dict, layout: list | None = None) -> Path:
    """Write ``state`` (tensors keyed as in ``state_dict``) as safetensors and ``config`` as JSON into
    ``out_dir``; ``source`` (which checkpoint it came from) and ``layout`` (the embedding's named
    subspaces, so a reader without ssl_music knows which dimensions are which) beside the config."""
    from safetensors.torch import save

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / WEIGHTS_FILE
    # clone: safetensors refuses tensors that share storage; bytes written here get the usual file mode
    # (safetensors' own save_file creates the file readable by its owner only)
    weights.write_bytes(save({k: v.detach().cpu().contiguous().clone() for k, v in state.items()},
                             metadata={"format": EXPORT_FORMAT}))
    meta = {"format": EXPORT_FORMAT, "weights": WEIGHTS_FILE, "weights_sha256": file_sha256(weights),
            "modules": sorted({_module_name(k) for k in state}), "source": source, "config": config}
    if layout is not None:
        meta["layout"] = layout
    (out / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return out


def read_export(path: str | Path) -> tuple[dict, DictConfig, str]:
    """An export folder (or its ``model.safetensors``) -> (state, config, identity); no pickle involved.
    The identity is the SHA-256 prefix of ``config.json``, which records the weights' checksum."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    cfg_file, weights = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    if not cfg_file.is_file():
        raise SSLMusicError(f"{folder} is not an ssl_music export (no {CONFIG_FILE}); "
                            "write one with `ssl-music export --checkpoint CKPT --out DIR`")
    try:
        meta = json.loads(cfg_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SSLMusicError(f"cannot read {cfg_file}: {exc}") from None
    fmt = meta.get("format") if isinstance(meta, dict) else None
    if fmt != EXPORT_FORMAT:
        raise SSLMusicError(f"{cfg_file}: export format {fmt!r} is not one this version reads ({EXPORT_FORMAT}); "
                            "it was written by a different ssl_music version")
    if not isinstance(meta.get("config"), dict):
        raise SSLMusicError(f"{cfg_file} has no 'config' section")
    if not weights.is_file():
        raise SSLMusicError(f"export weights not found: {weights}")
    if file_sha256(weights) != meta.get("weights_sha256"):
        raise SSLMusicError(f"{weights} does not match the checksum recorded in {cfg_file} (changed or truncated)")
    from safetensors.torch import load_file

    try:
        state = load_file(str(weights), device="cpu")
    except Exception as exc:  # noqa: BLE001
        raise SSLMusicError(f"cannot read {weights}: {exc}") from None
    from ssl_music.config import saved_config

    return state, saved_config(meta["config"]), file_sha256(cfg_file)[:16]


def read_weights(path: str | Path) -> tuple[dict, DictConfig, str]:
    """A pretraining checkpoint or an export -> (state_dict, config, identity): what ``load_encoder`` needs."""
    if is_export(path):
        return read_export(path)
    ckpt, cfg = read_checkpoint(path)
    return ckpt["state_dict"], cfg, file_sha256(Path(path))[:16]
