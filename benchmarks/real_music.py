"""Real-music benchmark (issue #13): shards from a folder of real music, pretraining of a named recipe for a
fixed step budget, the dev-set suite (configs/eval/devset.yaml: 3 seeds x 5 folds, the random-init twin and
MFCC+chroma on the same splits, the tempo head against librosa), then one table with each stage's wall time.

    python benchmarks/real_music.py                                   # Debian game-music packages, demo recipe
    python benchmarks/real_music.py --config configs/pretrain/real_music.yaml --steps 1500 --out runs/real
    python benchmarks/real_music.py --audio /data/my_music --shards runs/real/shards
    python benchmarks/real_music.py --config configs/pretrain/real_music.yaml --seeds 3   # 3 pretraining seeds
    python benchmarks/real_music.py --table runs/sweeps/real_music_seeds/shipped-seed*/   # tables of finished runs

Default audio: the files of the Debian packages asc-music drascula-music hyperrogue-music planetblupi-music-ogg
singularity-music warzone2100-music, when installed (never in CI). Every stage is a plain `ssl-music` command
run in its own process, exactly as a user would run it. With ``--seeds N`` the recipe is pretrained once per
seed (``trainer.seed`` = ``data.seed`` = s, in OUT/run-seed<s>) and the table gives each figure's mean over
seeds with a t interval, the per-seed values, and the paired difference to the random-init twin (one init per
seed). A model with named subspaces (configs/pretrain/subspaces.yaml) also gets each subspace's probes, 10-NN and
locality and the weighted-retrieval table, over seeds likewise. Finished stages are reused only when the inputs they recorded (config after overrides, steps, seed,
suite, code version: ssl_music.provenance) equal this invocation's; a stale run moves to <run>/stale/<time>/.
Shards are reused when their manifest is complete.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from ssl_music.cluster.runs import run_name, split_run_name  # noqa: E402
from ssl_music_eval.seeds import arm_summary, fmt_difference, fmt_summary, paired_difference  # noqa: E402
from ssl_music.cluster.runs import retire, stale_reason  # noqa: E402
from ssl_music.cluster.sweep import record_time  # noqa: E402
from ssl_music.config import load_config  # noqa: E402
from ssl_music.provenance import evaluation_fingerprint, pretrain_fingerprint  # noqa: E402

PACKAGES = ("asc-music", "drascula-music", "hyperrogue-music", "planetblupi-music-ogg", "singularity-music",
            "warzone2100-music")
TASKS = ("style", "instrument", "key")
SETS = ("model", "random_init", "mfcc_chroma")


def package_audio() -> list[str]:
    """Audio files the Debian music packages installed (dpkg -L), in a stable order."""
    from ssl_music.data.files import AUDIO_EXTENSIONS

    files = []
    for pkg in PACKAGES:
        out = subprocess.run(["dpkg", "-L", pkg], capture_output=True, text=True)
        files += [line for line in out.stdout.splitlines()
                  if Path(line).suffix.lower() in AUDIO_EXTENSIONS and Path(line).is_file()]
    return sorted(set(files))


def _cli(args: list[str], log: Path) -> float:
    cmd = [sys.executable, "-m", "ssl_music.cli", *args]
    print(f"$ {shlex.join(cmd)}   (log: {log})", flush=True)
    t0 = time.perf_counter()
    with open(log, "a") as fh:
        rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO).returncode
    if rc:
        sys.exit(f"failed (exit {rc}): see {log}")
    return time.perf_counter() - t0


def build(a, out: Path, run: Path) -> Path:
    shards = Path(a.shards) if a.shards else out / "shards"
    manifest = shards / "manifest.json"
    if manifest.is_file() and json.loads(manifest.read_text()).get("complete"):
        print(f"shards: reusing {shards}")
        return shards
    inputs = a.audio
    if not inputs:
        files = package_audio()
        if not files:
            sys.exit("no --audio given and none of the Debian music packages is installed: "
                     f"apt-get install {' '.join(PACKAGES)}")
        out.mkdir(parents=True, exist_ok=True)
        listing = out / "real_music.csv"
        listing.write_text("path\n" + "".join(f"{f}\n" for f in files))
        inputs = [str(listing)]
    record_time(run, "shards", _cli(["shards", "build", *inputs, "--out", str(shards), "--workers", str(a.workers)],
                                    out / "shards.log"))
    return shards


def pretrain_overrides(a, shards: Path, run: Path, seed: int) -> list[str]:
    return [f"data.shards={shards}", f"trainer.root_dir={run}", f"trainer.max_steps={a.steps}",
            "trainer.progress_bar=false", "monitor.every_n_steps=0", f"trainer.seed={seed}", f"data.seed={seed}",
            *a.override]


def stage_inputs(a, shards: Path, run: Path, seed: int) -> tuple[str, str]:
    """The (pretraining, evaluation) fingerprints this invocation's stages record for ``run``."""
    pre = pretrain_fingerprint(load_config(a.config, pretrain_overrides(a, shards, run, seed)))
    return pre, evaluation_fingerprint(pre, a.suite, [], [a.devset] if a.devset else [])


def pretrain(a, out: Path, shards: Path, run: Path, seed: int) -> None:
    reason = stale_reason(run, stage_inputs(a, shards, run, seed))
    if reason:
        print(f"{run}: not reused, {reason}; moved to {retire(run, reason)}")
    if (run / "DONE").is_file():
        print(f"pretraining: reusing {run} (same inputs)")
    else:
        args = ["pretrain", "--config", a.config, *pretrain_overrides(a, shards, run, seed)]
        record_time(run, "pretrain", _cli(args, out / f"pretrain-{run.name}.log"))


def evaluate(a, out: Path, run: Path) -> None:
    if not (run / "results.json").is_file():
        args = ["evaluate", "--checkpoint", str(run / "checkpoints" / "last.ckpt"), "--suite", a.suite,
                "--out", str(run), "--quiet", *(["--data", a.devset] if a.devset else [])]
        record_time(run, "evaluate", _cli(args, out / f"evaluate-{run.name}.log"))


# ---------------------------------------------------------------------------------------------- table
def _mean(entry: dict | None) -> float | None:
    return None if not entry else entry["accuracy"]["mean"]


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def _by_feature_set(ds: dict) -> list[tuple[str, str, dict]]:
    """(measure, suffix, {feature set: value}) of every probe, 10-NN and locality figure of one dataset's
    results: the model, its baselines and, for a model with named subspaces, each ``model/<name>``."""
    out = []
    for task in TASKS:
        t = ds["tasks"].get(task)
        if not t:
            continue
        for probe in ("linear", "mlp"):
            out.append((f"{task} {probe}", "", {fs: _mean(v) for fs, v in t["probes"].get(probe, {}).items()}))
        out.append((f"{task} 10-NN", "", {fs: v.get("10") for fs, v in t.get("knn", {}).items()}))
    loc = ds.get("locality", {})
    for attr, chance in loc.get("chance", {}).items():
        out.append((f"{attr} locality", f" (chance {chance:.3f})",
                    {fs: scores.get(attr) for fs, scores in loc["scores"].items()}))
    return out


def raw_rows(results: dict) -> list[tuple]:
    """(measure, model, random init, MFCC+chroma, librosa) for every dev-set figure (None: not measured)."""
    ds = next(iter(results["datasets"].values()))
    out = [(name + suffix, *(vals.get(s) for s in SETS), None) for name, suffix, vals in _by_feature_set(ds)]
    for task in ("tempo", "tempo_drums"):
        tempo = ds["tasks"].get(task, {}).get("tempo", {})
        for m in ("acc1", "acc2"):
            out.append((f"{task} {m.capitalize()} (n={tempo.get('n', 0)})", tempo.get("model", {}).get(m), None,
                        None, tempo.get("librosa", {}).get(m)))
    return out


def rows(results: dict) -> list[tuple[str, ...]]:
    """(measure, model, random init, MFCC+chroma, librosa, Δ vs random init) for every dev-set figure."""
    return [(name, *map(_fmt, vals), _fmt(vals[0] - vals[1]) if None not in vals[:2] else "–")
            for name, *vals in raw_rows(results)]


def seed_rows(per_seed: dict[int, dict]) -> list[tuple[str, ...]]:
    """Over pretraining seeds ({seed: results}): (measure, model, random init, MFCC+chroma, librosa,
    model − random init paired, verdict, model per seed). Means with a t interval over seeds."""
    table: dict[str, list[dict]] = {}
    for seed, res in sorted(per_seed.items()):
        for name, *vals in raw_rows(res):
            cols = table.setdefault(name, [{}, {}, {}, {}])
            for col, v in zip(cols, vals):
                if v is not None:
                    col[seed] = v
    out = []
    for name, (model, rand, mfcc, lib) in table.items():
        diff = paired_difference(model, rand) if rand else None
        out.append((name, fmt_summary(arm_summary(model)), fmt_summary(arm_summary(rand)) if rand else "–",
                    _fmt(arm_summary(mfcc)["mean"]) if mfcc else "–", _fmt(arm_summary(lib)["mean"]) if lib else "–",
                    fmt_difference(diff) if diff else "–", diff["verdict"] if diff else "–",
                    " ".join(f"{v:.3f}" for _, v in sorted(model.items()))))
    return out


def subspace_raw_rows(results: dict) -> list[tuple[str, float | None]]:
    """(measure, value) for a model with named subspaces (issue #24): each subspace's probes, 10-NN and
    locality (feature sets ``model/<name>``), then the weighted-retrieval table (locality@k of each attribute
    with the first subspace at 1 and one other at w). Empty for a model without subspaces."""
    from ssl_music_eval.subspaces import PREFIX

    ds = next(iter(results["datasets"].values()))
    out = [(f"{name} [{fs[len(PREFIX):]}]{suffix}", v) for name, suffix, vals in _by_feature_set(ds)
           for fs, v in vals.items() if fs.startswith(PREFIX)]
    loc = ds.get("locality", {})
    w = loc.get("weighted")
    for part, attrs in (w or {}).get("parts", {}).items():
        for attr, cells in attrs.items():
            out += [(f"{attr} locality@{w['k']}: {w['base']} 1 + {part} {x:g}", c.get("mean"))
                    for x, c in zip(w["weights"], cells)]
    return out


def subspace_rows(per_seed: dict[int, dict]) -> list[tuple[str, str, str]]:
    """(measure, mean [t interval over seeds], per seed) of every subspace figure."""
    table: dict[str, dict[int, float]] = {}
    for seed, res in sorted(per_seed.items()):
        for name, v in subspace_raw_rows(res):
            if v is not None:
                table.setdefault(name, {})[seed] = v
    return [(name, fmt_summary(arm_summary(vals)), " ".join(f"{v:.3f}" for _, v in sorted(vals.items())))
            for name, vals in table.items()]


def _print(title: str, head: tuple, body: list) -> None:
    table = [head, *body]
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    print(title)
    for i, r in enumerate(table):
        print("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def print_seed_table(runs: list[Path]) -> None:
    """One table per arm over its seeds (runs named <arm>-seed<N>, or any runs of one recipe)."""
    arms: dict[str, dict[int, dict]] = {}
    for i, run in enumerate(runs):
        arm, seed = split_run_name(run.name)
        results = json.loads((run / "results.json").read_text())
        arms.setdefault(arm, {})[i if seed is None else seed] = results
    for arm, per_seed in arms.items():
        if len(per_seed) < 2:
            continue
        head = ("measure", "model", "random init", "MFCC+chroma", "librosa", "model − random (paired)", "verdict",
                "model per seed")
        _print(f"\n## {arm}: {len(per_seed)} pretraining seeds ({', '.join(map(str, sorted(per_seed)))}); mean "
               "[95 % t interval over seeds]", head, seed_rows(per_seed))
        parts = subspace_rows(per_seed)
        if parts:
            _print(f"\n## {arm}: named subspaces (per subspace, then weighted retrieval); mean [95 % t interval over "
                   "seeds]", ("measure", "model", "model per seed"), parts)


def print_table(run: Path) -> None:
    results = json.loads((run / "results.json").read_text())
    head = ("measure", "model", "random init", "MFCC+chroma", "librosa", "Δ vs random")
    seed = (results.get("provenance") or {}).get("seeds", {}).get("trainer")
    _print(f"\n## {run}  (checkpoint {results.get('checkpoint')}; one pretraining run, seed "
           f"{'?' if seed is None else seed}: no run-to-run interval)", head, rows(results))
    parts = subspace_rows({0: results})
    if parts:
        _print("\nnamed subspaces (per subspace, then weighted retrieval; one run)", ("measure", "model"),
               [(name, per) for name, _, per in parts])
    saved = run / "timings.json"   # written by record_time: this script's stages, or a local sweep's
    if saved.is_file():
        print("wall time: " + ", ".join(
            f"{k} {v['seconds'] / 60:.1f} min" + (f" (peak {v['peak_rss_mb']} MB)" if "peak_rss_mb" in v else "")
            for k, v in json.loads(saved.read_text()).items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--audio", nargs="*", default=[], help="folders / CSV manifests of real music (default: the "
                    "Debian game-music packages)")
    ap.add_argument("--shards", default="", help="shard folder to build into or reuse (default: OUT/shards)")
    ap.add_argument("--config", default="configs/pretrain/demo.yaml", help="the recipe to pretrain")
    ap.add_argument("--steps", type=int, default=800,
                    help="pretraining budget in optimiser steps (0: build the shards only)")
    ap.add_argument("--seeds", default="1", help="pretraining seeds: a count N (seeds 0..N-1) or a list '0,3,5'")
    ap.add_argument("--suite", default="configs/eval/devset.yaml")
    ap.add_argument("--devset", default="", help="dev-set labels.csv, when not at ../shared/devset")
    ap.add_argument("--workers", type=int, default=2, help="shard-building processes")
    ap.add_argument("--out", default="runs/real_music")
    ap.add_argument("--table", nargs="*", default=None, help="only print the tables of finished run folders")
    ap.add_argument("override", nargs="*", help="extra pretraining overrides key=value")
    a = ap.parse_args()
    if a.table is not None:
        for run in a.table:
            print_table(Path(run))
        print_seed_table([Path(r) for r in a.table])
        return
    seeds = parse_seeds(a.seeds)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    shards = build(a, out, out)
    if a.steps == 0:
        print(f"shards ready in {shards}")
        return
    runs = [out / run_name("run", seed) for seed in seeds]
    for seed, run in zip(seeds, runs):   # seed by seed: a stopped benchmark still has whole runs
        run.mkdir(parents=True, exist_ok=True)
        pretrain(a, out, shards, run, seed)
        evaluate(a, out, run)
        print_table(run)
    print_seed_table(runs)


def parse_seeds(text: str) -> list[int]:
    try:
        items = [int(t) for t in str(text).split(",") if t.strip()]
    except ValueError:
        sys.exit(f"--seeds: give a count (3) or a comma list of seeds (0,3,5), got '{text}'")
    if len(items) == 1:
        if items[0] < 1:
            sys.exit(f"--seeds: a count must be >= 1, got {items[0]}")
        return list(range(items[0]))
    if len(set(items)) != len(items) or min(items) < 0:
        sys.exit(f"--seeds: seeds must be distinct and >= 0, got '{text}'")
    return items


if __name__ == "__main__":
    main()
