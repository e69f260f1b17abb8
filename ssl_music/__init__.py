"""ssl_music: self-supervised learning of music audio representations."""
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
