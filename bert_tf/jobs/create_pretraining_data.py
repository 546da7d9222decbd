"""create_pretraining_data.py's job: text -> masked-LM / next-sentence TFRecords.

Two modes. `fidelity` is the original's algorithm in one process: the same input, vocabulary,
flags and seed give byte-identical files. `fast` cuts the corpus into shards at blank lines
and makes them on every core (pretraining_shards.py), one output file per shard. With
`--merges_file` the vocabulary is a byte-level BPE `vocab.json` (RoBERTa style, bpe.py).
Imports no TensorFlow: it starts in a fraction of a second.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import sys
import time

from bert_tf import file_io
from bert_tf.data import pretraining_data, pretraining_shards
from bert_tf.data.tokenization import load_tokenizer
from bert_tf.errors import UsageError
from bert_tf.options import JobOptions, option
from bert_tf.progress import Progress


@dataclasses.dataclass(kw_only=True)
class DataOptions(JobOptions):
    """The flags of create_pretraining_data.py: the original's, then additions."""

    input_file: str = option(help="Input raw text file (or comma-separated list of globs).",
                             required=True)
    output_file: str = option(help="Output TF example file (or comma-separated list of "
                                   "files).", required=True)
    vocab_file: str = option(help="The vocabulary file that the BERT model was trained on.",
                             required=True)
    do_lower_case: bool = option(True, "Whether to lower case the input text.")
    do_whole_word_mask: bool = option(False, "Whether to mask whole words, not word pieces.")
    max_seq_length: int = option(128, "Maximum sequence length.")
    max_predictions_per_seq: int = option(20, "Maximum masked LM predictions per sequence.")
    random_seed: int = option(12345, "Random seed for data generation.")
    dupe_factor: int = option(10, "Number of times to duplicate the input with new masks.")
    masked_lm_prob: float = option(0.15, "Masked LM probability.")
    short_seq_prob: float = option(
        0.1, "Probability of creating sequences shorter than the maximum length.")
    # Additions.
    merges_file: str | None = option(
        None, "Byte-level BPE (RoBERTa): the merges.txt of a vocab.json given as vocab_file; "
        "do_lower_case then lowercases the text before BPE.")
    masking: str = option(
        "static", "static: the original's masks, written into the records. dynamic "
        "(RoBERTa): unmasked records; run_pretraining.py --dynamic_masking draws a fresh mask "
        "each time one is read.", choices=("static", "dynamic"))
    packing: str = option(
        "nsp", "nsp: the original's sentence pairs with next-sentence labels. full_sentences "
        "/ doc_sentences (RoBERTa, no NSP): contiguous sentences up to max_seq_length, "
        "crossing document boundaries with a [SEP] or not.",
        choices=("nsp", "full_sentences", "doc_sentences"))
    sentence_order_prediction: bool = option(
        False, "ALBERT's SOP: next_sentence_labels mark segments swapped (1) or in order (0) "
        "instead of a random next segment.")
    ngram_masking: int = option(
        1, "ALBERT's n-gram masking: mask spans of up to this many words (P(n) ~ 1/n); 1 keeps "
        "the original's single-token (or whole-word) masking.")
    skip_invalid_utf8: bool = option(
        False, "Skip (and count) input lines that are not valid UTF-8 instead of stopping "
        "with an error.")
    mode: str = option(
        "fidelity", "fidelity: byte-identical to the original's output. fast: the corpus cut "
        "into shards at blank lines, made in parallel (--num_workers), one output file per "
        "shard; the same distribution of features, documents shuffled and paired within a "
        "shard.", choices=("fidelity", "fast"))
    num_workers: int = option(0, "Fast mode: worker processes (0: every core).")
    shard_size_mb: float = option(8.0, "Fast mode: input text per shard (cut at the next "
                                       "blank line). With the seed it alone decides the "
                                       "output, whatever --num_workers; a corpus smaller "
                                       "than workers x this leaves workers idle.")
    clean_output: bool = option(
        False, "Fast mode: remove shards of an earlier run (another shard count) from the "
        "output folder instead of refusing to write beside them.")
    runner: str = option(
        "local", "local: this machine's processes. beam: fast mode's shards as an Apache "
        "Beam pipeline (the same bytes as --mode=fast; needs the [beam] extra), on the "
        "runner --beam_pipeline_options names.", choices=("local", "beam"))
    beam_pipeline_options: str = option(
        "", 'With --runner=beam: Beam pipeline options, as on its command line, e.g. '
        '"--runner=DataflowRunner --project=P --region=R --temp_location=gs://B/tmp".')

    def instance_options(self) -> pretraining_data.InstanceOptions:
        """The instance-making options these flags ask for, checked."""
        pretraining_data.validate_flags(self.max_seq_length, self.max_predictions_per_seq,
                                        self.masked_lm_prob)
        if self.dupe_factor < 1:
            raise pretraining_data.PretrainingDataError(
                f"dupe_factor must be at least 1, found {self.dupe_factor}")
        if self.merges_file and self.do_whole_word_mask:
            raise UsageError("do_whole_word_mask needs WordPiece '##' continuations; BPE "
                             "(--merges_file) marks word starts instead, which it does not read")
        return pretraining_data.InstanceOptions(
            max_seq_length=self.max_seq_length,
            max_predictions_per_seq=self.max_predictions_per_seq,
            dupe_factor=self.dupe_factor, masked_lm_prob=self.masked_lm_prob,
            short_seq_prob=self.short_seq_prob, do_whole_word_mask=self.do_whole_word_mask,
            mask=self.masking == "static", packing=self.packing,
            sentence_order=self.sentence_order_prediction, max_ngram=self.ngram_masking,
        )


@dataclasses.dataclass
class Written:
    """What a run wrote: files, instances per file (None: not known per file), tokens,
    masked tokens and instances in all."""

    paths: list[str]
    counts: list[int] | None
    tokens: int
    masked: int
    instances: int


def run(options: DataOptions) -> Written:
    """Makes the records as the mode says and prints the original's summary lines."""
    start = time.perf_counter()
    instance_options = options.instance_options()
    input_files = file_io.expand_patterns(options.input_file, sort=False)
    megabytes = sum(file_io.size(f) for f in input_files) / 1e6
    print(f"*** Reading from {len(input_files)} input files ({megabytes:.2f} MB) ***")
    if options.runner == "beam":
        make = make_beam
    else:
        make = make_fast if options.mode == "fast" else make_fidelity
    written = make(options, input_files, instance_options, megabytes, start)
    seconds = time.perf_counter() - start
    for path, count in zip(written.paths, written.counts or [], strict=False):
        print(f"Wrote {count} instances to {path}")
    total = written.instances
    if total:
        print(
            f"Total {total} instances in {len(written.paths)} files, {seconds:.1f} s "
            f"({megabytes / seconds:.2f} MB/s); mean tokens {written.tokens / total:.1f}, "
            f"masked tokens {written.masked} ({written.masked / total:.1f} per instance)"
        )
    return written


def make_fidelity(options: DataOptions, input_files: list[str],
                  instance_options: pretraining_data.InstanceOptions, megabytes: float,
                  start: float) -> Written:
    """The original's algorithm in one process, holding every output file."""
    output_files = options.output_file.split(",")
    with contextlib.ExitStack() as held:
        for path in output_files:
            held.enter_context(file_io.holding_output(path, "output_file"))
        pretraining_data.check_writable(output_files)
        held.enter_context(pretraining_data.without_cyclic_gc())
        tokenizer = load_tokenizer(options.vocab_file, options.do_lower_case,
                                   options.merges_file)
        documents, skipped = pretraining_data.read_documents(
            input_files, tokenizer, skip_invalid_utf8=options.skip_invalid_utf8)
        print(f"Read {len(documents)} documents ({megabytes / (time.perf_counter() - start):.2f}"
              f" MB/s); skipped {skipped} invalid UTF-8 lines", flush=True)
        instances = pretraining_data.make_instances(
            documents, list(tokenizer.vocab.keys()), instance_options,
            random.Random(options.random_seed))
        print(f"Made {len(instances)} instances in {time.perf_counter() - start:.1f} s",
              flush=True)

        shown = Progress("  writing", len(instances), "instances", stream=sys.stdout)

        def progress(written: int) -> None:
            elapsed = time.perf_counter() - start
            shown.update(written, f"{megabytes / elapsed:.2f} MB/s of input overall")

        counts = pretraining_data.write_instances(
            instances, tokenizer, instance_options.max_seq_length,
            instance_options.max_predictions_per_seq, output_files, progress)
        shown.finish()
    return Written(output_files, counts, sum(len(i.tokens) for i in instances),
                   sum(len(i.masked_lm_positions) for i in instances), len(instances))


def make_fast(options: DataOptions, input_files: list[str],
              instance_options: pretraining_data.InstanceOptions, megabytes: float,
              start: float) -> Written:
    """Shards on `num_workers` processes (pretraining_shards.create_sharded)."""
    check_shard_flags(options)
    workers = options.num_workers or pretraining_shards.default_num_workers()
    totals = {"documents": 0, "instances": 0, "bytes": 0}
    shown: list[Progress] = []

    def progress(summary, done: int, total: int) -> None:
        totals["documents"] += summary.documents
        totals["instances"] += summary.instances
        totals["bytes"] += summary.bytes_read
        rate = totals["bytes"] / 1e6 / (time.perf_counter() - start)
        if not shown:
            shown.append(Progress("  shard", total, "shards", log_every=1, stream=sys.stdout))
        shown[0].update(done, f"{totals['documents']} documents, {totals['instances']} "
                              f"instances, {rate:.2f} MB/s")

    with shards_folder_lock(options.output_file):
        paths, summaries = pretraining_shards.create_sharded(
            input_files, options.output_file, options.vocab_file, options.do_lower_case,
            instance_options, merges_file=options.merges_file, seed=options.random_seed,
            num_workers=workers, shard_size_mb=options.shard_size_mb,
            skip_invalid_utf8=options.skip_invalid_utf8, progress=progress,
            clean_output=options.clean_output,
        )
    for bar in shown:
        bar.finish()
    skipped = sum(s.skipped_lines for s in summaries)
    print(f"{workers} workers, {len(paths)} shards; skipped {skipped} invalid UTF-8 lines")
    if len(paths) < workers:
        print(f"Only {len(paths)} shards for {workers} workers: a smaller --shard_size_mb "
              f"would keep every worker busy (it changes the output, as a seed does)")
    return Written(paths, [s.instances for s in summaries], sum(s.tokens for s in summaries),
                   sum(s.masked for s in summaries), sum(s.instances for s in summaries))


def shards_folder_lock(output_file: str):
    """Fast mode and Beam write a set of shards, remove stale staging and (--clean_output)
    another run's shards in their folder: they hold that folder exclusively
    (file_io.output_lock), so another run into it, with any prefix, is refused."""
    folder = os.path.dirname(pretraining_shards.shard_glob(output_file)) or "."
    return file_io.output_lock(os.path.join(folder, ""), "output_file")


def check_shard_flags(options: DataOptions) -> None:
    """The output and shard flags fast mode and Beam need; a bad vocabulary fails here,
    once, not in every worker."""
    if "," in options.output_file:
        raise pretraining_data.PretrainingDataError(
            "output_file: fast mode writes one file per shard; give one pattern such as "
            "out/part-%05d.tfrecord or a directory, not a comma-separated list")
    if options.shard_size_mb <= 0 or options.num_workers < 0:
        raise pretraining_data.PretrainingDataError(
            f"shard_size_mb must be > 0 and num_workers >= 0 (0: every core), found "
            f"{options.shard_size_mb} and {options.num_workers}")
    load_tokenizer(options.vocab_file, options.do_lower_case, options.merges_file)


def make_beam(options: DataOptions, input_files: list[str],
              instance_options: pretraining_data.InstanceOptions, megabytes: float,
              start: float) -> Written:
    """Fast mode's shards as an Apache Beam pipeline (beam_shards.py)."""
    check_shard_flags(options)
    try:
        from bert_tf.data import beam_shards  # Apache Beam: only this runner needs it
    except ImportError as error:
        raise UsageError(f"--runner=beam needs Apache Beam ({error}); install the [beam] "
                         f"extra: pip install -e '.[beam]'") from None
    worker_args = ((options.vocab_file, options.do_lower_case, options.merges_file),
                   instance_options, options.random_seed, options.skip_invalid_utf8)
    with shards_folder_lock(options.output_file):
        paths, counters = beam_shards.create_with_beam(
            input_files, options.output_file, worker_args,
            shard_size_mb=options.shard_size_mb, clean_output=options.clean_output,
            pipeline_options=options.beam_pipeline_options)
    print(f"Beam: {len(paths)} shards; {beam_shards.summary_line(counters)}")
    return Written(paths, None, counters["tokens"], counters["masked"], counters["instances"])
