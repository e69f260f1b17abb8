"""The wheel works outside the checkout: built from the package's files, installed into a fresh venv in a
temporary folder, run from another folder. The venv gets the dependencies (not ssl_music) from the
checkout's venv by a .pth line naming its site-packages: .pth files inside that folder are not processed,
so the checkout's editable ssl_music cannot leak in (asserted)."""
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # wheel build + install + the tiny demo: ~2 min on the shared 2 cores

REPO = Path(__file__).resolve().parents[1]
DEPENDENCIES = Path(sysconfig.get_paths()["purelib"])  # the checkout venv's site-packages


def _run(cmd, cwd, timeout=300):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "SSL_MUSIC_CONFIG_DIR")}
    env.update(OMP_NUM_THREADS="1", WANDB_MODE="disabled")
    res = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{cmd} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("packaging")
    # build from a copy: an in-tree build would leave build/ in the shared working tree
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for pkg in ("ssl_music", "ssl_music_eval"):
        shutil.copytree(REPO / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = root / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", src, "--no-deps", "--no-build-isolation", "-q", "-w", wheels], root)
    wheel, = wheels.glob("ssl_music-*.whl")
    env = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", env], root)
    _run([sys.executable, "-m", "pip", "--python", env / "bin" / "python", "install", "--no-deps", "-q", wheel], root)
    site, = (env / "lib").glob("python3*/site-packages")
    (site / "dependencies.pth").write_text(f"{DEPENDENCIES}\n")
    work = root / "elsewhere"
    work.mkdir()
    return env, site, work


def test_installed_package_is_the_wheels_not_the_checkouts(venv):
    env, site, work = venv
    out = _run([env / "bin" / "python", "-c", "import ssl_music, ssl_music_eval, torch; "
                "from ssl_music.resources import CONFIG_DIR; from ssl_music.cluster.slurm import TEMPLATE_DIR; "
                "print(ssl_music.__file__, ssl_music_eval.__file__, CONFIG_DIR, TEMPLATE_DIR, sep='\\n')"], work)
    paths = out.split()
    assert all(p.startswith(str(site)) for p in paths), paths
    assert (site / "ssl_music" / "configs" / "pretrain" / "demo.yaml").is_file()
    assert (site / "ssl_music" / "slurm" / "pretrain.sbatch").is_file()
    assert not (site / "ssl_music" / "configs" / "__init__.py").exists()
    # the evaluation code installs under this project's own name; a package named `evaluation` is not ours
    gone = subprocess.run([env / "bin" / "python", "-c", "import evaluation"], cwd=work, capture_output=True)
    assert gone.returncode != 0


def test_version_names_the_lock_and_the_installed_torch(venv):
    env, _, work = venv
    from ssl_music.pins import LOCKED

    out = _run([env / "bin" / "ssl-music", "--version"], work)
    assert out.startswith("ssl_music 0.1.0\n"), out
    assert f"torch=={LOCKED['torch']} locked" in out and f"torchaudio=={LOCKED['torchaudio']} locked" in out


def test_slurm_dry_run_finds_the_packaged_config_by_its_documented_name(venv):
    env, site, work = venv
    out = _run([env / "bin" / "ssl-music", "slurm", "submit", "pretrain", "configs/pretrain/demo.yaml", "--dry-run",
                "monitor.labels_csv=labels.csv"], work)
    assert f"--config {site / 'ssl_music' / 'configs' / 'pretrain' / 'demo.yaml'} " in out, out
    assert f"{env / 'bin' / 'python'} -m ssl_music.cli pretrain" in out
    # a folder of the user's own configs/ wins over the package's
    own = work / "configs" / "pretrain"
    own.mkdir(parents=True)
    (own / "demo.yaml").write_text("name: mine\nmonitor: {every_n_steps: 0}\n")
    try:
        out = _run([env / "bin" / "ssl-music", "slurm", "submit", "pretrain", "configs/pretrain/demo.yaml",
                    "--dry-run"], work)
    finally:
        shutil.rmtree(work / "configs")
    assert "--config configs/pretrain/demo.yaml " in out and "--job-name=ssl-music-pretrain-mine" in out


def test_tiny_demo_runs_from_the_installed_wheel(venv):
    env, _, work = venv
    out = _run([env / "bin" / "ssl-music", "demo", "--scale", "tiny", "--out", work / "demo"], work, timeout=400)
    assert "5/5 done" in out and "linear accuracy" in out
    assert (work / "demo" / "report" / "report.html").stat().st_size > 1000
