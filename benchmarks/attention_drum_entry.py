"""Does a self-attention model listen to a change? (issue #25; Won et al. 2019's figures)

Builds drum-entry clips from the dev set: a clip played without drums, and from ENTRY seconds on the same clip
with a kick/snare/hat beat at its own tempo mixed in. For each, the attention rollout over one crop-length
window centred on the entry, the figure (`ssl-music attention`'s drawing, a dashed line at the entry), and two
numbers: the share of attention on the frames within +-NEAR s of the entry against that of uniform attention,
and the share after the entry against the window's fraction after it. Printed as a table with the mean over
clips and a bootstrap interval; a share above uniform is "visible weight on the change".

    python benchmarks/attention_drum_entry.py --checkpoint runs/att/checkpoints/last.ckpt --out runs/att/listen
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ssl_music.data.audio import load_audio  # noqa: E402
from ssl_music.data.synth import click_track  # noqa: E402


def drum_entry(wave: np.ndarray, sample_rate: int, bpm: float, entry_s: float, level: float = 0.5) -> np.ndarray:
    """``wave`` with a drum beat at ``bpm`` from ``entry_s`` on, the beat at ``level`` of the clip's peak."""
    start = int(entry_s * sample_rate)
    drums = click_track(bpm, (wave.size - start) / sample_rate, sample_rate, kind="drums")
    out = wave.astype(np.float32).copy()
    out[start:start + drums.size] += level * np.abs(wave).max() / 0.9 * drums[: wave.size - start]
    return out / max(1.0, float(np.abs(out).max()))


def shares(times: np.ndarray, weights: np.ndarray, entry_s: float, near_s: float) -> dict[str, float]:
    """Attention near and after the entry, each beside what uniform attention would give."""
    near, after = np.abs(times - entry_s) <= near_s, times >= entry_s
    return {"near": float(weights[near].sum()), "near_uniform": float(near.mean()),
            "after": float(weights[after].sum()), "after_uniform": float(after.mean())}


def clips(devset: Path, n: int) -> list[dict]:
    """The first ``n`` dev-set clips without drums (their tempo labels give the beat)."""
    with open(devset / "labels.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["drums"] == "false"]
    return rows[:n]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True, help="a model with model.backend=attention")
    ap.add_argument("--devset", default=str(REPO.parent / "shared" / "devset"))
    ap.add_argument("--clips", type=int, default=12, help="dev-set clips without drums to use")
    ap.add_argument("--entry", type=float, default=6.0, help="where the drums come in (s)")
    ap.add_argument("--near", type=float, default=1.0, help="'near the entry': within this many seconds")
    ap.add_argument("--figures", type=int, default=2, help="figures to draw (the first clips)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)

    from ssl_music.api import load_encoder
    from ssl_music_eval.attention import draw_attention
    from ssl_music_eval.subspaces import bootstrap_mean

    model = load_encoder(a.checkpoint)
    sr, out = model.sample_rate, Path(a.out)
    start = max(0.0, a.entry - model.crop_s / 2)
    table = []
    for i, row in enumerate(clips(Path(a.devset), a.clips)):
        wave = drum_entry(load_audio(Path(a.devset) / row["path"], sr), sr, float(row["tempo"]), a.entry)
        times, weights = model.attention(wave, sr, start_s=start)
        table.append({"clip": row["path"], **shares(times, weights, a.entry, a.near)})
        if i < a.figures:
            draw_attention(wave, sr, times, weights, out / f"{Path(row['path']).stem}_drums_at_{a.entry:g}s.png",
                           title=f"{row['path']} ({row['instrument']}, {row['tempo']} BPM): drums enter at "
                                 f"{a.entry:g} s", marks=(a.entry,))
    if not table:
        sys.exit(f"no clip without drums in {a.devset}/labels.csv")
    print(f"{model.crop_s:g} s window from {start:g} s; drums enter at {a.entry:g} s; near = within {a.near:g} s")
    print(f"{'clip':<16} {'near':>6} {'uniform':>8} {'after':>6} {'uniform':>8}")
    for r in table:
        print(f"{r['clip']:<16} {r['near']:6.3f} {r['near_uniform']:8.3f} {r['after']:6.3f} {r['after_uniform']:8.3f}")
    for key in ("near", "after"):
        excess = np.array([r[key] - r[f"{key}_uniform"] for r in table])
        b = bootstrap_mean(excess, n_boot=1000)
        lo, hi = b.get("ci_low", b["mean"]), b.get("ci_high", b["mean"])   # one clip: no spread to resample
        print(f"attention {key} the entry minus uniform: {b['mean']:+.3f} [{lo:+.3f}, {hi:+.3f}] (95 % bootstrap "
              f"over {len(table)} clips)")
    print(f"figures: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
