"""The locked set installs compiled dependencies that load together, and a mismatch is named."""
from ssl_music import deps


def test_installed_compiled_dependencies_load_and_match_the_lock():
    assert deps.problems() == []


def test_lock_pins_torchaudio_to_the_torch_release_it_was_built_for():
    pins = deps.locked_versions()
    assert pins, "requirements.lock is missing or has no pins"
    assert pins["torchaudio"] == pins["torch"], pins  # 2.11.1 beside torch 2.11.0 fails at import


def test_a_mismatched_pair_is_named_with_versions_and_pins(monkeypatch, tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("torch==2.11.0 \\\n    --hash=sha256:00\ntorchaudio==2.11.0 \\\n")
    versions = {"torch": "2.11.0", "torchaudio": "2.11.1", "soundfile": "0.14.0"}
    monkeypatch.setattr(deps, "_installed", lambda name: versions[name])
    monkeypatch.setattr(deps, "CHECKS", [
        ("torchaudio", "torch", "raise OSError('libtorchaudio.so: undefined symbol: "
                                "torch_exception_get_what_without_backtrace')"),
        ("soundfile", "libsndfile", "pass"),
    ])
    found = deps.problems(lock)
    assert len(found) == 1
    assert "torchaudio 2.11.1 and torch 2.11.0 do not load together" in found[0]
    assert "undefined symbol" in found[0]
    assert "torchaudio==2.11.0, torch==2.11.0" in found[0]


def test_a_version_that_loads_but_differs_from_the_lock_is_reported(monkeypatch, tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("soundfile==0.14.0 \\\n")
    monkeypatch.setattr(deps, "_installed", lambda name: "0.13.1")
    monkeypatch.setattr(deps, "CHECKS", [("soundfile", "libsndfile", "pass")])
    assert deps.problems(lock) == ["soundfile 0.13.1 is installed but requirements.lock pins soundfile==0.14.0"]


def test_pins_module_matches_the_lock():
    """ssl_music/pins.py is what a wheel knows of the lock: regenerate it (make lock) when the lock moves."""
    assert deps.PINS_MODULE.read_text() == deps.pins_source(), \
        "ssl_music/pins.py differs from requirements.lock: run python -m ssl_music.deps --write-pins"


def test_pins_source_follows_a_changed_lock(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("soundfile==0.14.0 \\\ntorch==2.12.0 \\\n    --hash=sha256:00\ntorchaudio==2.12.0 \\\n")
    assert '"torch": "2.12.0"' in deps.pins_source(lock)
    assert deps.pins_source(lock) != deps.PINS_MODULE.read_text()


def test_without_a_lock_the_recorded_pins_are_used(tmp_path):
    from ssl_music.pins import LOCKED

    assert deps.pinned(tmp_path / "absent.lock") == LOCKED


def test_version_prints_package_locked_and_installed_torch(capsys):
    from importlib import metadata

    from ssl_music.cli import main

    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert f"ssl_music {metadata.version('ssl_music')}" in out
    for name in ("torch", "torchaudio"):
        assert f"{name} {metadata.version(name)} installed, {name}=={deps.pinned()[name]} locked" in out
