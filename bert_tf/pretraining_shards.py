"""Fast mode of create_pretraining_data.py: the corpus cut into shards, made in parallel.

Each input file is cut at blank lines (document boundaries) into shards of at most
`shard_bytes`; each shard is read, tokenized and made into instances by a worker process
with its own generator, `random.Random(f"{seed}/{shard index}")`, and written to its own
output file. Instances are built by the same code as fidelity mode, so features follow the
same distribution; what differs is the scope of the random draws: documents are shuffled,
and NSP's random next segments are drawn, within a shard rather than the whole corpus.

The output is deterministic for fixed inputs, flags, seed and worker count (the worker
count sets the shard size of small corpora: at least one shard per worker). A worker holds
one shard at a time, so memory is bounded by the shard size, not the corpus. Files are
written under temporary names and renamed only when every shard has succeeded.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import random
import uuid
from collections.abc import Callable, Sequence

from bert_tf import file_io
from bert_tf import pretraining_data as pd
from bert_tf.tokenization import FullTokenizer

SHARDS_PER_WORKER = 4


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


def plan_shards(input_files: Sequence[str], num_workers: int, shard_size_mb: float) -> list[Shard]:
    """Cuts each file at blank lines into shards of at most shard_size_mb, and small enough
    that each worker gets SHARDS_PER_WORKER of them (they finish unevenly; a document longer
    than a shard stays whole)."""
    sizes = [file_io.size(path) for path in input_files]
    per_worker = math.ceil(sum(sizes) / (max(1, num_workers) * SHARDS_PER_WORKER))
    shard_bytes = max(1, min(int(shard_size_mb * 1e6), per_worker))
    shards: list[Shard] = []
    for path, size in zip(input_files, sizes, strict=True):
        start = 0
        with file_io.open_file(path, "rb") as handle:
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
    if output_file.endswith("/") or (file_io.is_local(output_file)
                                     and os.path.isdir(output_file)):
        return [os.path.join(output_file, f"part-{index:05d}-of-{num_shards:05d}.tfrecord")
                for index in range(num_shards)]
    return [f"{output_file}-{index:05d}-of-{num_shards:05d}" for index in range(num_shards)]


# One worker's tokenizer and settings, set once per process by _start_worker.
_worker: dict = {}


def _start_worker(vocab_file: str, do_lower_case: bool, options: pd.InstanceOptions, seed: int,
                  skip_invalid_utf8: bool) -> None:
    tokenizer = FullTokenizer(vocab_file, do_lower_case)
    _worker.update(tokenizer=tokenizer, vocab_words=list(tokenizer.vocab), options=options,
                   seed=seed, skip_invalid_utf8=skip_invalid_utf8)


def make_shard(job: tuple[Shard, str]) -> ShardSummary:
    """Reads, tokenizes, makes and writes one shard (in a worker process)."""
    shard, staging_path = job
    tokenizer, options = _worker["tokenizer"], _worker["options"]
    with file_io.open_file(shard.input_file, "rb") as handle:
        handle.seek(shard.start)
        data = handle.read(shard.end - shard.start)
    documents: list[list[list[str]]] = [[]]
    try:
        skipped = pd.add_documents(documents, data, tokenizer, _worker["skip_invalid_utf8"])
    except pd.InvalidLine as error:
        with file_io.open_file(shard.input_file, "rb") as handle:
            lines_before = handle.read(shard.start).count(b"\n")
        raise pd.invalid_utf8_error(
            shard.input_file, lines_before + error.line_index + 1, error.byte
        ) from None
    documents = [document for document in documents if document]
    rng = random.Random(f"{_worker['seed']}/{shard.index}")
    instances = pd.make_instances(documents, _worker["vocab_words"], options, rng)
    pd.write_instances(instances, tokenizer, options.max_seq_length,
                       options.max_predictions_per_seq, [staging_path])
    return ShardSummary(
        shard.index, staging_path, documents=len(documents), instances=len(instances),
        tokens=sum(len(i.tokens) for i in instances),
        masked=sum(len(i.masked_lm_positions) for i in instances), skipped_lines=skipped,
        bytes_read=len(data),
    )


def create_sharded(
    input_files: Sequence[str],
    output_file: str,
    vocab_file: str,
    do_lower_case: bool,
    options: pd.InstanceOptions,
    seed: int,
    num_workers: int,
    shard_size_mb: float = 8.0,
    skip_invalid_utf8: bool = False,
    progress: Callable[[ShardSummary, int, int], None] | None = None,
) -> tuple[list[str], list[ShardSummary]]:
    """Makes every shard with `num_workers` processes; returns (output paths, summaries in
    shard order). `progress(summary, done, total)` is called as each shard finishes."""
    shards = plan_shards(input_files, num_workers, shard_size_mb)
    if not shards:
        raise pd.PretrainingDataError(f"input_file: {', '.join(input_files)} are empty")
    finals = output_paths(output_file, len(shards))
    pd.check_writable(finals[:1])
    run_id = uuid.uuid4().hex
    staging = [f"{path}.incomplete-{run_id}" for path in finals]
    jobs = list(zip(shards, staging, strict=True))
    initargs = (vocab_file, do_lower_case, options, seed, skip_invalid_utf8)
    summaries: list[ShardSummary] = []
    pool = None
    try:
        if num_workers <= 1:
            _start_worker(*initargs)
            results = map(make_shard, jobs)
        else:
            context = multiprocessing.get_context(
                "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            )
            pool = context.Pool(min(num_workers, len(jobs)), _start_worker, initargs)
            results = pool.imap_unordered(make_shard, jobs)
        for summary in results:
            summaries.append(summary)
            if progress:
                progress(summary, len(summaries), len(jobs))
        if not sum(summary.documents for summary in summaries):
            raise pd.PretrainingDataError(
                f"input_file: {', '.join(input_files)} hold no text (no non-empty line)"
            )
        for source, target in zip(staging, finals, strict=True):
            file_io.rename(source, target)
    finally:
        if pool is not None:
            pool.terminate()
        for path in staging:
            if file_io.exists(path):
                file_io.remove(path)
    summaries.sort(key=lambda summary: summary.index)
    return finals, summaries
