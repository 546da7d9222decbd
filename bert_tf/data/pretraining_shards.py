"""Fast mode of create_pretraining_data.py: the corpus cut into shards, made in parallel.

Each input file is cut at blank lines (document boundaries) into shards of about
`shard_size_mb`; each shard is read, tokenized and made into instances by a worker process
with its own generator, `random.Random(f"{seed}/{shard index}")`, and written to its own
output file. Instances are built by the same code as fidelity mode, so features follow the
same distribution; what differs is the scope of the random draws: documents are shuffled,
and NSP's random next segments are drawn, within a shard rather than the whole corpus.

The shard plan depends on the input files' sizes and contents and `shard_size_mb` only,
so for fixed inputs, flags and seed the output is the same bytes on any machine and with
any number of workers (a corpus smaller than `workers x shard_size_mb` leaves workers
idle: give it a smaller shard size). A worker holds one shard at a time, so memory is
bounded by the shard size, not the corpus. Files are written under staging names and
renamed only when every shard has succeeded; a worker that dies (kill -9, the
out-of-memory killer) fails the run at once, naming its shard.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import random
import re
import signal
import traceback
from collections.abc import Callable, Sequence
from typing import BinaryIO

from bert_tf import file_io
from bert_tf.data import pretraining_data as pd
from bert_tf.data.tokenization import load_tokenizer
from bert_tf.errors import describe_os_error


@dataclasses.dataclass(frozen=True)
class Shard:
    """Bytes [start, end) of `input_file`: whole lines, starting a document (or the file)."""

    index: int
    input_file: str
    start: int
    end: int


@dataclasses.dataclass
class ShardSummary:
    """What one worker made of its shard."""

    index: int
    path: str  # where the records are, under a temporary name until all shards are done
    documents: int = 0
    instances: int = 0
    tokens: int = 0
    masked: int = 0
    skipped_lines: int = 0
    bytes_read: int = 0


def default_num_workers() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def read_binary(path: str) -> BinaryIO:
    """The default way shards open their files (file_io: local, or tf.io.gfile)."""
    return file_io.open_file(path, "rb")


def plan_shards(input_files: Sequence[str], shard_size_mb: float, *,
                open_file: Callable[[str], BinaryIO] = read_binary,
                size_of: Callable[[str], int] = file_io.size) -> list[Shard]:
    """Cuts each file at the first blank line at or after every `shard_size_mb` (so a
    shard holds about that much, whole documents; a document longer than a shard stays
    whole). Reads only around the cut points; depends on nothing but the files and the
    size, not on the machine, the runner or the number of workers."""
    sizes = [size_of(path) for path in input_files]
    shard_bytes = max(1, int(shard_size_mb * 1e6))
    shards: list[Shard] = []
    for path, size in zip(input_files, sizes, strict=True):
        start = 0
        with open_file(path) as handle:
            while start < size:
                end = _document_start_at_or_after(handle, start + shard_bytes, size)
                shards.append(Shard(len(shards), path, start, end))
                start = end
    return shards


def _document_start_at_or_after(handle, offset: int, size: int) -> int:
    """The offset of the first line after a blank line at or after `offset` (else `size`)."""
    if offset >= size:
        return size
    handle.seek(offset - 1)  # finish the line `offset` falls in (offset > 0 here)
    position = offset - 1 + len(handle.readline())
    while position < size:
        line = handle.readline()
        position += len(line)
        if not line.strip():
            return position
    return size


def output_paths(output_file: str, num_shards: int) -> list[str]:
    """One path per shard: `output_file % index` when it holds a `%d`-style field, files
    `part-00000-of-00008.tfrecord`... in it when it is a directory (or ends with "/"), else
    `<output_file>-00000-of-00008`."""
    if "%" in output_file:
        try:
            paths = [output_file % index for index in range(num_shards)]
        except (TypeError, ValueError) as error:
            raise pd.PretrainingDataError(
                f"output_file: {output_file!r} is not a %-pattern with one integer field, "
                f"such as out/part-%05d.tfrecord ({error})"
            ) from None
        if len(set(paths)) != num_shards:
            raise pd.PretrainingDataError(
                f"output_file: {output_file!r} gives the same name to different shards"
            )
        return paths
    if file_io.is_folder(output_file):
        return [os.path.join(output_file, f"part-{index:05d}-of-{num_shards:05d}.tfrecord")
                for index in range(num_shards)]
    return [f"{output_file}-{index:05d}-of-{num_shards:05d}" for index in range(num_shards)]


def shard_glob(output_file: str) -> str:
    """A glob that matches the shard files `output_paths` makes for any shard count."""
    if "%" in output_file:
        return re.sub(r"%[-+ #0]*\d*[dui]", "*", output_file)
    if file_io.is_folder(output_file):
        return os.path.join(output_file, "part-*-of-*.tfrecord")
    return f"{output_file}-*-of-*"


def prepare_output(output_file: str, finals: Sequence[str], clean: bool) -> None:
    """Removes what interrupted runs left staged there, and refuses (or with `clean`
    removes) shards of an earlier run that this run would not overwrite, e.g. its
    part-*-of-00008 beside this run's part-*-of-00004: a reader's glob would mix them."""
    pattern = shard_glob(output_file)
    directory, name_pattern = os.path.split(pattern)
    file_io.remove_stale_staging(directory, name_pattern)
    stale = sorted(set(file_io.glob(pattern)) - set(finals))
    stale = [path for path in stale if not file_io.is_unfinished(path)]
    if stale and not clean:
        raise pd.PretrainingDataError(
            f"output_file: {directory or '.'} holds {len(stale)} shards of another run "
            f"(e.g. {os.path.basename(stale[0])}) that this run's {len(finals)} shards would "
            f"not replace, and a glob of the folder would read both; remove them, choose "
            f"another output folder, or pass --clean_output to remove them"
        )
    for path in stale:
        file_io.remove(path)


# One worker's tokenizer and settings, set once per process by start_worker.
_worker: dict = {}


def start_worker(tokenizer_files: tuple[str, bool, str | None], options: pd.InstanceOptions,
                  seed: int, skip_invalid_utf8: bool) -> None:
    tokenizer = load_tokenizer(*tokenizer_files)
    _worker.update(tokenizer=tokenizer, vocab_words=list(tokenizer.vocab), options=options,
                   seed=seed, skip_invalid_utf8=skip_invalid_utf8)


@dataclasses.dataclass(frozen=True)
class ShardJob:
    """One shard to make, the staging file to write it to and its final name."""

    shard: Shard
    staging_path: str
    final_path: str


@pd.without_cyclic_gc()
def shard_instances(shard: Shard, open_file: Callable[[str], BinaryIO] = read_binary,
                    ) -> tuple[list[pd.TrainingInstance], ShardSummary]:
    """Reads and tokenizes one shard and makes its instances with the shard's own
    generator (in a worker: start_worker ran). The summary's path is not set yet."""
    tokenizer, options = _worker["tokenizer"], _worker["options"]
    with open_file(shard.input_file) as handle:
        handle.seek(shard.start)
        data = handle.read(shard.end - shard.start)
    documents: list[list[list[str]]] = [[]]
    try:
        skipped = pd.add_documents(documents, data, tokenizer, _worker["skip_invalid_utf8"])
    except pd.InvalidLine as error:
        with open_file(shard.input_file) as handle:
            lines_before = handle.read(shard.start).count(b"\n")
        raise pd.invalid_utf8_error(
            shard.input_file, lines_before + error.line_index + 1, error.byte
        ) from None
    documents = [document for document in documents if document]
    rng = random.Random(f"{_worker['seed']}/{shard.index}")
    instances = pd.make_instances(documents, _worker["vocab_words"], options, rng)
    return instances, ShardSummary(
        shard.index, "", documents=len(documents), instances=len(instances),
        tokens=sum(len(i.tokens) for i in instances),
        masked=sum(len(i.masked_lm_positions) for i in instances), skipped_lines=skipped,
        bytes_read=len(data),
    )


def write_shard(writer: BinaryIO, instances: list[pd.TrainingInstance]) -> None:
    """One shard's records, the same bytes as fidelity mode would write for them."""
    options = _worker["options"]
    pd.write_records([writer], instances, _worker["tokenizer"], options.max_seq_length,
                     options.max_predictions_per_seq)


def make_shard(job: ShardJob) -> ShardSummary:
    """Reads, tokenizes, makes and writes one shard (in a worker process) to its staging
    path; on any failure the staged file is removed."""
    instances, summary = shard_instances(job.shard)
    try:
        file_io.makedirs(os.path.dirname(job.staging_path))
        with file_io.open_file(job.staging_path, "wb") as writer:
            write_shard(writer, instances)
    except BaseException as error:
        with contextlib.suppress(OSError):
            file_io.remove(job.staging_path)
        if file_io.is_io_error(error):
            raise pd.PretrainingDataError(
                f"output_file: cannot write {job.final_path}: {describe_os_error(error)}"
            ) from None
        raise
    return dataclasses.replace(summary, path=job.staging_path)


class WorkerDied(pd.PretrainingDataError):
    """A worker process ended without reporting its shard (killed, out of memory)."""


def _die_with_parent() -> None:
    """Linux: this process gets SIGKILL when its parent dies, even by kill -9."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _worker_main(connection, initargs: tuple) -> None:
    """A worker process: makes the shards the parent sends until it sends None."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    start_worker(*initargs)
    while (job := connection.recv()) is not None:
        try:
            connection.send(("done", make_shard(job)))
        except pd.PretrainingDataError as error:
            connection.send(("error", str(error)))
        except BaseException:  # a bug: the parent shows the worker's traceback
            connection.send(("bug", traceback.format_exc()))


def _exit_description(process) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        hint = (" (the out-of-memory killer sends it; a smaller --shard_size_mb or fewer "
                "--num_workers needs less memory)" if -code == signal.SIGKILL else "")
        return f"was killed by signal {-code} ({name}){hint}"
    return f"exited with code {code}"


def _run_in_workers(jobs: list[ShardJob], num_workers: int, initargs: tuple):
    """Yields each job's ShardSummary as worker processes finish them. A worker that dies
    or fails ends the run at once with an error naming the shard; every worker is stopped
    on the way out."""
    context = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    )
    workers = []
    try:
        for _ in range(min(num_workers, len(jobs))):
            parent_end, child_end = context.Pipe()
            process = context.Process(target=_worker_main, args=(child_end, initargs),
                                      daemon=True)
            process.start()
            child_end.close()
            workers.append((process, parent_end))
        pending = list(reversed(jobs))
        busy: dict[int, ShardJob] = {}
        for index, (_, connection) in enumerate(workers):
            if pending:
                busy[index] = pending.pop()
                connection.send(busy[index])
        while busy:
            waiting = {}
            for index in busy:
                process, connection = workers[index]
                waiting[connection] = waiting[process.sentinel] = index
            for ready in multiprocessing.connection.wait(list(waiting)):
                index = waiting[ready]
                process, connection = workers[index]
                if index not in busy:
                    continue
                job = busy[index]
                try:
                    kind, value = connection.recv()
                except (EOFError, OSError):
                    process.join(5)
                    shard = job.shard
                    raise WorkerDied(
                        f"shard {shard.index} ({shard.input_file}, bytes {shard.start}-"
                        f"{shard.end}): worker process {process.pid} {_exit_description(process)}"
                        f"; no output was written; rerun the same command"
                    ) from None
                if kind == "error":
                    raise pd.PretrainingDataError(value)
                if kind == "bug":
                    raise RuntimeError(f"shard {job.shard.index}: worker failed:\n{value}")
                del busy[index]
                if pending:
                    busy[index] = pending.pop()
                    connection.send(busy[index])
                yield value
    finally:
        for process, connection in workers:
            with contextlib.suppress(Exception):
                connection.close()
            if process.is_alive():
                process.kill()
            process.join(10)


def create_sharded(
    input_files: Sequence[str],
    output_file: str,
    vocab_file: str,
    do_lower_case: bool,
    options: pd.InstanceOptions,
    *,
    merges_file: str | None = None,
    seed: int,
    num_workers: int,
    shard_size_mb: float = 8.0,
    skip_invalid_utf8: bool = False,
    progress: Callable[[ShardSummary, int, int], None] | None = None,
    clean_output: bool = False,
) -> tuple[list[str], list[ShardSummary]]:
    """Makes every shard with `num_workers` processes; returns (output paths, summaries in
    shard order). `progress(summary, done, total)` is called as each shard finishes.

    The caller holds `file_io.output_lock` on the output place. Shards are written to
    staging names and renamed only when all succeeded; on any failure (a worker killed,
    a full disk, Ctrl-C, SIGTERM) no staged file is left and no worker keeps running."""
    shards = plan_shards(input_files, shard_size_mb)
    if not shards:
        raise pd.PretrainingDataError(f"input_file: {', '.join(input_files)} are empty")
    finals = output_paths(output_file, len(shards))
    pd.check_writable(finals[:1])
    prepare_output(output_file, finals, clean_output)
    jobs = [ShardJob(shard, file_io.staging_path(final), final)
            for shard, final in zip(shards, finals, strict=True)]
    initargs = ((vocab_file, do_lower_case, merges_file), options, seed, skip_invalid_utf8)
    summaries: list[ShardSummary] = []
    try:
        if num_workers <= 1:
            start_worker(*initargs)
            results = map(make_shard, jobs)
        else:
            results = _run_in_workers(jobs, num_workers, initargs)
        for summary in results:
            summaries.append(summary)
            if progress:
                progress(summary, len(summaries), len(jobs))
        if not sum(summary.documents for summary in summaries):
            raise pd.PretrainingDataError(
                f"input_file: {', '.join(input_files)} hold no text (no non-empty line)"
            )
        for job in jobs:
            file_io.rename(job.staging_path, job.final_path)
    finally:
        for job in jobs:
            if file_io.exists(job.staging_path):
                file_io.remove(job.staging_path)
        file_io.removedirs_quietly(os.path.dirname(jobs[0].staging_path))
    summaries.sort(key=lambda summary: summary.index)
    return finals, summaries
