"""`ssl-music attention`: where a self-attention model listens in one clip, drawn under its spectrogram."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def _cmd_attention(args: argparse.Namespace) -> int:
    from ssl_music.api import load_encoder
    from ssl_music.data.audio import load_audio
    from ssl_music_eval.attention import draw_attention

    model = load_encoder(args.checkpoint, device=args.device)
    wave = load_audio(args.audio, model.sample_rate)
    times, weights = model.attention(wave, model.sample_rate, start_s=args.start)
    out = Path(args.out)
    draw_attention(wave, model.sample_rate, times, weights, out, title=f"{Path(args.audio).name}: where the model listens",
                   marks=tuple(args.mark))
    np.savetxt(out.with_suffix(".csv"), np.c_[times, weights], delimiter=",", header="time_s,attention", comments="",
               fmt="%.6f")
    top = times[np.argsort(weights)[::-1][:3]]
    print(f"{out} (+ {out.with_suffix('.csv').name}); most attended: " + ", ".join(f"{t:.2f} s" for t in top))
    return 0


def add_cli(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Where a self-attention model (model.backend=attention) listens: the class token's "
                          "attention rollout over one crop-length window of AUDIO, drawn under its log-mel "
                          "spectrogram (PNG) and written as time,attention rows (CSV beside it).")
    parser.add_argument("audio", help="an audio file")
    parser.add_argument("--checkpoint", required=True, help="ssl_music checkpoint (.ckpt) or `ssl-music export` folder")
    parser.add_argument("--out", required=True, help="output .png")
    parser.add_argument("--start", type=float, default=0.0, help="window start in seconds")
    parser.add_argument("--mark", type=float, action="append", default=[],
                        help="draw a dashed line at this time in seconds (repeatable), e.g. where drums enter")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, mps")
    parser.set_defaults(func=_cmd_attention)
