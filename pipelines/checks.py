"""Checks of config values; each error starts with the value's key path."""

import difflib
import numbers

from tf_mtl.errors import did_you_mean


class ConfigError(ValueError):
    """A config mistake; the message starts with the key path."""


def fail(where, expected, value):
    raise ConfigError(f"{where}: expected {expected}. Received: {value!r}")


def mapping(value, where, known=None, required=(), what="key"):
    """``value`` as a dict whose keys are among ``known`` (any when ``None``) and include ``required``."""
    if not isinstance(value, dict):
        fail(where, "a mapping", value)
    for key in value:
        if known is not None and key not in known:
            raise ConfigError(f"{where}.{key}: unknown {what}" + did_you_mean(key, sorted(known), "Known keys"))
    for key in required:
        if key not in value:
            raise ConfigError(f"{where}.{key}: required key is missing.")
    return value


def integer(value, where, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        fail(where, f"an integer >= {minimum}", value)
    return int(value)


def number(value, where, low=None, high=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        fail(where, "a number", value)
    if (low is not None and value < low) or (high is not None and value > high):
        fail(where, f"a number in [{low}, {high}]", value)
    return float(value)


def choice(value, choices, where):
    if value not in choices:
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{where}: expected one of {list(choices)}. Received: {value!r}{hint}")
    return value


def string(value, where):
    if not isinstance(value, str) or not value:
        fail(where, "a non-empty string", value)
    return value
