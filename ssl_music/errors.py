"""Errors a user can act on. The CLI prints them as one line (no traceback) and exits with status 2."""


class SSLMusicError(Exception):
    """Base class: the message names the file, key or value at fault."""


class AudioError(SSLMusicError):
    """A file or byte string that cannot be decoded, or audio unusable as it is (silent, too short, ...)."""


class ShardError(SSLMusicError):
    """Missing, malformed or corrupt shards or manifest."""


class ConfigError(SSLMusicError, ValueError):
    """A config problem; the message names the offending key."""


def require(cond: bool, key: str, msg: str, what: str = "config") -> None:
    """Raise ConfigError naming ``key`` unless ``cond``: the one check every config section uses
    (pretraining configs, objectives, transforms, evaluation suites, sweeps)."""
    if not cond:
        raise ConfigError(f"invalid value for {what} key '{key}': {msg}")
