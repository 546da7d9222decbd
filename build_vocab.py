"""Trains a WordPiece vocabulary (vocab.txt in the original layout) from a text corpus.

    python build_vocab.py --input_file=corpus/*.txt --output_file=vocab.txt \
        --vocab_size=30522 --do_lower_case=True

Reserved entries first, as in Google's vocabs: [PAD], [unused0]...[unused{N-1}], [UNK],
[CLS], [SEP], [MASK]; then the learned word pieces. See bert_tf/vocab_builder.py.
"""


from absl import app, flags

from bert_tf import errors, file_io, vocab_builder

flags.DEFINE_string("input_file", None, "Text files (comma-separated globs).")
flags.DEFINE_string("output_file", None, "Where to write vocab.txt.")
flags.DEFINE_integer("vocab_size", 30522, "At most this many entries, reserved ones included.")
flags.DEFINE_bool("do_lower_case", True, "Lower-case and strip accents first.")
flags.DEFINE_integer("num_unused", 99, "[unusedN] slots between [PAD] and [UNK].")
FLAGS = flags.FLAGS


def main(_):
    def build_vocab():
        files = file_io.expand_patterns(FLAGS.input_file, sort=False)
        with file_io.holding_output(FLAGS.output_file, "output_file"):
            tokens = vocab_builder.build_vocab(
                files, FLAGS.vocab_size, FLAGS.do_lower_case, FLAGS.num_unused
            )
            vocab_builder.write_vocab(tokens, FLAGS.output_file)
        print(f"Wrote {len(tokens)} tokens to {FLAGS.output_file}")

    errors.run_script("build_vocab.py", build_vocab)


if __name__ == "__main__":
    flags.mark_flags_as_required(["input_file", "output_file"])
    app.run(main)
