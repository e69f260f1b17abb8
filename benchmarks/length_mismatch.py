"""How far real files decode short of the length their header declares, by format.

Input: a folder (recursive) or a CSV manifest with a `path` column, as `ssl-music shards build` takes.
Each file is decoded whole the way the shard builder does (`audio.decode_file`) and sorted into:
exact (decoded == declared), noted (a lossy file short by no more than `audio.length_tolerance`,
kept with a "length_mismatch" note), cut (short by more, or another sign of truncation: skipped)
and other errors.
For the short ones it prints the shortfall in frames, ms and % of the declared length, which is what
the tolerance was chosen from. Decoding is all it times.

    python benchmarks/length_mismatch.py /usr/share/games --workers 2
"""
import argparse
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import soundfile as sf  # noqa: E402

from ssl_music.data.audio import decode_file, length_tolerance  # noqa: E402
from ssl_music.data.shards import list_inputs  # noqa: E402
from ssl_music.errors import AudioError  # noqa: E402


def probe(path: str) -> dict:
    out = {"path": path, "format": Path(path).suffix.lower().lstrip(".")}
    try:
        info = sf.info(path)
        out.update(format=info.subtype, sr=info.samplerate, declared=info.frames,
                   tolerance=length_tolerance(info.frames, info.samplerate, info.subtype))
    except Exception:  # noqa: BLE001 -- decode_file below says what is wrong
        pass
    notes: list[dict] = []
    try:
        x, _ = decode_file(path, notes=notes)
    except AudioError as exc:
        out["error"] = str(exc).removeprefix(path + ": ")
        out["kind"] = "cut" if out["error"].startswith("truncated") else "error"
        return out
    out["decoded"] = x.shape[-1]
    out["kind"] = "noted" if notes else "exact"
    return out


def _stats(values: list[float]) -> str:
    v = sorted(values)
    return f"min {v[0]:.4g}, median {v[len(v) // 2]:.4g}, max {v[-1]:.4g}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("inputs", nargs="+", help="folder(s) and/or CSV manifest(s)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--list", action="store_true", help="one line per short, cut or failing file")
    a = ap.parse_args()
    paths = [it["path"] for it in list_inputs(a.inputs)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(a.workers) as pool:
        res = list(pool.map(probe, paths, chunksize=4))
    wall = time.perf_counter() - t0
    by_fmt: dict[str, list[dict]] = defaultdict(list)
    for r in res:
        by_fmt[r["format"]].append(r)
    print(f"{len(res)} files decoded in {wall:.1f} s with {a.workers} worker(s)")
    for fmt, rs in sorted(by_fmt.items()):
        count = {k: sum(r["kind"] == k for r in rs) for k in ("exact", "noted", "cut", "error")}
        print(f"{fmt}: {len(rs)} files, " + ", ".join(f"{v} {k}" for k, v in count.items()))
        short = [r for r in rs if r["kind"] == "noted"]
        if short:
            frames = [r["declared"] - r["decoded"] for r in short]
            print(f"  short by (frames): {_stats(frames)}")
            print(f"  short by (ms):     {_stats([1000 * f / r['sr'] for f, r in zip(frames, short)])}")
            print(f"  short by (% of declared): {_stats([100 * f / r['declared'] for f, r in zip(frames, short)])}")
            print(f"  largest share of the tolerance used: "
                  f"{max(f / r['tolerance'] for f, r in zip(frames, short)):.1%}")
    if a.list:
        for r in res:
            if r["kind"] == "noted":
                f = r["declared"] - r["decoded"]
                print(f"noted  {r['path']}: {r['format']} {r['sr']} Hz, declared {r['declared']}, decoded "
                      f"{r['decoded']}, short {f} ({1000 * f / r['sr']:.1f} ms, {100 * f / r['declared']:.3f} %)")
            elif r["kind"] != "exact":
                print(f"{r['kind']:6s} {r['path']}: {r['error']}")


if __name__ == "__main__":
    main()
