"""The package's one error base class and how a script reports it.

Every error about the user's input (flags, configs, vocabularies, checkpoints, data files,
output folders) is a `BertTfError`. The scripts catch that class alone and print its message
on one line: the file, the field or flag, what was expected and what was found. Anything
else is a bug in this package and keeps its traceback.

The subclasses are also `ValueError`s (or `OSError`s for output that cannot be written), so
code written against the older, plainer classes keeps working.
"""

from __future__ import annotations

import errno
import signal
import sys
from collections.abc import Callable


class BertTfError(Exception):
    """Input, flags or files that this package cannot work with (one-line message)."""


class UsageError(BertTfError, ValueError):
    """A flag or option value that is out of range or inconsistent with another."""


class OutputError(BertTfError, OSError):
    """An output that cannot be written (missing or read-only folder, full disk), or an
    output folder that another run holds."""


def describe_os_error(error: BaseException) -> str:
    """`[Errno 28] No space left on device` style text for an OSError or a TensorFlow
    error, without the traceback or the chained context."""
    if isinstance(error, OSError) and error.errno is not None:
        text = f"[Errno {error.errno}] {error.strerror or errno.errorcode.get(error.errno, '')}"
        return f"{text}: {error.filename}" if error.filename else text
    message = (getattr(error, "message", None) or str(error)).strip()
    return message.splitlines()[0] if message else type(error).__name__


def _file_error(error: BaseException) -> bool:
    """An OSError, or a TensorFlow error about a file (not found, no permission, corrupt,
    full): the user's to fix, reported on one line like a BertTfError."""
    if isinstance(error, OSError):
        return True
    tf = sys.modules.get("tensorflow")
    kinds = ("NotFoundError", "PermissionDeniedError", "DataLossError", "AlreadyExistsError",
             "ResourceExhaustedError")
    return tf is not None and isinstance(
        error, tuple(getattr(tf.errors, kind) for kind in kinds if hasattr(tf.errors, kind))
    )


def _raise_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def run_script(name: str, main: Callable[[], object]) -> None:
    """Runs a script's `main`: a BertTfError, or an error about a file, exits with
    `name: message` on one line (status 1); anything else is a bug and keeps its
    traceback. SIGTERM unwinds like Ctrl-C, so staged files and locks are released on the
    way out."""
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        main()
    except BertTfError as error:
        sys.exit(f"{name}: {error}")
    except Exception as error:
        if not _file_error(error):
            raise
        sys.exit(f"{name}: {describe_os_error(error)}")
