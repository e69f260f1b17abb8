"""Files shipped with the package -- the configs and the SLURM templates -- and where a user's own come first.

Both ship inside the package (``ssl_music/configs``, ``ssl_music/slurm``, read through importlib.resources,
so an installed wheel has them; a checkout links ``configs -> ssl_music/configs`` and ``slurm``).

A user's own files win: a path that exists relative to the working directory is used as given; otherwise a
documented name ``configs/<rest>`` is looked up in ``$SSL_MUSIC_CONFIG_DIR/<rest>``, then in the package,
so ``ssl-music pretrain --config configs/pretrain/demo.yaml`` works from any folder. Presets by name
(``augment.preset=NAME``) look in ``$SSL_MUSIC_CONFIG_DIR/augment/``, ``./configs/augment/``, then the
package's.
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from ssl_music.errors import ConfigError


def package_dir(name: str) -> Path:
    """A folder shipped as package data (``configs``, ``slurm``). pip installs wheels as plain files, so
    the resource is a real folder; a zipped install would have none and is refused by name."""
    found = resources.files("ssl_music") / name
    path = Path(str(found))
    if not path.is_dir():
        raise ConfigError(f"the installed ssl_music has no {name}/ folder ({found}): reinstall the package "
                          f"(its wheel ships ssl_music/{name} as package data)")
    return path


CONFIG_DIR = package_dir("configs")
CONFIG_ENV = "SSL_MUSIC_CONFIG_DIR"  # a folder laid out like configs/ that comes before the package's


def config_dirs() -> list[tuple[str, Path]]:
    """Where configs are looked up after the working directory, first wins, each with how to name it."""
    dirs = []
    if os.environ.get(CONFIG_ENV):
        dirs.append((f"${CONFIG_ENV}", Path(os.environ[CONFIG_ENV])))
    dirs.append(("the package", CONFIG_DIR))
    return dirs


def find_config(path: str | Path) -> Path:
    """A config file named by the user: ``path`` itself when it exists (absolute, or relative to the working
    directory: the user's own file), else for a documented name ``configs/<rest>`` the first of
    ``$SSL_MUSIC_CONFIG_DIR/<rest>`` and the package's ``configs/<rest>`` that exists. When none does,
    ``path`` unchanged, so the reader's "not found" names what the user typed."""
    p = Path(path)
    if p.is_absolute() or p.exists() or len(p.parts) < 2 or p.parts[0] != "configs":
        return p
    rest = Path(*p.parts[1:])
    for _, folder in config_dirs():
        if (folder / rest).is_file():
            return folder / rest
    return p


def not_found_note(path: Path) -> str:
    if path.is_absolute() or not path.parts or path.parts[0] != "configs":
        return ""
    return " (looked in the working directory, then " + ", ".join(
        f"{label} ({folder})" for label, folder in config_dirs()) + ")"


def preset_dirs() -> list[tuple[str, Path]]:
    """Where ``augment.preset=NAME`` is looked up, first wins: a user's folder before the package's."""
    dirs = [(label, folder / "augment") for label, folder in config_dirs()]
    dirs.insert(len(dirs) - 1, ("./configs/augment", Path("configs") / "augment"))
    return dirs


def preset_path(preset: str) -> Path | None:
    """The preset's YAML from the first folder of :func:`preset_dirs` that has it; None when none has."""
    for _, folder in preset_dirs():
        if (folder / f"{preset}.yaml").is_file():
            return folder / f"{preset}.yaml"
    return None


def preset_names() -> list[str]:
    return sorted({p.stem for _, folder in preset_dirs() if folder.is_dir() for p in folder.glob("*.yaml")})
