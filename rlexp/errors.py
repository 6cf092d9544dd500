"""The errors a user can see, and the one-line text each becomes.

Every problem a user can cause is a :class:`ConfigError` whose message is one line naming
the problem and the valid choices; the command prints it after ``error:`` and exits 2. A
run that stops on a fault it cannot continue past raises :class:`TrainingError` (exit 1);
SIGINT/SIGTERM stop it with :class:`RunStopped` (exit 128 + the signal). This module
imports nothing heavy: bad input gets its answer before torch is loaded.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from pathlib import Path


class ConfigError(ValueError):
    """A user-facing config problem; its message is one line naming the problem and the fix."""


class TrainingError(Exception):
    """The run stopped on a fault it cannot continue past (a NaN loss, an env that raised):
    one line naming where, and where the last good checkpoint is."""


class RunStopped(BaseException):
    """SIGINT or SIGTERM stopped the run after a checkpoint; ``exit_code`` is 128 + the signal.

    A BaseException: a sweep must stop with it, not record it as one failed job.
    """

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def first_line(text: object) -> str:
    """The first non-empty line of ``text`` (an exception or a string), stripped; "" if none."""
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return ""


def describe(err: BaseException) -> str:
    """``TypeName: first line`` of an exception (or the type name alone)."""
    line = first_line(err)
    return f"{type(err).__name__}: {line}" if line else type(err).__name__


def valid_keys(object_type: object) -> str:
    """The field names of a dataclass schema, comma-separated ("" for anything else)."""
    if isinstance(object_type, type) and dataclasses.is_dataclass(object_type):
        return ", ".join(f.name for f in dataclasses.fields(object_type))
    return ""


def omegaconf_error_line(err: BaseException, command_line: bool = False) -> str | None:
    """One line for an OmegaConf error (an unknown key, a missing value, a wrong type), or
    None when ``err`` is none of those. ``command_line``: the key came from an override, so
    the hint says how to add a key the schema lacks."""
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, MissingMandatoryValue, ValidationError

    key = getattr(err, "full_key", None)
    if isinstance(err, (ConfigKeyError, ConfigAttributeError)) and key:
        valid = valid_keys(getattr(err, "object_type", None))
        return (f"unknown key {key!r}" + (f"; valid keys: {valid}" if valid else "")
                + (f" (use +{key}=... to add a key)" if command_line else ""))
    if isinstance(err, MissingMandatoryValue) and key:
        return f"missing value for {key}"
    if isinstance(err, ValidationError):
        text = first_line(err)
        # no field of ValidationError holds the value: its wording (tests/test_cli.py: algo.lr=abc)
        m = re.match(r"Value '(.*)' of type '(\w+)' could not be converted to (\w+)", text)
        if m:
            return f"invalid value for {key or '?'}: {m.group(1)!r} is not a valid {m.group(3).lower()}"
        return f"invalid value for {key or '?'}: {text}"
    return None


def warn(message: str) -> None:
    """``warning: message`` on stderr (for trouble that does not stop the command)."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def check_writable_dir(path: Path | str, what: str) -> None:
    """Refuse an output directory that cannot be made or written, before anything is written
    (nothing is created here).

    Raises:
        ConfigError: ``what`` (e.g. ``--out``) names a file, or a place without write access.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {path} is a file, not a directory; choose a directory")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{what} {path}: {existing} is a file, so the directory cannot be made; choose another")
    if not os.access(existing, os.W_OK | os.X_OK) or _pseudo_file_system(existing):
        raise ConfigError(f"{what} {path}: {existing} is not writable; choose another directory")


def _pseudo_file_system(path: Path) -> bool:
    """/proc and /sys take no new files even from root (whom os.access always allows)."""
    parts = path.resolve().parts
    return len(parts) > 1 and parts[1] in ("proc", "sys")
