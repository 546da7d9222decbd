"""Creates masked-LM / next-sentence pretraining TFRecords, as the original script does.

    python create_pretraining_data.py --input_file=corpus/*.txt --output_file=out/data.tfrecord \
        --vocab_file=uncased_L-12_H-768_A-12/vocab.txt --do_lower_case=True \
        --max_seq_length=128 --max_predictions_per_seq=20 --masked_lm_prob=0.15 \
        --random_seed=12345 --dupe_factor=5

Flags, defaults and output bytes are the original's (see bert_tf/pretraining_data.py).
`--mode=fast` cuts the corpus into shards made in parallel by `--num_workers` processes and
writes one file per shard (see bert_tf/pretraining_shards.py):

    python create_pretraining_data.py --mode=fast --input_file=corpus/*.txt \
        --output_file=out/ --vocab_file=vocab.txt ...   # out/part-00000-of-00016.tfrecord...
"""

import contextlib
import random
import time

from absl import app, flags

from bert_tf import errors, file_io, pretraining_data, pretraining_shards
from bert_tf.tokenization import FullTokenizer

flags.DEFINE_string("input_file", None, "Input raw text file (or comma-separated list of globs).")
flags.DEFINE_string(
    "output_file", None, "Output TF example file (or comma-separated list of files)."
)
flags.DEFINE_string("vocab_file", None, "The vocabulary file that the BERT model was trained on.")
flags.DEFINE_bool("do_lower_case", True, "Whether to lower case the input text.")
flags.DEFINE_bool("do_whole_word_mask", False, "Whether to mask whole words, not word pieces.")
flags.DEFINE_integer("max_seq_length", 128, "Maximum sequence length.")
flags.DEFINE_integer("max_predictions_per_seq", 20, "Maximum masked LM predictions per sequence.")
flags.DEFINE_integer("random_seed", 12345, "Random seed for data generation.")
flags.DEFINE_integer("dupe_factor", 10, "Number of times to duplicate the input with new masks.")
flags.DEFINE_float("masked_lm_prob", 0.15, "Masked LM probability.")
flags.DEFINE_float(
    "short_seq_prob", 0.1, "Probability of creating sequences shorter than the maximum length."
)
flags.DEFINE_enum(
    "masking", "static", ["static", "dynamic"],
    "static: the original's masks, written into the records. dynamic (RoBERTa): unmasked "
    "records; run_pretraining.py --dynamic_masking draws a fresh mask each time one is read.",
)
flags.DEFINE_enum(
    "packing", "nsp", ["nsp", "full_sentences", "doc_sentences"],
    "nsp: the original's sentence pairs with next-sentence labels. full_sentences / "
    "doc_sentences (RoBERTa, no NSP): contiguous sentences up to max_seq_length, crossing "
    "document boundaries with a [SEP] or not.",
)
flags.DEFINE_bool(
    "sentence_order_prediction", False,
    "ALBERT's SOP: next_sentence_labels mark segments swapped (1) or in order (0) instead of "
    "a random next segment.",
)
flags.DEFINE_integer(
    "ngram_masking", 1,
    "ALBERT's n-gram masking: mask spans of up to this many words (P(n) ~ 1/n); 1 keeps the "
    "original's single-token (or whole-word) masking.",
)
flags.DEFINE_bool(
    "skip_invalid_utf8", False,
    "Skip (and count) input lines that are not valid UTF-8 instead of stopping with an error.",
)
flags.DEFINE_enum(
    "mode", "fidelity", ["fidelity", "fast"],
    "fidelity: byte-identical to the original's output. fast: the corpus cut into shards at "
    "blank lines, made in parallel (--num_workers), one output file per shard; the same "
    "distribution of features, documents shuffled and paired within a shard.",
)
flags.DEFINE_integer("num_workers", 0, "Fast mode: worker processes (0: every core).")
flags.DEFINE_float("shard_size_mb", 8.0, "Fast mode: the most input text one shard holds.")
flags.DEFINE_bool(
    "clean_output", False,
    "Fast mode: remove shards of an earlier run (another shard count) from the output "
    "folder instead of refusing to write beside them.",
)
FLAGS = flags.FLAGS


def main(_):
    errors.run_script("create_pretraining_data.py", run)


def run():
    start = time.perf_counter()
    pretraining_data.validate_flags(
        FLAGS.max_seq_length, FLAGS.max_predictions_per_seq, FLAGS.masked_lm_prob
    )
    options = pretraining_data.InstanceOptions(
        max_seq_length=FLAGS.max_seq_length,
        max_predictions_per_seq=FLAGS.max_predictions_per_seq,
        dupe_factor=FLAGS.dupe_factor, masked_lm_prob=FLAGS.masked_lm_prob,
        short_seq_prob=FLAGS.short_seq_prob, do_whole_word_mask=FLAGS.do_whole_word_mask,
        mask=FLAGS.masking == "static", packing=FLAGS.packing,
        sentence_order=FLAGS.sentence_order_prediction, max_ngram=FLAGS.ngram_masking,
    )
    if FLAGS.dupe_factor < 1:
        raise pretraining_data.PretrainingDataError(
            f"dupe_factor must be at least 1, found {FLAGS.dupe_factor}"
        )
    input_files = file_io.expand_patterns(FLAGS.input_file, sort=False)
    megabytes = sum(file_io.size(f) for f in input_files) / 1e6
    print(f"*** Reading from {len(input_files)} input files ({megabytes:.2f} MB) ***")
    if FLAGS.mode == "fast":
        paths, counts, tokens, masked = run_fast(input_files, options, megabytes, start)
    else:
        paths, counts, tokens, masked = run_fidelity(input_files, options, megabytes, start)
    seconds = time.perf_counter() - start
    for path, count in zip(paths, counts, strict=True):
        print(f"Wrote {count} instances to {path}")
    total = sum(counts)
    if total:
        print(
            f"Total {total} instances in {len(paths)} files, {seconds:.1f} s "
            f"({megabytes / seconds:.2f} MB/s); mean tokens {tokens / total:.1f}, masked tokens "
            f"{masked} ({masked / total:.1f} per instance)"
        )


def run_fidelity(input_files, options, megabytes, start):
    """The original's algorithm in one process; returns (paths, counts, tokens, masked)."""
    output_files = FLAGS.output_file.split(",")
    with contextlib.ExitStack() as held:
        for path in output_files:
            held.enter_context(file_io.holding_output(path, "output_file"))
        return make_fidelity(input_files, output_files, options, megabytes, start)


def make_fidelity(input_files, output_files, options, megabytes, start):
    pretraining_data.check_writable(output_files)
    tokenizer = FullTokenizer(vocab_file=FLAGS.vocab_file, do_lower_case=FLAGS.do_lower_case)
    documents, skipped = pretraining_data.read_documents(
        input_files, tokenizer, skip_invalid_utf8=FLAGS.skip_invalid_utf8
    )
    seconds = time.perf_counter() - start
    print(f"Read {len(documents)} documents ({megabytes / seconds:.2f} MB/s); "
          f"skipped {skipped} invalid UTF-8 lines", flush=True)
    instances = pretraining_data.make_instances(
        documents, list(tokenizer.vocab.keys()), options, random.Random(FLAGS.random_seed)
    )
    print(f"Made {len(instances)} instances in {time.perf_counter() - start:.1f} s", flush=True)

    def progress(written: int) -> None:
        elapsed = time.perf_counter() - start
        print(f"  {written}/{len(instances)} instances written, {len(documents)} documents, "
              f"{megabytes / elapsed:.2f} MB/s of input overall", flush=True)

    counts = pretraining_data.write_instances(
        instances, tokenizer, options.max_seq_length, options.max_predictions_per_seq,
        output_files, progress,
    )
    tokens = sum(len(i.tokens) for i in instances)
    masked = sum(len(i.masked_lm_positions) for i in instances)
    return output_files, counts, tokens, masked


def run_fast(input_files, options, megabytes, start):
    """Shards in parallel; returns (paths, counts, tokens, masked)."""
    if "," in FLAGS.output_file:
        raise pretraining_data.PretrainingDataError(
            "output_file: fast mode writes one file per shard; give one pattern such as "
            "out/part-%05d.tfrecord or a directory, not a comma-separated list"
        )
    if FLAGS.shard_size_mb <= 0 or FLAGS.num_workers < 0:
        raise pretraining_data.PretrainingDataError(
            f"shard_size_mb must be > 0 and num_workers >= 0 (0: every core), found "
            f"{FLAGS.shard_size_mb} and {FLAGS.num_workers}"
        )
    FullTokenizer(FLAGS.vocab_file, FLAGS.do_lower_case)  # a bad vocabulary fails here, once
    workers = FLAGS.num_workers or pretraining_shards.default_num_workers()
    totals = {"documents": 0, "instances": 0, "bytes": 0}

    def progress(summary, done: int, total: int) -> None:
        totals["documents"] += summary.documents
        totals["instances"] += summary.instances
        totals["bytes"] += summary.bytes_read
        elapsed = time.perf_counter() - start
        print(f"  shard {done}/{total}: {totals['documents']} documents, "
              f"{totals['instances']} instances, {totals['bytes'] / 1e6 / elapsed:.2f} MB/s",
              flush=True)

    with file_io.output_lock(FLAGS.output_file, "output_file"):
        paths, summaries = pretraining_shards.create_sharded(
            input_files, FLAGS.output_file, FLAGS.vocab_file, FLAGS.do_lower_case, options,
            seed=FLAGS.random_seed, num_workers=workers, shard_size_mb=FLAGS.shard_size_mb,
            skip_invalid_utf8=FLAGS.skip_invalid_utf8, progress=progress,
            clean_output=FLAGS.clean_output,
        )
    skipped = sum(s.skipped_lines for s in summaries)
    print(f"{workers} workers, {len(paths)} shards; skipped {skipped} invalid UTF-8 lines")
    return (paths, [s.instances for s in summaries], sum(s.tokens for s in summaries),
            sum(s.masked for s in summaries))


if __name__ == "__main__":
    flags.mark_flags_as_required(["input_file", "output_file", "vocab_file"])
    app.run(main)
