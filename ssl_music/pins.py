"""The compiled pins of requirements.lock, inside the package: a wheel carries no lock file, and
``ssl-music --version`` and ``python -m ssl_music.deps`` still say what the project was locked against.
Written by ``python -m ssl_music.deps --write-pins`` (``make lock`` runs it); tests/test_deps.py fails when
these differ from requirements.lock."""
LOCKED = {
    "torch": "2.11.0",
    "torchaudio": "2.11.0",
    "soundfile": "0.14.0",
}
