"""`ssl-music tempo estimate`: BPM per file with a checkpoint's same-vs-different tempo head.
`ssl-music tempo translate-train`: a tempo translator for a checkpoint's frozen encoder (ssl_music.translation)."""
from __future__ import annotations

import argparse

from ssl_music_eval.embed import bare_reason, load_audio
from ssl_music_eval.tempo import GRID_STEP, MAX_BPM, MIN_BPM, TempoEstimator, librosa_tempo
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


def _cmd_translate_train(args: argparse.Namespace) -> int:
    import sys
    import time

    from ssl_music.api import load_encoder
    from ssl_music.translation import save_translator, train_translator, translator_config

    c = translator_config(args.overrides)  # before the checkpoint loads: a misspelt key fails at once
    model = load_encoder(args.checkpoint, device=args.device)
    t0 = time.time()

    def progress(msg: str) -> None:
        if not args.quiet:
            print(f"[{time.time() - t0:6.0f} s] {msg}", file=sys.stderr, flush=True)

    translator, summary = train_translator(model, c, shards=args.shards, batch_size=args.segments_per_batch,
                                           num_workers=args.workers, progress=progress)
    weights, meta = save_translator(translator, args.checkpoint, model.encoder, c, summary, out=args.out)
    for part in ("train", "held_out"):
        if part in summary:
            f = summary[part]
            print(f"{part:<8} {f['pairs']:>6} pairs: cosine to the stretched crop {f['translated']:.3f} "
                  f"translated vs {f['identity']:.3f} identity")
    print(f"wrote {weights} and {meta}")
    return 0


def add_cli(parser: argparse.ArgumentParser) -> None:
    from dataclasses import fields

    from ssl_music.translation import TranslatorConfig

    sub = parser.add_subparsers(dest="tempo_command")
    p = sub.add_parser("estimate", help="print the estimated BPM of each file (tab-separated)",
                       description="Estimate tempo with the checkpoint's same-vs-different tempo head against "
                                   "synthetic reference clips on a geometric BPM grid. A file that cannot be "
                                   "read, is empty or is digital silence gets 'PATH<TAB>skipped: REASON' instead "
                                   "of a BPM; the exit status is 1 only when no file could be estimated.")
    p.add_argument("audio", nargs="+", metavar="AUDIO", help="audio files to estimate")
    p.add_argument("--checkpoint", required=True,
                   help="ssl_music checkpoint (.ckpt) or export folder, trained with the tempo objective")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, ...")
    p.add_argument("--min-bpm", type=float, default=MIN_BPM, help="lowest tempo of the grid")
    p.add_argument("--max-bpm", type=float, default=MAX_BPM, help="highest tempo of the grid")
    p.add_argument("--step", type=float, default=GRID_STEP, help="relative grid step (0.02 = 2 %%)")
    p.add_argument("--reference", choices=("click", "drums"), default="click", help="reference clip kind")
    p.add_argument("--windows", type=int, default=4, help="target windows averaged per file")
    p.add_argument("--no-octave-correction", action="store_true", help="keep the head's raw best tempo, even at half or double")
    p.add_argument("--librosa", action="store_true", help="also print librosa's estimate")
    p.set_defaults(func=_cmd_estimate)

    t = sub.add_parser("translate-train", help="train a tempo translator T(e, log r) for a checkpoint's frozen encoder",
                       description="Train a tempo translator without labels: crops from the shards, each embedded "
                                   "as it is and time-stretched by log-uniform ratios in [min-rate, max-rate] by the "
                                   "checkpoint's frozen encoder; a small residual MLP learns to predict the stretched "
                                   "crop's embedding. Saved beside the checkpoint (CKPT stem + .translator.safetensors "
                                   "/ .json; translator.* inside an export folder), where load_encoder(CKPT)"
                                   ".translate_tempo finds it.")
    t.add_argument("--checkpoint", required=True, help="ssl_music checkpoint (.ckpt) or export folder")
    t.add_argument("--shards", default=None, help="unlabelled shards (default: the checkpoint's data.shards)")
    t.add_argument("--out", default=None, metavar="BASE", help="write BASE.safetensors + BASE.json instead "
                   "(load_encoder then does not find it)")
    t.add_argument("--device", default="cpu", help="torch device: cpu, cuda, ...")
    t.add_argument("--segments-per-batch", type=int, default=None, help="loader batch (default: the checkpoint's)")
    t.add_argument("--workers", type=int, default=None, help="loader workers (default: the checkpoint's)")
    t.add_argument("--quiet", action="store_true", help="no progress lines")
    t.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=(
        "translator settings (ssl_music.translation.TranslatorConfig): " + ", ".join(
            f"{f.name}={f.default}" for f in fields(TranslatorConfig)) + ", e.g. crops=512 steps=1000"))
    t.set_defaults(func=_cmd_translate_train)
