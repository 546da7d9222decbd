"""create_pretraining_data.py --runner=beam: fast mode's shards as an Apache Beam pipeline.

The same shard plan as `--mode=fast` (pretraining_shards.plan_shards: the corpus and
`--shard_size_mb` only), the same per-shard generator, instance code and record bytes and
the same output names, so for the same flags and seed the files are byte-identical to fast
mode's, on any runner: the DirectRunner on one machine, Dataflow, Flink or Spark on many.
Files are read and written through Beam's FileSystems (local paths, gs://, ...).

The pipeline: Create(shards) -> Reshuffle -> MakeShard -> ToList -> Commit.
- MakeShard reads its shard's bytes, makes the instances and writes the records to a
  temporary file of its own, named uniquely per attempt, under `.bert_tf-staging/` beside
  the outputs; it emits (shard, temporary file, summary). A retried or speculative attempt
  writes another temporary file; the runner keeps one attempt's output per shard.
- Commit (one element, after every shard is made) renames each kept temporary file to its
  final name and deletes whatever other attempts left, so no final file is ever partial or
  written twice, and nothing is renamed before every shard has succeeded. Commit itself may
  run again (a file it already renamed is skipped).

Counters in the namespace "bert_tf" (documents, instances, bytes, skipped_lines, tokens,
masked) appear in the runner's metrics (the Dataflow console, ...) and in the summary line.
The workers need this package installed (Dataflow: `--setup_file` or a container image).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import shlex
import uuid
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from bert_tf import file_io
from bert_tf.data import pretraining_data as pd
from bert_tf.data import pretraining_shards as ps
from bert_tf.errors import UsageError

# Counter name -> the ShardSummary field it adds up.
COUNTERS = {"documents": "documents", "instances": "instances", "bytes": "bytes_read",
            "skipped_lines": "skipped_lines", "tokens": "tokens", "masked": "masked"}


def open_binary(path: str):
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def size_of(path: str) -> int:
    return FileSystems.match([path])[0].metadata_list[0].size_in_bytes


def make_folder(path: str) -> None:
    if not FileSystems.exists(path):
        FileSystems.mkdirs(path)


class MakeShard(beam.DoFn):
    """A shard -> its records in a temporary file unique to this attempt."""

    def __init__(self, worker_args: tuple, staging: Sequence[str]):
        self.worker_args = worker_args
        self.staging = list(staging)  # per shard: the prefix of its temporary files

    def setup(self):
        ps.start_worker(*self.worker_args)

    def process(self, shard: ps.Shard):
        instances, summary = ps.shard_instances(shard, open_binary)
        temporary = f"{self.staging[shard.index]}.{uuid.uuid4().hex}"
        make_folder(os.path.dirname(temporary))
        with FileSystems.create(temporary,
                                compression_type=CompressionTypes.UNCOMPRESSED) as writer:
            ps.write_shard(writer, instances)
        for name, field in COUNTERS.items():
            beam.metrics.Metrics.counter("bert_tf", name).inc(getattr(summary, field))
        yield dataclasses.replace(summary, path=temporary)


class Commit(beam.DoFn):
    """All shards' summaries -> final files renamed into place; leftovers deleted."""

    def __init__(self, finals: Sequence[str], staging: Sequence[str]):
        self.finals = list(finals)
        self.staging = list(staging)

    def process(self, summaries: list[ps.ShardSummary]):
        kept = {summary.index: summary.path for summary in summaries}
        if sorted(kept) != list(range(len(self.finals))):
            raise pd.PretrainingDataError(
                f"beam: {len(kept)} of {len(self.finals)} shards were made; nothing committed")
        if not sum(summary.documents for summary in summaries):
            return  # no text: nothing to commit (the launcher says so)
        for index, final in enumerate(self.finals):
            # Gone: an earlier attempt of this step renamed it (a runner may run a step
            # again after it succeeded, as it may any bundle).
            if FileSystems.exists(kept[index]):
                FileSystems.rename([kept[index]], [final])
            elif not FileSystems.exists(final):
                raise pd.PretrainingDataError(f"beam: shard {index}'s records {kept[index]} "
                                              f"are gone and {final} was not written")
        yield from remove_attempts(self.staging)


def remove_attempts(staging: Sequence[str]) -> list[str]:
    """Deletes every temporary file of these shards' attempts; returns their paths."""
    found = [metadata.path for result in FileSystems.match([f"{prefix}.*" for prefix in staging])
             for metadata in result.metadata_list]
    if found:
        FileSystems.delete(found)
    return found


def create_with_beam(input_files: Sequence[str], output_file: str, worker_args: tuple, *,
                     shard_size_mb: float, clean_output: bool,
                     pipeline_options: str = "") -> tuple[list[str], dict[str, int]]:
    """Runs the pipeline (options as on a Beam command line, e.g. "--runner=DirectRunner
    --direct_num_workers=2"); returns (output paths, the counters' totals).
    `worker_args` as pretraining_shards.start_worker takes them. The caller holds
    `file_io.output_lock` on the output place."""
    parse_pipeline_options(pipeline_options)  # a bad option fails before any work
    shards = ps.plan_shards(input_files, shard_size_mb, open_file=open_binary,
                            size_of=size_of)
    if not shards:
        raise pd.PretrainingDataError(f"input_file: {', '.join(input_files)} are empty")
    finals = ps.output_paths(output_file, len(shards))
    pd.check_writable(finals[:1])
    ps.prepare_output(output_file, finals, clean_output)
    staging = [file_io.staging_path(final) for final in finals]
    try:
        pipeline = beam.Pipeline(options=parse_pipeline_options(pipeline_options))
        made = (pipeline
                | "Shards" >> beam.Create(shards)
                | "Spread" >> beam.Reshuffle()
                | "MakeShard" >> beam.ParDo(MakeShard(worker_args, staging)))
        _ = (made
             | "All" >> beam.combiners.ToList()
             | "Commit" >> beam.ParDo(Commit(finals, staging)))
        result = pipeline.run()
        result.wait_until_finish()
    finally:
        remove_attempts(staging)
        file_io.removedirs_quietly(os.path.dirname(staging[0]))
    counters = {name: 0 for name in COUNTERS}
    for counter in result.metrics().query(
            beam.metrics.MetricsFilter().with_namespace("bert_tf"))["counters"]:
        counters[counter.key.metric.name] += counter.committed or counter.attempted
    if not counters["documents"]:
        raise pd.PretrainingDataError(
            f"input_file: {', '.join(input_files)} hold no text (no non-empty line)")
    return finals, counters


def parse_pipeline_options(text: str) -> PipelineOptions:
    """`--beam_pipeline_options` as Beam's PipelineOptions, checked: quoting, every option
    known to Beam with a valid value, and the runner; else one UsageError line (Beam's
    argparse would print its whole usage and exit, an unknown runner raise from deep
    inside the pipeline, and an unknown option be dropped with a warning)."""
    def fail(message: str) -> UsageError:
        return UsageError(f"beam_pipeline_options: {message} (in {text!r})")

    try:
        args = shlex.split(text)
    except ValueError as error:
        raise fail(str(error)) from None
    options = PipelineOptions(args)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stderr(printed):
            known = options.get_all_options()
            unknown = sorted(set(options.get_all_options(retain_unknown_options=True))
                             - set(known))
    except SystemExit:
        lines = printed.getvalue().strip().splitlines() or ["not valid"]
        raise fail(lines[-1].split("error: ", 1)[-1]) from None
    if unknown:
        raise fail(f"unknown option --{unknown[0]}; see Beam's pipeline options")
    try:
        beam.runners.create_runner(options.view_as(StandardOptions).runner or "DirectRunner")
    except (ValueError, ImportError) as error:
        raise fail(str(error).split(". ")[0]) from None
    return options


def summary_line(counters: dict[str, int]) -> str:
    """"12 documents, 340 instances, ..." from the counters."""
    return ", ".join(f"{counters[name]} {name.replace('_', ' ')}" for name in COUNTERS)
