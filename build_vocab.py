"""Trains a WordPiece vocabulary (vocab.txt in the original layout) from a text corpus.

    python build_vocab.py --input_file=corpus/*.txt --output_file=build_vocab.txt \
        --vocab_size=30522 --do_lower_case=True

Reserved entries first, as in Google's vocabs: [PAD], [unused0]...[unused{N-1}], [UNK],
[CLS], [SEP], [MASK]; then the learned word pieces. See bert_tf/text/vocab_builder.py.
"""

from bert_tf.jobs import script
from bert_tf.jobs.build_vocab import VocabOptions, output_lock, run

if __name__ == "__main__":
    script.main("build_vocab.py", VocabOptions, run, output_lock)
