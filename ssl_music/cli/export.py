"""`ssl-music export`: a checkpoint's encoder and kept heads as safetensors + JSON, for sharing."""
from __future__ import annotations

import argparse
from pathlib import Path

from ssl_music.errors import SSLMusicError


def _cmd_export(args: argparse.Namespace) -> int:
    import json

    from ssl_music.api import export_encoder
    from ssl_music.checkpoint import CONFIG_FILE, WEIGHTS_FILE

    if args.checkpoint and args.positional_checkpoint and args.checkpoint != args.positional_checkpoint:
        raise SSLMusicError(f"two checkpoints given ({args.positional_checkpoint} and --checkpoint {args.checkpoint}); "
                            "pass one, with --checkpoint")
    args.checkpoint = args.checkpoint or args.positional_checkpoint
    if args.checkpoint is None:
        raise SSLMusicError("no checkpoint given: pass --checkpoint CKPT (a pretraining run's checkpoints/last.ckpt)")
    out = export_encoder(args.checkpoint, args.out)
    meta = json.loads((out / CONFIG_FILE).read_text())
    size_mb = (out / WEIGHTS_FILE).stat().st_size / 2**20
    print(f"exported {', '.join(meta['modules'])} of {args.checkpoint} -> {out}/ "
          f"({WEIGHTS_FILE} {size_mb:.1f} MiB, {CONFIG_FILE})")
    print(f"load it with ssl_music.load_encoder({str(out)!r}) or ssl_music.hear.load_model({str(out)!r})")
    return 0


def add_cli(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Export a pretraining checkpoint for sharing: the encoder and the heads that outlive "
                          "pretraining (e.g. the tempo head; not the projector, not the optimizer state) as "
                          "DIR/model.safetensors, and the run's config as DIR/config.json. load_encoder, "
                          "ssl_music.hear and every --checkpoint option read the folder without unpickling "
                          "anything. Files already in DIR with those names are replaced.")
    parser.add_argument("--checkpoint", metavar="CKPT", type=Path, default=None,
                        help="ssl_music pretraining checkpoint (.ckpt), as every other command takes it")
    # the positional of earlier versions still works
    parser.add_argument("positional_checkpoint", metavar="CKPT", type=Path, nargs="?", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", required=True, metavar="DIR", type=Path, help="output folder (created)")
    parser.set_defaults(func=_cmd_export)
