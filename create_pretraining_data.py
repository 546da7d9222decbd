"""Creates masked-LM / next-sentence pretraining TFRecords, as the original script does.

    python create_pretraining_data.py --input_file=corpus/*.txt --output_file=out/data.tfrecord \
        --vocab_file=uncased_L-12_H-768_A-12/vocab.txt --do_lower_case=True \
        --max_seq_length=128 --max_predictions_per_seq=20 --masked_lm_prob=0.15 \
        --random_seed=12345 --dupe_factor=5

Flags, defaults and output bytes are the original's (see bert_tf/pretraining_data.py).
"""

import os
import random
import sys
import time

from absl import app, flags

from bert_tf import pretraining_data
from bert_tf.tokenization import FullTokenizer, VocabError

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
FLAGS = flags.FLAGS


def main(_):
    try:
        run()
    except (pretraining_data.PretrainingDataError, VocabError) as error:
        sys.exit(f"create_pretraining_data.py: {error}")


def run():
    start = time.perf_counter()
    pretraining_data.validate_flags(
        FLAGS.max_seq_length, FLAGS.max_predictions_per_seq, FLAGS.masked_lm_prob
    )
    output_files = FLAGS.output_file.split(",")
    pretraining_data.check_writable(output_files)
    tokenizer = FullTokenizer(vocab_file=FLAGS.vocab_file, do_lower_case=FLAGS.do_lower_case)
    input_files = pretraining_data.expand_input_files(FLAGS.input_file)
    print(f"*** Reading from {len(input_files)} input files ***")
    documents, skipped = pretraining_data.read_documents(
        input_files, tokenizer, skip_invalid_utf8=FLAGS.skip_invalid_utf8
    )
    megabytes = sum(os.path.getsize(f) for f in input_files if os.path.exists(f)) / 1e6
    seconds = time.perf_counter() - start
    print(f"Read {len(documents)} documents ({megabytes:.2f} MB, {megabytes / seconds:.2f} MB/s); "
          f"skipped {skipped} invalid UTF-8 lines", flush=True)
    if FLAGS.packing == "nsp":
        instances = pretraining_data.create_training_instances(
            documents, list(tokenizer.vocab.keys()), FLAGS.max_seq_length, FLAGS.dupe_factor,
            FLAGS.short_seq_prob, FLAGS.masked_lm_prob, FLAGS.max_predictions_per_seq,
            random.Random(FLAGS.random_seed), FLAGS.do_whole_word_mask,
            mask=FLAGS.masking == "static", sentence_order=FLAGS.sentence_order_prediction,
            max_ngram=FLAGS.ngram_masking,
        )
    else:
        instances = pretraining_data.create_packed_instances(
            documents, FLAGS.max_seq_length, FLAGS.dupe_factor, FLAGS.masked_lm_prob,
            FLAGS.max_predictions_per_seq, list(tokenizer.vocab.keys()),
            random.Random(FLAGS.random_seed), FLAGS.packing == "full_sentences",
            FLAGS.do_whole_word_mask, mask=FLAGS.masking == "static",
            max_ngram=FLAGS.ngram_masking,
        )
    print(f"Made {len(instances)} instances in {time.perf_counter() - start:.1f} s", flush=True)

    def progress(written: int) -> None:
        elapsed = time.perf_counter() - start
        print(f"  {written}/{len(instances)} instances written, {len(documents)} documents, "
              f"{megabytes / elapsed:.2f} MB/s of input overall", flush=True)

    counts = pretraining_data.write_instances(
        instances, tokenizer, FLAGS.max_seq_length, FLAGS.max_predictions_per_seq, output_files,
        progress,
    )
    seconds = time.perf_counter() - start
    tokens = sum(len(i.tokens) for i in instances)
    masked = sum(len(i.masked_lm_positions) for i in instances)
    for path, count in zip(output_files, counts, strict=True):
        print(f"Wrote {count} instances to {path}")
    if instances:
        print(
            f"Total {len(instances)} instances in {seconds:.1f} s ({megabytes / seconds:.2f} "
            f"MB/s); mean tokens {tokens / len(instances):.1f}, masked tokens {masked} "
            f"({masked / len(instances):.1f} per instance)"
        )


if __name__ == "__main__":
    flags.mark_flags_as_required(["input_file", "output_file", "vocab_file"])
    app.run(main)
