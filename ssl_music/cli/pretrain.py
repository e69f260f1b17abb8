"""`ssl-music pretrain`: pretraining from a config, with the online k-NN monitor wired in when configured."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path


def add_cli(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="configs/pretrain/<name>.yaml")
    parser.add_argument("overrides", nargs="*", help="dotlist overrides, e.g. trainer.max_steps=500 augment.preset=full")
    parser.add_argument("--print-config", action="store_true", help="print the effective config and exit")
    parser.add_argument("--check", action="store_true",
                        help="validate the config and every path it names (shards, monitor labels, run folder), "
                             "then exit without training")
    parser.set_defaults(func=_run)


def monitored_pretrain(cfg):
    """pretrain() with the callbacks the config asks for from evaluation (monitor.*): the library's
    trainer takes callbacks and never imports evaluation itself."""
    from ssl_music_eval.monitor import monitor_callbacks
    from ssl_music.train import pretrain

    return pretrain(cfg, callbacks=monitor_callbacks(cfg))


def _run(args: argparse.Namespace) -> int:
    from omegaconf import OmegaConf

    from ssl_music.config import load_config

    cfg = load_config(args.config, args.overrides)
    if args.print_config:
        print(OmegaConf.to_yaml(cfg, resolve=True))
        return 0
    if args.check:
        from ssl_music.preflight import check_pretrain

        print("\n".join(check_pretrain(cfg)))
        print(f"OK: {args.config} is ready to train")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    trainer = monitored_pretrain(cfg)
    if trainer.is_global_zero:
        print(f"pretraining finished at step {trainer.global_step}; checkpoints in {Path(cfg.trainer.root_dir) / 'checkpoints'}")
    return 0
