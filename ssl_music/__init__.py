"""ssl_music: self-supervised learning of music audio representations.

Layout follows the data flow: ``data`` (decode, shards, stream, view crops) -> ``augment`` (transform
registry, cpu and batched gpu backends) -> ``models`` (front-ends, encoders, heads) -> ``objectives``
(one module per objective, the OBJECTIVES registry) -> ``module`` (LightningModule) -> ``train``
(Trainer). ``config`` is the one config system, ``checkpoint``/``api`` read trained models, ``cluster``
runs SLURM jobs and sweeps, and ``cli`` is the command line, the only part that imports the evaluation package ``ssl_music_eval``.
"""
__version__ = "0.1.0"
__all__ = ["load_encoder", "EmbeddingModel", "load_config"]


def __getattr__(name):  # lazy: `ssl-music --help` must not pay for importing torch
    if name in ("load_encoder", "EmbeddingModel"):
        from ssl_music import api

        return getattr(api, name)
    if name == "load_config":
        from ssl_music.config import load_config

        return load_config
    raise AttributeError(name)
