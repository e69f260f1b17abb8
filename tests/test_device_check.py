"""benchmarks/device_check.py: the GPU check runs end to end at tiny sizes on CPU, so it cannot rot between loans."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "device_check.py"


def _module():
    spec = importlib.util.spec_from_file_location("device_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_smoke_runs_every_step_and_writes_the_table(tmp_path):
    out = tmp_path / "check.md"
    r = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--out", str(out)], capture_output=True, text=True,
                       timeout=400, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    report = json.loads(out.with_suffix(".json").read_text())
    dc = _module()
    assert list(report["steps"]) == list(dc.STEPS)
    assert {n: s["status"] for n, s in report["steps"].items()} == {n: "ok" for n in dc.STEPS}, r.stdout[-3000:]
    steps = report["steps"]
    assert steps["augment"]["figures"]["full"]["batched"] > 0
    assert 0 <= steps["train"]["figures"]["data_wait"] <= 1
    assert steps["ntxent"]["figures"]["guarded"]["grad_cosine"] > 0.99
    assert min(steps["knn"]["figures"]["bf16"]["recall"].values()) >= 0.99
    table = out.read_text()
    for name in dc.STEPS:
        assert f"| {name} (ok," in table


def test_a_failed_or_slow_step_is_reported_not_fatal(tmp_path):
    dc = _module()
    failed = dc._run_step("nosuch", True, 60, tmp_path)
    assert failed["status"] == "failed (exit 1)" and "FAILED" in failed["rows"][0][2]
    slow = dc._run_step("train", True, 1, tmp_path)
    assert slow["status"].startswith("timed out after")


def test_wheels_are_the_locked_packages_the_gpu_image_lacks():
    dc = _module()
    reqs = dc.wanted(ROOT / "requirements.lock")
    names = {r.split("==")[0] for r in reqs}
    assert {"audiomentations", "webdataset", "soundfile", "librosa", "omegaconf"} <= names
    assert not names & {"torch", "torchaudio", "pytorch-lightning", "triton", "numpy", "scipy", "wandb"}
    assert not any(n.startswith(("nvidia-", "cuda-")) for n in names)
    assert all("==" in r for r in reqs)  # exact locked versions
    assert "wandb" in {r.split("==")[0] for r in dc.wanted(ROOT / "requirements.lock", with_wandb=True)}
