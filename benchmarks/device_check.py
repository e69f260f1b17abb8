"""The GPU check, prepared: every figure that needs a GPU, in one run of at most 8 minutes.

The GPU machine reaches no package index. Its Python 3.12 has torch 2.11, torchaudio 2.11, pytorch-lightning 2.6
and a scientific stack; the locked dependencies it lacks travel as wheels. Here, once per loan:

    .venv/bin/python benchmarks/device_check.py --wheels        # into the git-ignored .whl/ (--dry-run: list)

then one device call that carries `.whl` (a few MiB of the travelling tree's 64 MiB):

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \\
        .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit; \\
    python3 benchmarks/device_check.py --out DIR/device_check.md      # the table, and DIR/device_check.json

with DIR a folder whose files come back from the machine, and a time limit for the whole call of ~10 min (the
steps take at most BUDGET = 480 s, Python start-up and the install come on top); then commit the table as
benchmarks/results/device_check-DATE.md (+ .json). The demo runs through `python -m ssl_music.cli`, since
`make demo` would build a virtual environment, which needs a package index.

Here, on CPU: `python benchmarks/device_check.py --smoke` runs every step at tiny sizes (tests/test_device_check.py
does, so the script cannot rot between device loans).

Steps, each in its own subprocess with its own time limit (a failed or timed-out step is reported and the next
one runs):

  env      versions, GPU, cores; imports every dependency
  augment  batched GPU `stretch_pitch` and `full` chains vs audiomentations on one CPU core, clips/s and
           ratio (goal >= 50x); benchmarks/augment.py's timers
  train    short-chunk ResNet, batch 256, bf16-mixed, `full` chain on the GPU backend, loader workers = cores:
           clips/s, data-wait share, peak GPU memory; benchmarks/train.py's run
  ntxent   NT-Xent under bf16-mixed vs float32 on CUDA: loss and gradient agreement, with and without the
           objective's float32 guard
  knn      k-NN 100k x 512 leave-one-out on the GPU: exact float32 vs bf16 search, recall@k; benchmarks/knn.py
  demo     `python -m ssl_music.cli demo --scale full` (what `make demo DEMO_SCALE=full` runs) in the time left:
           wall time, or how far it got; with --smoke only its config is loaded and validated

    python benchmarks/device_check.py [--smoke] [--out FILE.md] [--budget SECONDS] [--steps env,augment,...]
"""
from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
os.environ.setdefault("WANDB_MODE", "disabled")

STEPS = ("env", "augment", "train", "ntxent", "knn", "demo")
# seconds per step on the GPU machine (the demo takes what is left); smoke runs get SMOKE_LIMIT each
LIMITS = {"env": 60, "augment": 100, "train": 200, "ntxent": 60, "knn": 120, "demo": 0}
SMOKE_LIMIT = 120
BUDGET = 480
DEMO_MIN = 60        # the demo is skipped with less time than this left


def _bench(name: str):
    """benchmarks/<name>.py as a module (benchmarks/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _device(smoke: bool) -> str:
    import torch

    if smoke:
        return "cpu"
    if not torch.cuda.is_available():
        raise RuntimeError("no CUDA device (run with --smoke for the CPU dry run)")
    return "cuda"


def _work(smoke: bool) -> Path:
    d = Path(tempfile.gettempdir()) / ("ssl_music_device_check_smoke" if smoke else "ssl_music_device_check")
    d.mkdir(parents=True, exist_ok=True)
    return d


# ------------------------------------------------------------------------------------------------ steps
# Each returns {"figures": {...}, "rows": [[figure, value, note], ...]}.
def step_env(smoke: bool) -> dict:
    import importlib.metadata as md

    import torch

    figures = {"python": sys.version.split()[0], "cpu_cores": os.cpu_count(), "torch": torch.__version__,
               "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        figures["gpu"] = torch.cuda.get_device_name(0)
        figures["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
        figures["bf16"] = torch.cuda.is_bf16_supported()
    for dist in ("torchaudio", "pytorch-lightning", "numpy", "scipy", "scikit-learn", "audiomentations", "librosa",
                 "soundfile", "webdataset", "omegaconf"):
        try:
            figures[dist] = md.version(dist)
        except md.PackageNotFoundError:
            figures[dist] = None
    import audiomentations  # noqa: F401  every dependency the other steps need, imported once here
    import librosa  # noqa: F401
    import soundfile  # noqa: F401
    import webdataset  # noqa: F401

    import ssl_music  # noqa: F401
    missing = [d for d, v in figures.items() if v is None and d not in ("cuda",)]
    rows = [["device", figures.get("gpu", "cpu"), f"{figures['cpu_cores']} CPU cores, Python {figures['python']}"],
            ["torch / CUDA", f"{figures['torch']} / {figures['cuda']}",
             f"torchaudio {figures['torchaudio']}, lightning {figures['pytorch-lightning']}"]]
    if missing:
        rows.append(["missing packages", ", ".join(missing), "carry them as wheels"])
    return {"figures": figures, "rows": rows}


def step_augment(smoke: bool) -> dict:
    import torch

    aug = _bench("augment")
    device = _device(smoke)
    crop_s, batch, cpu_clips, reps = (0.5, 4, 2, 1) if smoke else (3.0, 256, 32, 3)
    out_len = int(round(crop_s * aug.SR))
    threads = torch.get_num_threads()
    cases = aug._cases()
    figures, rows = {"crop_s": crop_s, "batch": batch, "device": device}, []
    for preset in ("stretch_pitch", "full"):
        chain = cases[f"preset:{preset}"]
        base = aug.bench_cpu(chain, aug._source(chain, cpu_clips, out_len), out_len, 1)
        fast = aug.bench_batched(chain, aug._source(chain, batch, out_len), out_len, reps, device, threads)
        ratio = fast / base
        figures[preset] = {"audiomentations_1core": base, "batched": fast, "ratio": ratio}
        rows.append([f"{preset} chain, batched {device}", f"{fast:.0f} clips/s",
                     f"audiomentations 1 core {base:.1f} clips/s; x{ratio:.0f} (goal >= 50x"
                     f"{', met' if ratio >= 50 else ', NOT met'})"])
    return {"figures": figures, "rows": rows}


def step_train(smoke: bool) -> dict:
    import torch

    tr = _bench("train")
    work = _work(smoke)
    shards = tr.corpus(work / "train_corpus", tracks=6 if smoke else 64, seconds=8.0 if smoke else 30.0)
    args = argparse.Namespace(
        objective="contrastive", steps=3 if smoke else 40, batch_size=4 if smoke else 256,
        crop_s=1.0 if smoke else 3.0, width=8 if smoke else 128, workers=0 if smoke else (os.cpu_count() or 1),
        preset="full", backend="gpu", precision="32" if smoke else "bf16-mixed")
    r = tr.run(shards, "short_chunk_resnet", args)
    mem = f"{r['gpu_mem_gb']:.1f} GiB peak GPU memory" if r["gpu_mem_gb"] is not None else "no GPU"
    return {"figures": {**r, **{k: v for k, v in vars(args).items()}},
            "rows": [[f"short_chunk_resnet b{args.batch_size} {args.precision}, full chain on the gpu backend",
                      f"{r['clips_per_s']:.0f} clips/s",
                      f"data-wait {100 * r['data_wait']:.0f} %, augmentation {100 * r['augment']:.0f} %, {mem}, {args.workers} loader workers, "
                      f"{args.steps} steps in {r['wall_s']:.1f} s"]]}


def step_ntxent(smoke: bool) -> dict:
    import torch

    from ssl_music.objectives.contrastive import _nt_xent_fp32, nt_xent

    device = _device(smoke)
    b, d_in, d = (8, 16, 8) if smoke else (256, 512, 128)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, 2, d_in, generator=g).to(device)
    x[:, 1] += x[:, 0]  # the two views of a track are correlated, as after training
    proj = torch.nn.Linear(d_in, d).to(device)

    def loss_and_grad(mixed: bool, guarded: bool):
        proj.zero_grad()
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=mixed):
            z = proj(x)
            loss = nt_xent(z, 0.1) if guarded else _nt_xent_fp32(z, 0.1)
        loss.backward()
        return float(loss), proj.weight.grad.flatten().clone()

    ref_loss, ref_grad = loss_and_grad(False, True)
    figures, rows = {"batch": b, "dim": d, "device": device, "fp32_loss": ref_loss}, []
    for name, guarded in (("guarded", True), ("unguarded", False)):
        loss, grad = loss_and_grad(True, guarded)
        rel = abs(loss - ref_loss) / abs(ref_loss)
        cos = float(torch.nn.functional.cosine_similarity(grad, ref_grad, dim=0))
        figures[name] = {"loss": loss, "rel_loss_diff": rel, "grad_cosine": cos}
        what = "objective as trained (float32 guard)" if guarded else "similarities in bf16 (no guard)"
        rows.append([f"NT-Xent bf16-mixed vs fp32, {what}", f"rel. loss diff {rel:.1e}", f"grad cosine {cos:.5f}"])
    return {"figures": figures, "rows": rows}


def step_knn(smoke: bool) -> dict:
    knn = _bench("knn")
    device = _device(smoke)
    n, dim = (3000, 64) if smoke else (100_000, 512)
    r = knn.run(n, dim, device=device, subset=0)
    rec = ", ".join(f"@{k} {v:.4f}" for k, v in r["bf16"]["recall"].items())
    return {"figures": r,
            "rows": [[f"k-NN {n} x {dim} leave-one-out, exact float32 ({device})", f"{r['exact']['seconds']:.2f} s",
                      "k in {1, 5, 20}, one search"],
                     [f"k-NN {n} x {dim} leave-one-out, bf16 + float32 re-score ({device})",
                      f"{r['bf16']['seconds']:.2f} s", f"x{r['speedup']:.1f} vs exact; recall {rec}"]]}


def step_demo(smoke: bool) -> dict:
    if smoke:
        from ssl_music.cli.demo import SCALES
        from ssl_music.config import CONFIG_DIR, load_config

        cfg = load_config(CONFIG_DIR / "pretrain" / "demo.yaml",
                          ["data.shards=unused", "trainer.root_dir=unused", "monitor.labels_csv=unused.csv"]
                          + SCALES["full"]["overrides"])
        return {"figures": {"validated": True, "max_steps": int(cfg.trainer.max_steps)},
                "rows": [["demo --scale full", "config valid", "smoke: not run"]]}
    out = _work(smoke) / "demo_full"
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ssl_music.cli", "demo", "--out", str(out), "--scale", "full"],
                   check=True, cwd=ROOT)
    wall = time.perf_counter() - t
    return {"figures": {"wall_s": wall}, "rows": [["make demo DEMO_SCALE=full", f"{wall / 60:.1f} min", "finished"]]}


# ------------------------------------------------------------------------------------------------ wheels
# The exact versions requirements.lock pins, for CPython 3.12 manylinux x86_64, of every package that is neither
# torch's family (torch, torchaudio, pytorch-lightning, triton, nvidia-*, cuda-*) nor in the GPU image (IMAGE),
# so that what travels stays small; wandb and the packages only it needs stay behind unless --with-wandb (the
# checks log to CSV).
TARGET_ENV = {"python_version": "3.12", "python_full_version": "3.12.3", "implementation_name": "cpython",
              "platform_python_implementation": "CPython", "sys_platform": "linux", "platform_system": "Linux",
              "platform_machine": "x86_64", "os_name": "posix", "extra": ""}
PLATFORMS = ["manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_24_x86_64", "manylinux_2_27_x86_64",
             "manylinux_2_28_x86_64", "manylinux_2_31_x86_64", "manylinux_2_34_x86_64", "manylinux_2_35_x86_64",
             "manylinux1_x86_64", "manylinux_2_5_x86_64"]
TORCH_FAMILY = re.compile(r"^(torch|torchaudio|pytorch-lightning|triton|nvidia-.*|cuda-.*)$")
# Python packages of the GPU machine's image (device notes, read 2026-11-17), as far as the lock names them.
IMAGE = set("""
aiohappyeyeballs aiohttp aiosignal anyio attrs certifi charset-normalizer click cloudpickle colorama contourpy
cycler filelock fonttools frozenlist fsspec h11 httpcore httpx idna iniconfig jinja2 joblib kiwisolver lazy-loader
lightning-utilities llvmlite markupsafe matplotlib mpmath msgpack multidict narwhals networkx numba numpy packaging
pillow pluggy propcache protobuf pygments pyparsing pytest pytest-timeout python-dateutil pyyaml requests
safetensors scikit-learn scipy setuptools six sympy threadpoolctl torchmetrics tqdm typing-extensions urllib3
xxhash yarl
""".split())
WANDB_ONLY = re.compile(r"^(wandb|cwevals|distro|pydantic|pydantic-core|annotated-types|typing-inspection|"
                        r"googleapis-common-protos|opentelemetry-.*|sniffio)$")


def locked(lock: Path) -> list[tuple[str, str]]:
    """(name, version) of every lock entry whose marker holds on the GPU machine."""
    from packaging.markers import Marker

    out = []
    for line in lock.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$", line)
        if m and (not m.group(3) or Marker(m.group(3)).evaluate(TARGET_ENV)):
            out.append((m.group(1).lower().replace("_", "-"), m.group(2)))
    return out


def wanted(lock: Path, with_wandb: bool = False) -> list[str]:
    return [f"{n}=={v}" for n, v in locked(lock)
            if not TORCH_FAMILY.match(n) and n not in IMAGE and (with_wandb or not WANDB_ONLY.match(n))]


def download_wheels(dest: Path, with_wandb: bool = False, dry_run: bool = False) -> list[str]:
    """pip-download the wheels the GPU machine lacks (module doc) into ``dest``; returns the requirements."""
    reqs = wanted(ROOT / "requirements.lock", with_wandb)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
           "--implementation", "cp", "-d", str(dest)] + [a for p in PLATFORMS for a in ("--platform", p)] + reqs
    print(f"{len(reqs)} packages: {' '.join(reqs)}", flush=True)
    if dry_run:
        print(" ".join(cmd))
        return reqs
    subprocess.run(cmd, check=True)
    size = sum(f.stat().st_size for f in dest.glob("*.whl"))
    print(f"{dest}: {size / 2**20:.1f} MiB of wheels (the travelling tree's limit is 64 MiB)")
    return reqs


# ------------------------------------------------------------------------------------------ orchestration
def _run_step(name: str, smoke: bool, limit: float, log_dir: Path) -> dict:
    """One step in a subprocess (own session, so a timeout also ends its loader workers)."""
    result = log_dir / f"{name}.json"
    log = log_dir / f"{name}.log"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--step", name, "--result", str(result)]
    cmd += ["--smoke"] if smoke else []
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               PYTHONUNBUFFERED="1")
    t = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, env=env, start_new_session=True)
        try:
            rc = proc.wait(timeout=max(1.0, limit))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc = None
    seconds = time.perf_counter() - t
    text = log.read_text(errors="replace")
    tail = [ln for ln in text.splitlines() if ln.strip()][-3:]
    if rc is None:
        progress = [ln for ln in text.splitlines() if ln.startswith("[demo")][-1:]  # how far the demo got
        note = f"timed out after {seconds:.0f} s" + (f"; reached: {progress[0]}" if progress else "")
        return {"status": f"timed out after {seconds:.0f} s", "seconds": seconds, "rows": [[name, "—", note]],
                "log_tail": tail}
    if rc != 0 or not result.is_file():
        return {"status": f"failed (exit {rc})", "seconds": seconds, "log_tail": tail,
                "rows": [[name, "—", f"FAILED (exit {rc}): {tail[-1] if tail else 'no output'}"]]}
    out = json.loads(result.read_text())
    return {"status": "ok", "seconds": seconds, **out}


def render(report: dict) -> str:
    lines = [f"# Device check {report['date']}{' (smoke: tiny sizes on CPU)' if report['smoke'] else ''}", "",
             f"`{report['command']}`: {report['total_s']:.0f} s of a {report['budget_s']:.0f} s budget.", "",
             "| step | figure | value | note |", "|---|---|---|---|"]
    for name, s in report["steps"].items():
        for fig, value, note in s.get("rows", []):
            lines.append(f"| {name} ({s['status']}, {s['seconds']:.0f} s) | {fig} | {value} | {note} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--smoke", action="store_true", help="every step at tiny sizes on CPU")
    ap.add_argument("--out", help="markdown table (JSON beside it); default benchmarks/results/device_check-DATE.md")
    ap.add_argument("--budget", type=float, help=f"seconds for all steps (default {BUDGET}; smoke: none)")
    ap.add_argument("--steps", default=",".join(STEPS), help="comma-separated subset, in this order")
    ap.add_argument("--wheels", metavar="DEST", nargs="?", const=str(ROOT / ".whl"),
                    help="download the wheels the GPU machine lacks into DEST (default .whl) and stop")
    ap.add_argument("--with-wandb", action="store_true", help="with --wheels: wandb and its needs too")
    ap.add_argument("--dry-run", action="store_true", help="with --wheels: print the pip command only")
    ap.add_argument("--step", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.wheels:
        download_wheels(Path(args.wheels), args.with_wandb, args.dry_run)
        return
    if not args.smoke and not _cuda():
        print("device_check: no CUDA device here; it is meant for the GPU machine (see --help). "
              "`--smoke` runs every step at tiny sizes on CPU.")
        return
    if args.step:  # child: one step, its figures as JSON
        out = globals()[f"step_{args.step}"](args.smoke)
        Path(args.result).write_text(json.dumps(out, indent=1, default=str))
        return

    date = _dt.datetime.now().strftime("%Y-%m-%d")
    out_md = Path(args.out or HERE / "results" / f"device_check-{date}{'-smoke' if args.smoke else ''}.md")
    out_md.parent.mkdir(parents=True, exist_ok=True)
    budget = args.budget or (len(STEPS) * SMOKE_LIMIT if args.smoke else BUDGET)
    start = time.perf_counter()
    report = {"date": date, "smoke": args.smoke, "command": " ".join(["benchmarks/device_check.py"] + sys.argv[1:]),
              "budget_s": budget, "steps": {}}
    with tempfile.TemporaryDirectory(prefix="device_check_") as logs:
        for name in [s for s in STEPS if s in args.steps.split(",")]:
            left = budget - (time.perf_counter() - start)
            limit = min(SMOKE_LIMIT if args.smoke else (LIMITS[name] or left), left)
            if limit < (DEMO_MIN if name == "demo" and not args.smoke else 5):
                report["steps"][name] = {"status": "skipped", "seconds": 0.0,
                                         "rows": [[name, "—", f"skipped: {left:.0f} s of the budget left"]]}
                continue
            print(f"== {name} (limit {limit:.0f} s)", flush=True)
            report["steps"][name] = s = _run_step(name, args.smoke, limit, Path(logs))
            for fig, value, note in s.get("rows", []):
                print(f"   {fig}: {value}  ({note})", flush=True)
            if s["status"] != "ok":
                print("   " + "\n   ".join(s.get("log_tail", [])), flush=True)
    report["total_s"] = time.perf_counter() - start
    out_md.write_text(render(report))
    out_md.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str))
    print("\n" + render(report), flush=True)
    print(f"written: {out_md} and {out_md.with_suffix('.json')}")


if __name__ == "__main__":
    main()
