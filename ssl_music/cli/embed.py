"""`ssl-music embed`: one mean-pooled embedding per audio file, into an .npz."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ssl_music_eval.embed import bare_reason, collect_inputs, embed_dataset
from ssl_music.errors import SSLMusicError


def _cmd_embed(args: argparse.Namespace) -> int:
    from ssl_music.api import load_encoder

    model = load_encoder(args.checkpoint, device=args.device, random_init=args.random_init)
    if args.subspace is not None:
        model.subspace(np.zeros(model.embed_dim), args.subspace)   # an unknown name fails before any decoding
    files = collect_inputs(args.inputs)
    if not files:
        raise SSLMusicError("no audio files found in the given inputs")
    X, kept, skipped = embed_dataset(model, [f[0] for f in files], cache_dir=args.cache_dir,
                                     batch_size=args.decode_ahead, progress=not args.quiet, hop_s=args.hop_s)
    # the cache keeps full embeddings, so one cache serves every subspace
    X = model.subspace(X, args.subspace)
    ids = dict(files)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, X=X, paths=np.asarray(kept, dtype=str), track_ids=np.asarray([ids[k] for k in kept], dtype=str),
             skipped_paths=np.asarray([s[0] for s in skipped], dtype=str),
             skipped_reasons=np.asarray([s[1] for s in skipped], dtype=str),
             identity=np.asarray(str(model.identity)), subspace=np.asarray(args.subspace or _whole(model)))
    print(f"embedded {len(kept)} files -> {out}  (X {tuple(X.shape)}); skipped {len(skipped)}")
    for path, reason in skipped:
        print(f"  skipped {path}: {bare_reason(path, reason)}")
    return 0 if kept else 1


def _whole(model) -> str:
    """What ``subspace`` records for the whole embedding: the name of the model's only part (``all``), or
    ``full`` for all the named parts of a model trained with subspaces."""
    return model.subspaces[0] if len(model.subspaces) == 1 else "full"


def add_cli(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Embed audio files with a checkpoint: one mean-pooled embedding per file. Inputs are "
                          "audio files, folders (recursive) or CSV manifests with a 'path' column. Output .npz "
                          "keys: X [n, D], paths, track_ids, skipped_paths, skipped_reasons, identity, subspace (the "
                          "part kept: --subspace, or 'all' for a model of one part, 'full' for all parts of a model "
                          "trained with subspaces).")
    parser.add_argument("inputs", nargs="+", metavar="AUDIO_OR_CSV",
                        help="audio files, folders (recursive) or CSV manifests with a 'path' column")
    parser.add_argument("--checkpoint", required=True, help="ssl_music checkpoint (.ckpt) or `ssl-music export` folder")
    parser.add_argument("--out", required=True, help="output .npz file")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, mps")
    parser.add_argument("--random-init", action="store_true", help="same architecture, random weights")
    parser.add_argument("--subspace", default=None,
                        help="keep only this named part of the embedding (e.g. content, pitch, tempo; a model "
                             "trained without subspaces has one, 'all'); default: the full embedding")
    parser.add_argument("--hop-s", type=float, default=None, help="window hop in seconds (default: crop length)")
    # not a batch of the model: --batch-size means clips per optimiser step everywhere else (data.batch_size)
    parser.add_argument("--decode-ahead", type=int, default=8, help="files decoded ahead of the model")
    parser.add_argument("--batch-size", dest="decode_ahead", type=int, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", default=None, help="re-use embeddings cached here (default: no cache)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_cmd_embed)
