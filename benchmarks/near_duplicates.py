"""Near-duplicate retrieval (issue #35): does a copy of an indexed track find its own recording?

For ``--tracks`` tracks of an index (drawn with ``--seed``), a ``--excerpt-s`` excerpt (starting on the crop
grid) is turned into the copies a catalogue meets, each queried as an audio file would be (embedded with the
index's checkpoint, searched over every crop, each track by its best crop):

- ``control``: the excerpt at the index's rate, as the index read it (the pipeline itself: should be 100 %)
- ``ogg ±dB @RATE``: the excerpt at its file's rate, gained by -6, -3 and +3 dB (clipped at full scale),
  resampled to ``--rate`` and re-encoded as Ogg Vorbis through soundfile, then decoded

and prints, per kind of copy, the top-1 own-recording rate. Then gain alone: the fraction of ±6 dB copies
of each excerpt whose embedding is closer (cosine) to the original excerpt's than to any crop of any other
indexed track, and the spread of similarities between different tracks of the index (how much room there
is between "the same" and "another").

    python benchmarks/near_duplicates.py my_index [--checkpoint CKPT] [--tracks 40] [--excerpt-s 15]
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ssl_music.catalogue.blocks import read_excerpt  # noqa: E402
from ssl_music.catalogue.search import Query, check_model, search  # noqa: E402
from ssl_music.catalogue.store import open_index  # noqa: E402
from ssl_music.data.audio import resample  # noqa: E402

GAINS_DB = (-6.0, -3.0, 3.0)


def ogg_copy(x: np.ndarray, sr: int, gain_db: float, rate: int) -> np.ndarray:
    """``x`` (mono at ``sr``) gained, clipped, resampled to ``rate``, through Ogg Vorbis and back."""
    y = resample(np.clip(x * 10 ** (gain_db / 20), -1.0, 1.0), sr, rate)
    buf = io.BytesIO()
    sf.write(buf, y, rate, format="OGG", subtype="VORBIS")
    buf.seek(0)
    z, _ = sf.read(buf, dtype="float32")
    return z


def _own_top1(cat, model, x: np.ndarray, sr: int, own: str) -> tuple[bool, np.ndarray]:
    vec = model.embed(x, sr)
    hits = search(cat, Query("copy", vec), k=1, include_self=True).hits
    return bool(hits) and hits[0].track_id == own, vec


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def pick(cat, n: int, excerpt_s: float, seed: int) -> list[tuple[str, str, float]]:
    """(track id, path, start s) of up to ``n`` tracks at least ``excerpt_s`` long, starts on the crop grid."""
    rng = np.random.default_rng(seed)
    crop_s = float(cat.meta["crop_s"])
    ids, paths = cat.tracks.column("track_id").to_pylist(), cat.tracks.column("path").to_pylist()
    durations = cat.tracks.column("duration_s").to_pylist()
    long_enough = [i for i, d in enumerate(durations) if d >= excerpt_s]
    chosen = rng.permutation(long_enough)[:n]
    out = []
    for i in sorted(chosen.tolist()):
        last = int((durations[i] - excerpt_s) // crop_s)
        out.append((ids[i], cat.locate(paths[i]), float(rng.integers(0, last + 1)) * crop_s))
    return out


def run(index: str, checkpoint: str | None = None, tracks: int = 40, excerpt_s: float = 15.0, rate: int = 22050,
        seed: int = 0, device: str = "cpu") -> dict:
    from ssl_music.api import load_encoder

    cat = open_index(index)
    model = load_encoder(checkpoint or cat.meta["checkpoint"], device=device)
    check_model(cat, model)
    chosen = pick(cat, tracks, excerpt_s, seed)
    if not chosen:
        raise SystemExit(f"{index}: no track is {excerpt_s:g} s long; pass a shorter --excerpt-s")
    kinds = ["control"] + [f"ogg {g:+g} dB @{rate}" for g in GAINS_DB]
    found = {k: [] for k in kinds}
    closer = []
    for tid, path, start in chosen:
        ok, _ = _own_top1(cat, model, read_excerpt(path, model.sample_rate, start, excerpt_s), model.sample_rate, tid)
        found["control"].append(ok)
        sr = sf.info(path).samplerate
        x = read_excerpt(path, sr, start, excerpt_s)
        for g, kind in zip(GAINS_DB, kinds[1:]):
            found[kind].append(_own_top1(cat, model, ogg_copy(x, sr, g, rate), rate, tid)[0])
        original = model.embed(x, sr)
        for g in (-6.0, 6.0):
            vec = model.embed(np.clip(x * 10 ** (g / 20), -1.0, 1.0), sr)
            q = Query("gain", vec, track_id=tid)     # own track left out: its best other track
            others = search(cat, q, k=1).hits
            closer.append(not others or _cos(vec, original) > others[0].similarity)
    tv = np.asarray(cat.track_vectors[: min(cat.tracks.num_rows, 2000)], np.float64)
    tv /= np.maximum(np.linalg.norm(tv, axis=1, keepdims=True), 1e-12)
    sims = (tv @ tv.T)[np.triu_indices(len(tv), 1)]
    spread = np.percentile(sims, [5, 50, 95]).tolist() if len(sims) else [float("nan")] * 3
    return {"tracks": len(chosen), "top1": {k: float(np.mean(v)) for k, v in found.items()},
            "counts": {k: (int(np.sum(v)), len(v)) for k, v in found.items()},
            "gain_closer": float(np.mean(closer)), "gain_closer_counts": (int(np.sum(closer)), len(closer)),
            "spread": spread, "excerpt_s": excerpt_s, "rate": rate}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("index", help="index folder (`ssl-music index build`)")
    p.add_argument("--checkpoint", default=None, help="default: the checkpoint the index records")
    p.add_argument("--tracks", type=int, default=40, help="tracks to copy (drawn with --seed)")
    p.add_argument("--excerpt-s", type=float, default=15.0, help="excerpt length in seconds")
    p.add_argument("--rate", type=int, default=22050, help="sample rate of the re-encoded copies")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    r = run(a.index, a.checkpoint, a.tracks, a.excerpt_s, a.rate, a.seed, a.device)
    print(f"near duplicates of {r['tracks']} tracks of {a.index}: {r['excerpt_s']:g} s excerpts, seed {a.seed}")
    for kind, rate in r["top1"].items():
        n, total = r["counts"][kind]
        print(f"  top-1 own recording, {kind:<22} {rate:6.1%}  ({n}/{total})")
    n, total = r["gain_closer_counts"]
    print(f"  ±6 dB copies closer to their original than to any other track: {r['gain_closer']:.1%} ({n}/{total})")
    lo, mid, hi = r["spread"]
    print(f"  cosine between different tracks of the index: 5 % {lo:.3f}, median {mid:.3f}, 95 % {hi:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
