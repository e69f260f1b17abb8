"""`ssl-music augment preview`: augmented WAVs and a spectrogram grid for one audio file."""
from __future__ import annotations

import argparse


def add_cli(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action")
    p = sub.add_parser("preview", help="write augmented WAVs and a spectrogram grid for one audio file")
    p.add_argument("--config", required=True, help="pretrain config or configs/augment/<preset>.yaml")
    p.add_argument("audio", help="audio file (any format soundfile reads)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--n", type=int, default=8, help="number of augmented draws")
    p.add_argument("--backend", choices=["cpu", "gpu"], default=None, help="default: the config's backend")
    p.add_argument("--seed", type=int, default=0, help="random seed of the draws")
    p.add_argument("override", nargs="*", default=[], help=argparse.SUPPRESS)
    p.set_defaults(func=_preview)


def _preview(args: argparse.Namespace) -> int:
    from ssl_music.augment.preview import preview
    from ssl_music.config import load_augment
    from ssl_music.objectives import view_treatments

    augment_cfg, data_cfg = load_augment(args.config, args.override)
    out, n_clips = preview(augment_cfg, data_cfg, view_treatments(data_cfg), args.audio, args.out, n=args.n,
                           backend=args.backend, seed=args.seed)
    print(f"wrote {n_clips + 1} WAVs and grid.png to {out}")
    return 0
