"""Check that the compiled dependencies load together: ``python -m ssl_music.deps``.

torch, torchaudio and soundfile ship native libraries built against each other (torchaudio against
one torch release, soundfile against libsndfile). A resolver that picks a torchaudio patch release
beside an older torch installs cleanly and then fails at import with an undefined symbol, far from
the cause. This check imports each one, runs one native call through it, and names the pair that
does not fit, with the versions installed and the versions requirements.lock pins.
"""
from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

LOCK = Path(__file__).resolve().parent.parent / "requirements.lock"  # a checkout's; a wheel has ssl_music.pins
PINS_MODULE = Path(__file__).resolve().parent / "pins.py"

# (package, what it is built against, a native call that fails when the two do not match)
CHECKS = [
    ("torch", "Python", "import torch; torch.ones(2).sum().item()"),
    ("torchaudio", "torch", "import torch, torchaudio.transforms as T; "
     "T.MelSpectrogram(sample_rate=16000, n_fft=64, n_mels=4)(torch.zeros(1, 256))"),
    ("soundfile", "libsndfile", "import io, numpy, soundfile as sf; b = io.BytesIO(); "
     "sf.write(b, numpy.zeros(16), 16000, format='FLAC'); b.seek(0); sf.read(b)"),
]


def _installed(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def locked_versions(lock: Path = LOCK) -> dict[str, str]:
    """Exact pins of the lock file (first pin per name: the compiled packages have one for all Pythons)."""
    if not lock.is_file():
        return {}
    pins: dict[str, str] = {}
    for m in re.finditer(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", lock.read_text(), re.MULTILINE):
        pins.setdefault(m.group(1).lower(), m.group(2))
    return pins


def pinned(lock: Path = LOCK) -> dict[str, str]:
    """The compiled packages' pins: from the lock in a checkout, else as recorded in ssl_music.pins."""
    from ssl_music.pins import LOCKED

    pins = locked_versions(lock)
    return {name: pins[name] for name in LOCKED if name in pins} if pins else dict(LOCKED)


def pins_source(lock: Path = LOCK) -> str:
    """ssl_music/pins.py as ``--write-pins`` writes it from the lock."""
    pins = locked_versions(lock)
    missing = [name for name, _, _ in CHECKS if name not in pins]
    if missing:
        raise SystemExit(f"{lock}: no pin for {', '.join(missing)}")
    head = PINS_MODULE.read_text().split("LOCKED = {")[0]
    return head + "LOCKED = {\n" + "".join(f'    "{n}": "{pins[n]}",\n' for n, _, _ in CHECKS) + "}\n"


def version_lines() -> list[str]:
    """``ssl-music --version``: the package, the lock's compiled pins and what is installed."""
    pins = pinned()
    lines = [f"ssl_music {_installed('ssl_music')}"]
    for name in ("torch", "torchaudio"):
        lines.append(f"{name} {_installed(name)} installed, {name}=={pins.get(name, '?')} locked")
    return lines


def problems(lock: Path = LOCK) -> list[str]:
    """One line per compiled dependency that fails to load or differs from the lock; [] when all fit."""
    pins = pinned(lock)
    out = []
    for name, against, code in CHECKS:
        have = _installed(name)
        want = pins.get(name)
        try:
            exec(code, {})
        except Exception as exc:  # any failure to load is the finding; the message names the pair
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            pair = f"{name} {have}"
            if against == "torch":
                pair += f" and torch {_installed('torch')}"
            elif against != "Python":
                pair += f" and {against}"
            pins_said = ", ".join(f"{n}=={pins[n]}" for n in (name, against) if n in pins)
            out.append(f"{pair} do not load together: {type(exc).__name__}: {first}"
                       + (f" (requirements.lock pins {pins_said})" if pins_said else ""))
            continue
        if want and have != want and not have.startswith(want + "+"):
            out.append(f"{name} {have} is installed but requirements.lock pins {name}=={want}")
    return out


def main() -> int:
    if sys.argv[1:] == ["--write-pins"]:
        PINS_MODULE.write_text(pins_source())
        print(f"wrote {PINS_MODULE}: " + ", ".join(f"{n}=={v}" for n, v in pinned().items()))
        return 0
    found = problems()
    if found:
        print("ssl_music: compiled dependencies do not fit:", file=sys.stderr)
        for line in found:
            print("  " + line, file=sys.stderr)
        print("Reinstall the locked set: rm -rf .venv && make install", file=sys.stderr)
        return 1
    print("compiled dependencies load: " + ", ".join(f"{n} {_installed(n)}" for n, _, _ in CHECKS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
