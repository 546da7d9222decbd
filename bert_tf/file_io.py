"""Files on local disk through Python, on anything else (gs://, hdfs://...) through tf.io.gfile.

Local paths never import TensorFlow, so the data scripts (create_pretraining_data.py)
start in a fraction of a second; a path with a URL scheme imports it on first use.

Every output is written atomically, by one helper (`StagedOutputs`, `write_atomically`):
under a staging name in a hidden folder beside it, `<dir>/.bert_tf-staging/<name>.<pid>-<hex>`,
then renamed. No glob of finished outputs (`out/part-*`, `out/*.tfrecord`) matches a staging
name, a failure on any path (full disk, Ctrl-C, SIGTERM) removes the staged file, and what a
kill -9 leaves is removed by the next run into the same place (`remove_stale_staging`, which
spares what a live process is writing). No write or delete follows a link out of an output
folder. `output_lock` is the one lock rule: a run locks the folder it writes into (owning it
exclusively, or sharing it to write one named file). `write_folder_atomically` replaces only
an empty folder or an earlier export (`check_replaceable`).
"""

from __future__ import annotations

import contextlib
import glob as glob_lib
import os
import re
import shutil
import socket
import stat
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


def staging_folder(directory: str) -> str:
    """`<directory>/.bert_tf-staging`, made if needed. Refuses (OutputError) an entry of
    that name that is not a real folder of this user: a symbolic link or a file there would
    lead staged writes, and the stale-staging sweep's deletes, out of the output folder."""
    folder = os.path.join(directory, STAGING_FOLDER)
    if not is_local(folder):
        makedirs(folder)
        return folder
    os.makedirs(directory or ".", exist_ok=True)
    try:
        os.mkdir(folder)
    except FileExistsError:
        pass
    except OSError as error:
        raise OutputError(f"{directory or '.'}: cannot create {STAGING_FOLDER}: "
                          f"{describe_os_error(error)}") from None
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        what = ("a symbolic link" if stat.S_ISLNK(info.st_mode) else
                "not a folder" if not stat.S_ISDIR(info.st_mode) else "owned by another user")
        raise OutputError(
            f"{folder}: is {what}; this package stages its outputs in that folder and follows "
            f"no link out of an output folder: remove it and rerun"
        )
    return folder


# A staged name's writer: `<name>.<pid>-<hex8>` (`.<attempt>` may follow, Beam's).
_STAGED_BY = re.compile(r"\.(\d+)-[0-9a-f]{8}(\.[0-9a-f]+)?$")


def _writer_alive(staged: str) -> bool:
    """True when the process that named `staged` is still running on this machine (its
    pid is in the name; names without one are earlier versions', never live)."""
    match = _STAGED_BY.search(os.path.basename(staged))
    if not match:
        return False
    pid = int(match.group(1))
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, another user's
    return True


def remove_stale_staging(directory: str, name_pattern: str = "*") -> list[str]:
    """Removes what interrupted runs left staged in `directory` for outputs whose names
    match the glob `name_pattern` (all by default): entries of `.bert_tf-staging` whose
    writer (the pid in the name) is no longer running, and earlier versions' names. Never
    what a live run is writing, never through a link. Call it holding the output's lock.
    Returns the paths removed."""
    staging = os.path.join(directory, STAGING_FOLDER)
    if is_local(staging) and os.path.lexists(staging):
        staging_folder(directory)  # refuses a link or a file of that name
    patterns = [os.path.join(staging, f"{name_pattern}.*"),
                os.path.join(directory, f"{name_pattern}.tmp-*"),
                os.path.join(directory, f"{name_pattern}.incomplete-*")]
    removed = []
    for pattern in patterns:
        for stale in glob(pattern):
            if is_unfinished(stale) and not (is_local(stale) and _writer_alive(stale)):
                with contextlib.suppress(OSError):
                    remove_tree(stale)
                    removed.append(stale)
    removedirs_quietly(staging)
    return removed


class StagedOutputs:
    """Files written under staging names and renamed to their final names together.

        with StagedOutputs(["a.tfrecord", "b.tfrecord"], "wb") as (a, b):
            a.write(...)

    On leaving the block normally every file is closed, then every one renamed; on any
    exception (a full disk, KeyboardInterrupt, SystemExit from SIGTERM) every staged file
    is removed, earlier outputs stay as they were, and an I/O failure becomes one
    OutputError naming the output path and the errno text. With several files, the earlier
    outputs are moved aside first and put back if a rename fails, so the outputs change
    all together or not at all (only a kill -9 between two renames can leave a mix).
    """

    def __init__(self, paths: Sequence[str], mode: str = "w"):
        self.paths = list(paths)
        self.mode = mode
        self.staged = [staging_path(path) for path in self.paths]
        self.handles: list[IO] = []

    def __enter__(self) -> list[IO]:
        try:
            for path, staged in zip(self.paths, self.staged, strict=True):
                staging_folder(os.path.dirname(path))
                self.handles.append(open_file(staged, self.mode))
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
        self._commit()
        removedirs_quietly(os.path.dirname(self.staged[0]))

    def _commit(self) -> None:
        """Renames every staged file to its final name, all or none."""
        aside: dict[str, str] = {}  # final path -> where its earlier version waits
        renamed: list[str] = []
        path = self.paths[0]
        try:
            if len(self.paths) > 1:
                for path in self.paths:
                    if exists(path):
                        aside[path] = staging_path(path)
                        rename(path, aside[path])
            for staged, path in zip(self.staged, self.paths, strict=True):
                rename(staged, path)
                renamed.append(path)
        except BaseException as rename_error:
            for done in renamed:
                with contextlib.suppress(BaseException):
                    remove(done)
            for final, earlier in aside.items():
                with contextlib.suppress(BaseException):
                    rename(earlier, final)
            self._fail(rename_error, path)
        for earlier in aside.values():
            with contextlib.suppress(OSError):
                remove(earlier)

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


# What a SavedModel folder holds (tf.saved_model.save): a folder holding these names and
# nothing else (besides this package's lock) is an earlier export, which an export replaces.
SAVED_MODEL_ENTRIES = frozenset(
    {"saved_model.pb", "saved_model.pbtxt", "fingerprint.pb", "variables", "assets",
     "assets.extra"})


def check_replaceable(folder: str, entries: frozenset[str], flag: str) -> None:
    """Refuses (OutputError) to replace `folder` unless it is absent, empty, or an earlier
    export: every entry in it is one of `entries` (what such an export writes). A link or
    a file at `folder` is refused too: replacing it would drop the user's link or file."""
    if not is_local(folder):
        return
    if os.path.islink(folder):
        raise OutputError(f"{flag}: {folder} is a symbolic link; give the folder it points to "
                          f"({os.path.realpath(folder)})")
    if not os.path.lexists(folder):
        return
    if not os.path.isdir(folder):
        raise OutputError(f"{flag}: {folder} is a file, not an export folder; remove it or "
                          f"choose another {flag}")
    foreign = sorted(set(os.listdir(folder)) - entries - {LOCK_FILE, STAGING_FOLDER})
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5
                                          else "")
        raise OutputError(
            f"{flag}: {folder} holds {shown}, which an export does not write: it is not an "
            f"earlier export, and exporting there would delete them; choose a new or empty "
            f"folder (an export folder holds only {', '.join(sorted(entries))})"
        )


def write_folder_atomically(folder: str, write: Callable[[str], object],
                            entries: frozenset[str] = SAVED_MODEL_ENTRIES,
                            flag: str = "export_dir") -> str:
    """`write(staged)` fills a staging folder beside `folder`, which then replaces `folder`
    as a whole: a failed or interrupted write leaves an earlier `folder` as it was and no
    staging folder behind. Only an empty folder or an earlier export (its entries all among
    `entries`) is replaced (`check_replaceable`). Returns `folder`."""
    folder = folder.rstrip("/")
    check_replaceable(folder, entries, flag)
    parent = os.path.dirname(folder)
    staging_folder(parent)
    staged, previous = staging_path(folder), staging_path(folder)
    try:
        write(staged)
        check_replaceable(folder, entries, flag)  # again: the write took a while
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
        if is_local(path) and os.path.isdir(path):
            raise OutputError(f"{path}: cannot write: it is a folder, and an output file "
                              f"goes there")
        probe = staging_path(path)
        try:
            staging_folder(os.path.dirname(path))
            with open_file(probe, "wb"):
                pass
            remove(probe)
        except OutputError:
            raise
        except BaseException as error:
            if not is_io_error(error):
                raise
            raise OutputError(f"{path}: cannot write: {describe_os_error(error)}") from None
        finally:
            removedirs_quietly(os.path.dirname(probe))


# ---------------------------------------------------------------------------------------
# Locks: one rule for every run that writes into a folder.


@contextlib.contextmanager
def output_lock(path: str, flag: str = "output_dir") -> Iterator[None]:
    """Holds `<folder>/.bert_tf.lock` (the kernel's flock) of the folder a run writes into,
    for the block. One rule, so two runs that touch one folder always meet there:
    - a run that owns the folder (`path` names a folder: a training output_dir, an export
      folder, a folder of shards) holds it exclusively;
    - a run that writes one named file into it (`path` names a file: a records file, a
      features file, a vocabulary) holds it shared, and the file's own
      `<folder>/.<name>.bert_tf.lock` exclusively: such runs may share a folder, each with
      its own file, but not with a run that owns the folder.
    A run that cannot have its lock is refused with an OutputError naming the folder and
    the holder. A holder that died, even by kill -9, holds nothing: the next run takes
    its lock over. Lock files are opened without following links, so a link planted at
    a lock's name is refused, never written through. The last holder removes the file.
    Remote folders (gs://) cannot be locked this way and are not."""
    if not is_local(path):
        yield
        return
    if is_folder(path):
        with _holding(os.path.join(path, LOCK_FILE), path, path, flag, shared=False):
            yield
        return
    folder = os.path.dirname(path) or "."
    with _holding(os.path.join(folder, LOCK_FILE), folder, path, flag, shared=True), \
            _holding(os.path.join(folder, f".{os.path.basename(path)}{LOCK_FILE}"), folder,
                     path, flag, shared=False):
        yield


@contextlib.contextmanager
def _holding(lock_path: str, folder: str, path: str, flag: str, shared: bool) -> Iterator[None]:
    """Holds one lock file; an exclusive holder writes who it is into it."""
    import fcntl

    descriptor = _acquire(lock_path, folder, path, flag, shared)
    try:
        if not shared:
            holder = (f"pid {os.getpid()} on {socket.gethostname()}, since "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(sys.argv)[:200]}")
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, holder.encode() + b"\n", 0)
        yield
    finally:
        try:  # the last holder (nobody else holds it) removes the file, if it is still ours
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.lstat(lock_path).st_ino == os.fstat(descriptor).st_ino:
                os.remove(lock_path)
        except OSError:
            pass
        os.close(descriptor)  # releases the lock


def _acquire(lock_path: str, folder: str, path: str, flag: str, shared: bool) -> int:
    """Opens (never through a link) and flocks `lock_path`; returns the descriptor.
    Retries when the file it locked was removed by a holder that was just leaving (then
    it locks the new one)."""
    import fcntl

    while True:
        try:
            os.makedirs(folder, exist_ok=True)
            descriptor = os.open(lock_path,
                                 os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as error:
            if os.path.islink(lock_path):
                raise OutputError(
                    f"{flag}: {lock_path} is a symbolic link (to {os.readlink(lock_path)}); "
                    f"this package writes its lock there and follows no link out of an "
                    f"output folder: remove it and rerun") from None
            raise OutputError(f"{flag}: cannot write {path}: {describe_os_error(error)}") from None
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            raise OutputError(f"{flag}: {lock_path} is not a regular file; this package keeps "
                              f"its lock there: remove it and rerun")
        try:
            fcntl.flock(descriptor, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 4096, 0).decode("utf-8", "replace").strip()
            os.close(descriptor)
            raise OutputError(
                f"{flag}: {path} is in use by another run "
                f"({holder or 'one that writes files into ' + folder}); wait for it to end "
                f"or choose another {flag}"
            ) from None
        try:
            if os.lstat(lock_path).st_ino == os.fstat(descriptor).st_ino:
                if shared:
                    os.ftruncate(descriptor, 0)  # no stale exclusive holder's name
                return descriptor
        except FileNotFoundError:
            pass
        os.close(descriptor)


@contextlib.contextmanager
def holding_output(path: str, flag: str) -> Iterator[None]:
    """For one run's output folder (a path ending in "/" or an existing folder) or output
    file: holds its `output_lock` and first removes what interrupted runs left staged."""
    with output_lock(path, flag):
        if is_folder(path):
            remove_stale_staging(path)
        else:
            directory, name = os.path.split(path)
            remove_stale_staging(directory, glob_lib.escape(name) if is_local(path) else name)
        yield


@contextlib.contextmanager
def holding_export(folder: str, flag: str,
                   entries: frozenset[str] = SAVED_MODEL_ENTRIES) -> Iterator[None]:
    """For an export folder that `write_folder_atomically` replaces as a whole: refuses one
    that is not empty nor an earlier export (`check_replaceable`), holds the folder's lock
    exclusively (as a training run into it would) and removes what interrupted exports
    left staged beside it."""
    folder = folder.rstrip("/")
    check_replaceable(folder, entries, flag)
    with output_lock(os.path.join(folder, ""), flag):
        directory, name = os.path.split(folder)
        remove_stale_staging(directory, glob_lib.escape(name) if is_local(folder) else name)
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
