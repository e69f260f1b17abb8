"""`ssl-music tempo estimate`: BPM per file with a checkpoint's same-vs-different tempo head."""
from __future__ import annotations

import argparse

from evaluation.embed import bare_reason, load_audio
from evaluation.tempo import TempoEstimator, librosa_tempo
from ssl_music.errors import SSLMusicError


def _cmd_estimate(args: argparse.Namespace) -> int:
    from ssl_music.api import load_encoder

    model = load_encoder(args.checkpoint, device=args.device)
    est = TempoEstimator(model, lo=args.min_bpm, hi=args.max_bpm, step=args.step, kind=args.reference,
                         n_windows=args.windows, octave_correction=not args.no_octave_correction)
    estimated = 0
    for path in args.audio:
        try:
            wave = load_audio(path, model.sample_rate)
        except SSLMusicError as exc:
            # e.g. "x.wav<TAB>skipped: silent (peak -inf dBFS < -80 dBFS)": silence has no tempo to print
            print(f"{path}\tskipped: {bare_reason(path, str(exc))}")
            continue
        line = f"{path}\t{est.estimate(wave, model.sample_rate):.1f}"
        if args.librosa:
            line += f"\tlibrosa {librosa_tempo(wave, model.sample_rate):.1f}"
        print(line)
        estimated += 1
    return 0 if estimated else 1  # like `embed`: a skipped file is reported, the others still count


def add_cli(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="tempo_command")
    p = sub.add_parser("estimate", help="print the estimated BPM of each file (tab-separated)",
                       description="Estimate tempo with the checkpoint's same-vs-different tempo head against "
                                   "synthetic reference clips on a geometric BPM grid. A file that cannot be "
                                   "read, is empty or is digital silence gets 'PATH<TAB>skipped: REASON' instead "
                                   "of a BPM; the exit status is 1 only when no file could be estimated.")
    p.add_argument("audio", nargs="+", metavar="AUDIO")
    p.add_argument("--checkpoint", required=True,
                   help="ssl_music checkpoint (.ckpt) or export folder, trained with the tempo objective")
    p.add_argument("--device", default="cpu")
    p.add_argument("--min-bpm", type=float, default=60.0)
    p.add_argument("--max-bpm", type=float, default=200.0)
    p.add_argument("--step", type=float, default=0.02, help="relative grid step (0.02 = 2 %%)")
    p.add_argument("--reference", choices=("click", "drums"), default="click", help="reference clip kind")
    p.add_argument("--windows", type=int, default=4, help="target windows averaged per file")
    p.add_argument("--no-octave-correction", action="store_true")
    p.add_argument("--librosa", action="store_true", help="also print librosa's estimate")
    p.set_defaults(func=_cmd_estimate)
