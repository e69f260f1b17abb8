"""Where run-to-run variance can come from: the same seed, code, data and machine give bit-identical weights;
every run records what it ran with; fingerprints change exactly when the inputs do."""
import json

import pytest
import torch
from omegaconf import OmegaConf

from ssl_music import provenance
from ssl_music.config import CONFIG_DIR, load_config, save_config
from ssl_music.train import pretrain
from tests.test_train import tiny_overrides


def _weights(run):
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    return {k: v for k, v in state.items()}


def _train(shards, run, *extra):
    cfg = load_config(CONFIG_DIR / "pretrain" / "multitask.yaml",
                      tiny_overrides(shards, run, **{"trainer.max_steps": 4}) + list(extra))
    pretrain(cfg)
    return _weights(run)


def test_same_seed_gives_bit_identical_weights_and_another_seed_does_not(tiny_shards, tmp_path):
    a = _train(tiny_shards, tmp_path / "a")
    b = _train(tiny_shards, tmp_path / "b")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    c = _train(tiny_shards, tmp_path / "c", "trainer.seed=1", "data.seed=1")
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())

    saved = OmegaConf.load(tmp_path / "c" / "config.yaml").provenance
    assert saved.seeds == {"trainer": 1, "data": 1}
    assert saved.code.sources == provenance.training_code()[:16] and saved.lock_sha256 == provenance.lock_hash()
    assert saved.inputs_config == provenance.pretrain_fingerprint(load_config(tmp_path / "c" / "config.yaml"), code=False)
    assert saved.threads.torch_threads == torch.get_num_threads() and "loader_workers" in saved.threads
    assert saved.torch_cpu_capability == torch.backends.cpu.get_cpu_capability() and "cpu" in saved
    done = json.loads((tmp_path / "c" / "DONE").read_text())
    assert done["inputs"] == saved.inputs == provenance.pretrain_fingerprint(load_config(tmp_path / "c" / "config.yaml"))
    # a run's own fingerprint ignores where it writes; the two seed-0 runs ran the same inputs
    assert json.loads((tmp_path / "a" / "DONE").read_text())["inputs"] == \
        json.loads((tmp_path / "b" / "DONE").read_text())["inputs"] != done["inputs"]


def test_the_spectral_backend_reruns_bit_identically(tiny_shards, tmp_path):
    """The demo's backend: its draws and its STFT-domain transforms are as repeatable as the waveform path's."""
    a = _train(tiny_shards, tmp_path / "a", "augment.backend=spectral", "augment.preset=mild_stretch_pitch")
    b = _train(tiny_shards, tmp_path / "b", "augment.backend=spectral", "augment.preset=mild_stretch_pitch")
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


def test_fingerprints_follow_the_inputs(tmp_path):
    base = ["trainer.root_dir=/x"]
    cfg = load_config(CONFIG_DIR / "pretrain" / "real_music.yaml", base)
    fp = provenance.pretrain_fingerprint(cfg)
    save_config(cfg, tmp_path / "c.yaml")
    assert provenance.pretrain_fingerprint(load_config(tmp_path / "c.yaml")) == fp  # survives a save and load
    moved = load_config(CONFIG_DIR / "pretrain" / "real_music.yaml", ["trainer.root_dir=/elsewhere", "trainer.progress_bar=false"])
    assert provenance.pretrain_fingerprint(moved) == fp  # where and how visibly it runs: not an input
    for change in ("trainer.seed=1", "data.seed=1", "trainer.max_steps=10", "augment.preset=none"):
        assert provenance.pretrain_fingerprint(load_config(CONFIG_DIR / "pretrain" / "real_music.yaml", base + [change])) != fp

    suite = tmp_path / "suite.yaml"
    suite.write_text("folds: 5\n")
    ev = provenance.evaluation_fingerprint(fp, suite)
    assert ev == provenance.evaluation_fingerprint(fp, suite)
    assert ev != provenance.evaluation_fingerprint(fp, suite, ["folds=3"])
    assert ev != provenance.evaluation_fingerprint("other", suite)
    suite.write_text("folds: 10\n")
    assert ev != provenance.evaluation_fingerprint(fp, suite)


def test_a_resumed_run_keeps_the_record_of_a_start_with_other_code(tiny_shards, tmp_path, monkeypatch):
    from ssl_music.train import _with_provenance

    cfg = load_config(CONFIG_DIR / "pretrain" / "multitask.yaml", tiny_overrides(tiny_shards, tmp_path / "r"))
    first = _with_provenance(cfg, tmp_path / "r" / "config.yaml")
    save_config(first, tmp_path / "r" / "config.yaml")
    assert "earlier" not in _with_provenance(cfg, tmp_path / "r" / "config.yaml").provenance
    monkeypatch.setattr(provenance, "training_code", lambda: "f" * 64)
    monkeypatch.setattr(provenance, "evaluation_code", lambda: "e" * 64)
    provenance.code_version.cache_clear()
    try:
        again = _with_provenance(cfg, tmp_path / "r" / "config.yaml")
    finally:
        provenance.code_version.cache_clear()
    assert again.provenance.code.sources == "f" * 16
    assert [e["code"]["sources"] for e in again.provenance.earlier] == [first.provenance.code.sources]


def test_code_outside_the_computing_parts_does_not_change_the_fingerprint():
    """The command line, job submission and the catalogue never change a number a run computes."""
    assert set(provenance.NOT_COMPUTING) >= {"cli", "cluster", "catalogue"}
    h = provenance.training_code()
    files = [p for p in provenance.PACKAGE_DIR.rglob("*.py")]
    assert any(p.relative_to(provenance.PACKAGE_DIR).parts[0] == "cli" for p in files)
    import hashlib
    manual = hashlib.sha256()
    provenance._hash_tree(manual, provenance.PACKAGE_DIR, provenance.NOT_COMPUTING)
    assert manual.hexdigest() == h and provenance.evaluation_code() != h
