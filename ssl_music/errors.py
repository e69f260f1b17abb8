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


def closest(word: str, choices) -> str | None:
    """The choice ``word`` most likely misspells (a choice it begins, else difflib's nearest), or None."""
    import difflib

    choices = [str(c) for c in choices]
    word = str(word)
    starts = [c for c in choices if word and c.startswith(word)]
    if len(starts) == 1:
        return starts[0]
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(word: str, choices, prefix: str = "") -> str:
    """``"; did you mean 'PREFIX<choice>'?"`` for the nearest choice, or "" when none is near."""
    c = closest(word, choices)
    return f"; did you mean '{prefix}{c}'?" if c is not None else ""


def require_choice(value, choices, key: str, what: str = "config") -> None:
    """ConfigError naming ``key`` and the choices, with the nearest one, unless ``value`` is one of them."""
    if value not in choices:
        raise ConfigError(f"invalid value for {what} key '{key}': must be one of {', '.join(map(str, choices))}, "
                          f"got '{value}'{did_you_mean(value, choices)}")
