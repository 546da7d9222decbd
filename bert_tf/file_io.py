"""Files on local disk through Python, on anything else (gs://, hdfs://...) through tf.io.gfile.

Local paths never import TensorFlow, so the data scripts (create_pretraining_data.py)
start in a fraction of a second; a path with a URL scheme imports it on first use.
"""

from __future__ import annotations

import glob as glob_lib
import os
from typing import IO


def is_local(path: str) -> bool:
    """True for a plain filesystem path, False for `scheme://...`."""
    return "://" not in path


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def open_file(path: str, mode: str = "r") -> IO:
    """Opens `path` for reading or writing ("r", "rb", "w", "wb")."""
    if is_local(path):
        return open(path, mode, encoding=None if "b" in mode else "utf-8")
    return _gfile().GFile(path, mode)


def exists(path: str) -> bool:
    return os.path.exists(path) if is_local(path) else _gfile().exists(path)


def size(path: str) -> int:
    """The file's length in bytes."""
    return os.path.getsize(path) if is_local(path) else _gfile().stat(path).length


def glob(pattern: str) -> list[str]:
    """Paths matching `pattern`, in directory-listing order as tf.io.gfile.glob returns those
    of one directory (the input order decides the original's document shuffle)."""
    if is_local(pattern):
        return glob_lib.glob(pattern)
    return _gfile().glob(pattern)


def makedirs(directory: str) -> None:
    if is_local(directory):
        os.makedirs(directory, exist_ok=True)
    else:
        _gfile().makedirs(directory)


def rename(source: str, target: str) -> None:
    """Renames `source` to `target`, replacing it (atomic on a local filesystem)."""
    if is_local(source):
        os.replace(source, target)
    else:
        _gfile().rename(source, target, overwrite=True)


def remove(path: str) -> None:
    if is_local(path):
        os.remove(path)
    else:
        _gfile().remove(path)
