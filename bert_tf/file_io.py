"""Files on local disk through Python, on anything else (gs://, hdfs://...) through tf.io.gfile.

Local paths never import TensorFlow, so the data scripts (create_pretraining_data.py)
start in a fraction of a second; a path with a URL scheme imports it on first use.

Every output is written atomically, by one helper (`StagedOutputs`, `write_atomically`):
under a staging name in a hidden folder beside it, `<dir>/.bert_tf-staging/<name>.<pid>-<hex>`,
then renamed. No glob of finished outputs (`out/part-*`, `out/*.tfrecord`) matches a staging
name, a failure on any path (full disk, Ctrl-C, SIGTERM) removes the staged file, and what a
kill -9 leaves is removed by the next run into the same place (`remove_stale_staging`).
`output_lock` keeps two runs out of one output folder.
"""

from __future__ import annotations

import contextlib
import glob as glob_lib
import os
import re
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import IO

from bert_tf.errors import OutputError, UsageError, describe_os_error

STAGING_FOLDER = ".bert_tf-staging"
LOCK_FILE = ".bert_tf.lock"
# Staging names of earlier versions (`x.tmp-<pid>`, `part-N.incomplete-<hex>`), and
# TensorFlow's own (`.tempstate<n>`): never finished outputs.
_LEGACY_STAGING = re.compile(r"\.(tmp|incomplete)-[0-9a-f]+$|\.tempstate\d+$")


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


def read_bytes(path: str) -> bytes:
    """The whole file; FileNotFoundError when it does not exist, on any filesystem."""
    if is_local(path):
        with open(path, "rb") as handle:
            return handle.read()
    gfile = _gfile()
    if not gfile.exists(path):
        raise FileNotFoundError(path)
    with gfile.GFile(path, "rb") as handle:
        return handle.read()


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


def expand_patterns(input_patterns: str | Sequence[str], flag: str = "input_file", *,
                    sort: bool = True) -> list[str]:
    """Comma-separated globs (or a list of them) -> the files they match, pattern by
    pattern; each pattern's matches sorted, or with `sort=False` in `glob`'s order (what
    the original's data creation saw, which decides its document shuffle). Staged and
    bookkeeping files are refused or skipped (`finished_outputs`). Raises UsageError naming
    `flag` when a pattern matches no file or none is given."""
    patterns = input_patterns.split(",") if isinstance(input_patterns, str) else input_patterns
    files = []
    for pattern in patterns:
        if not pattern:
            continue
        matches = glob(pattern)
        matches = finished_outputs(sorted(matches) if sort else matches, flag)
        if not matches:
            raise UsageError(f"{flag}: the pattern {pattern!r} matches no file")
        files.extend(matches)
    if not files:
        raise UsageError(f"{flag}: no input files given")
    return files


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


def is_folder(path: str) -> bool:
    """True for a path that names a folder: it ends with "/" or is an existing local one."""
    return path.endswith("/") or (is_local(path) and os.path.isdir(path))


def remove_tree(path: str) -> None:
    """Removes a file, or a folder with everything in it (a staged SavedModel)."""
    if is_local(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    elif _gfile().isdir(path):
        _gfile().rmtree(path)
    else:
        _gfile().remove(path)


def removedirs_quietly(directory: str) -> None:
    """Removes `directory` if it is empty (local paths; a no-op elsewhere)."""
    if is_local(directory):
        with contextlib.suppress(OSError):
            os.rmdir(directory)


def is_io_error(error: BaseException) -> bool:
    """OSError, or a TensorFlow error, as file operations raise them."""
    tf = sys.modules.get("tensorflow")
    return isinstance(error, OSError) or (
        tf is not None and isinstance(error, getattr(tf.errors, "OpError", ()))
    )


# ---------------------------------------------------------------------------------------
# Staging: where outputs are written before they are complete.


def staging_path(path: str) -> str:
    """A staging name for `path`: `<dir>/.bert_tf-staging/<name>.<pid>-<hex>`."""
    directory, name = os.path.split(path)
    return os.path.join(directory, STAGING_FOLDER, f"{name}.{os.getpid()}-{uuid.uuid4().hex[:8]}")


def is_unfinished(path: str) -> bool:
    """True for a staged (not yet, or never, completed) output: a path inside a staging
    folder, or a staging name of an earlier version."""
    parts = path.replace("\\", "/").split("/")
    return STAGING_FOLDER in parts or bool(_LEGACY_STAGING.search(parts[-1]))


def finished_outputs(paths: Sequence[str], flag: str) -> list[str]:
    """`paths` (a glob's matches) without this package's bookkeeping (lock files, staging
    folders); a staged, unfinished output among them is refused with an OutputError:
    reading it would train on a partial or duplicated file."""
    kept = []
    for path in paths:
        name = os.path.basename(path.rstrip("/"))
        if name == STAGING_FOLDER or name.endswith(LOCK_FILE):
            continue
        if is_unfinished(path):
            raise OutputError(
                f"{flag}: {path} is an unfinished output, staged by a run that was "
                f"interrupted; rerun that job (it removes it) or delete the file"
            )
        kept.append(path)
    return kept


def remove_stale_staging(directory: str, name_pattern: str = "*") -> list[str]:
    """Removes what interrupted runs left staged in `directory` for outputs whose names
    match the glob `name_pattern` (all by default). Call it holding `output_lock` on the
    place. Returns the paths removed."""
    patterns = [os.path.join(directory, STAGING_FOLDER, f"{name_pattern}.*"),
                os.path.join(directory, f"{name_pattern}.tmp-*"),
                os.path.join(directory, f"{name_pattern}.incomplete-*")]
    removed = []
    for pattern in patterns:
        for stale in glob(pattern):
            if is_unfinished(stale):
                with contextlib.suppress(OSError):
                    remove_tree(stale)
                    removed.append(stale)
    removedirs_quietly(os.path.join(directory, STAGING_FOLDER))
    return removed


class StagedOutputs:
    """Files written under staging names and renamed to their final names together.

        with StagedOutputs(["a.tfrecord", "b.tfrecord"], "wb") as (a, b):
            a.write(...)

    On leaving the block normally every file is closed, then every one renamed; on any
    exception (a full disk, KeyboardInterrupt, SystemExit from SIGTERM) every staged file
    is removed, earlier outputs stay as they were, and an I/O failure becomes one
    OutputError naming the output path and the errno text.
    """

    def __init__(self, paths: Sequence[str], mode: str = "w"):
        self.paths = list(paths)
        self.mode = mode
        self.staged = [staging_path(path) for path in self.paths]
        self.handles: list[IO] = []

    def __enter__(self) -> list[IO]:
        try:
            for path in self.staged:
                makedirs(os.path.dirname(path))
                self.handles.append(open_file(path, self.mode))
        except BaseException as error:
            self._fail(error, self.paths[len(self.handles)])
        return self.handles

    def __exit__(self, kind, error, traceback) -> None:
        if error is not None:
            self._fail(error, self.paths[0])
        for path, handle in zip(self.paths, self.handles, strict=True):
            try:
                handle.close()  # a full disk often shows only here
            except BaseException as close_error:
                self._fail(close_error, path)
        for staged, path in zip(self.staged, self.paths, strict=True):
            try:
                rename(staged, path)
            except BaseException as rename_error:
                self._fail(rename_error, path)
        removedirs_quietly(os.path.dirname(self.staged[0]))

    def _fail(self, error: BaseException, path: str):
        for handle in self.handles:
            with contextlib.suppress(BaseException):
                handle.close()
        for staged in self.staged:
            with contextlib.suppress(BaseException):
                if exists(staged):
                    remove(staged)
        removedirs_quietly(os.path.dirname(self.staged[0]))
        if is_io_error(error):
            raise OutputError(f"{path}: cannot write: {describe_os_error(error)}") from None
        raise error


def write_folder_atomically(folder: str, write: Callable[[str], object]) -> str:
    """`write(staged)` fills a staging folder beside `folder`, which then replaces `folder`
    as a whole: a failed or interrupted write leaves an earlier `folder` as it was and no
    staging folder behind. Returns `folder`."""
    folder = folder.rstrip("/")
    staged, previous = staging_path(folder), staging_path(folder)
    try:
        write(staged)
        if exists(folder):
            rename(folder, previous)
        rename(staged, folder)
    finally:
        for path in (staged, previous):
            if exists(path):
                remove_tree(path)
        removedirs_quietly(os.path.dirname(staged))
    return folder


def write_atomically(path: str, data: str | bytes) -> None:
    """Writes `data` to `path` through a staging file and a rename."""
    with StagedOutputs([path], "wb" if isinstance(data, bytes) else "w") as (handle,):
        handle.write(data)


def check_writable(paths: Sequence[str]) -> None:
    """Fails early, before any work, when an output cannot be created: makes its folder,
    then writes and removes an empty staged file beside it."""
    for path in paths:
        probe = staging_path(path)
        try:
            makedirs(os.path.dirname(probe))
            with open_file(probe, "wb"):
                pass
            remove(probe)
        except BaseException as error:
            if not is_io_error(error):
                raise
            raise OutputError(f"{path}: cannot write: {describe_os_error(error)}") from None
        finally:
            removedirs_quietly(os.path.dirname(probe))


# ---------------------------------------------------------------------------------------
# Locks: one run per output folder.


@contextlib.contextmanager
def output_lock(path: str, flag: str = "output_dir", as_file: bool = False) -> Iterator[None]:
    """Holds an exclusive lock on the output folder `path` (or, for a file, on that file)
    while the block runs: `<folder>/.bert_tf.lock`, or `<dir>/.<name>.bert_tf.lock`.

    A second run into the same place is refused with an OutputError naming the folder and
    the process that holds it. The lock is the kernel's (flock), so a holder that died,
    even by kill -9, holds nothing and the next run takes it over (its lock file, left
    behind, is reused). The file is removed on release. Remote folders (gs://) cannot be
    locked this way and are not."""
    if not is_local(path):
        yield
        return
    if not as_file and is_folder(path):
        folder, lock_path = path, os.path.join(path, LOCK_FILE)
    else:
        folder = os.path.dirname(path) or "."
        lock_path = os.path.join(folder, f".{os.path.basename(path)}{LOCK_FILE}")
    descriptor = _acquire(lock_path, folder, path, flag)
    try:
        holder = (f"pid {os.getpid()} on {socket.gethostname()}, since "
                  f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(sys.argv)[:200]}")
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, holder.encode() + b"\n", 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.remove(lock_path)  # before the lock goes: a newcomer then makes a new file
        os.close(descriptor)  # releases the lock


def _acquire(lock_path: str, folder: str, path: str, flag: str) -> int:
    """Opens and flocks `lock_path`; returns the descriptor. Retries when the file it
    locked was removed by a holder that was just leaving (then it locks the new one)."""
    import fcntl

    while True:
        try:
            os.makedirs(folder, exist_ok=True)
            descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise OutputError(f"{flag}: cannot write {path}: {describe_os_error(error)}") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 4096, 0).decode("utf-8", "replace").strip()
            os.close(descriptor)
            raise OutputError(
                f"{flag}: {path} is in use by another run ({holder or 'a live process'}); "
                f"wait for it to end or choose another {flag}"
            ) from None
        try:
            if os.stat(lock_path).st_ino == os.fstat(descriptor).st_ino:
                return descriptor
        except FileNotFoundError:
            pass
        os.close(descriptor)


@contextlib.contextmanager
def holding_output(path: str, flag: str, as_file: bool = False) -> Iterator[None]:
    """For one run's output folder (a path ending in "/" or an existing folder) or output
    file (or, with `as_file`, a folder replaced as a whole, such as a SavedModel): holds its
    `output_lock` and first removes what interrupted runs left staged."""
    with output_lock(path, flag, as_file):
        if not as_file and is_folder(path):
            remove_stale_staging(path)
        else:
            directory, name = os.path.split(path)
            remove_stale_staging(directory, glob_lib.escape(name) if is_local(path) else name)
        yield


def write_results(path: str, results: dict) -> None:
    """Writes `key = value` lines, keys sorted, floats as float32 (the original's
    `eval_results.txt` format), atomically."""
    import numpy as np

    lines = []
    for key in sorted(results):
        value = results[key]
        text = str(np.float32(value)) if isinstance(value, float) else str(value)
        lines.append(f"{key} = {text}\n")
    write_atomically(path, "".join(lines))
