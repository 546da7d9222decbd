"""Building a WordPiece vocabulary from a corpus, in the layout of the original vocabs.

Words come from this package's basic tokenization (`FastTokenizer.words`: the original's
cleaning, lower-casing, accent stripping, punctuation and CJK splitting), so the vocabulary
fits the tokenizers that will use it; tensorflow-text's WordPiece learner then picks the
pieces. The file starts as Google's vocabs do: `[PAD]`, `num_unused` slots `[unused0]`...,
then `[UNK]`, `[CLS]`, `[SEP]`, `[MASK]`, then the learned pieces (`##` marks a word's
continuation).
"""

from __future__ import annotations

import tensorflow as tf
from tensorflow_text.tools.wordpiece_vocab import bert_vocab_from_dataset

from bert_tf.errors import UsageError
from bert_tf.file_io import write_atomically
from bert_tf.text.fast_tokenization import FastTokenizer

SPECIAL_TOKENS = ("[UNK]", "[CLS]", "[SEP]", "[MASK]")


def reserved_tokens(num_unused: int) -> list[str]:
    return ["[PAD]", *(f"[unused{i}]" for i in range(num_unused)), *SPECIAL_TOKENS]


def corpus_lines(input_files: list[str]) -> tf.data.Dataset:
    """Non-empty lines of the files (UTF-8), as a dataset of strings."""
    dataset = tf.data.TextLineDataset(input_files)
    return dataset.filter(lambda line: tf.strings.length(tf.strings.strip(line)) > 0)


def build_vocab(
    input_files: list[str], vocab_size: int, do_lower_case: bool = True, num_unused: int = 99,
    batch_size: int = 1024,
) -> list[str]:
    """The vocabulary (reserved tokens first), at most `vocab_size` entries."""
    reserved = reserved_tokens(num_unused)
    if vocab_size <= len(reserved):
        raise UsageError(f"vocab_size={vocab_size} leaves no room after {len(reserved)} "
                         f"reserved tokens")
    # A stand-in vocabulary: words() only needs the normalization rules, not the pieces.
    splitter = _WordSplitter(do_lower_case)
    words = corpus_lines(input_files).batch(batch_size).map(
        lambda lines: tf.strings.reduce_join(splitter.words(lines), axis=-1, separator=" ")
    ).unbatch()
    learned = bert_vocab_from_dataset.bert_vocab_from_dataset(
        words, vocab_size=vocab_size, reserved_tokens=reserved,
        bert_tokenizer_params={"lower_case": False},
        learn_params={"max_token_length": 200},
    )
    return learned[:vocab_size]


class _WordSplitter(FastTokenizer):
    """FastTokenizer's basic tokenization without a vocabulary file."""

    def __init__(self, do_lower_case: bool):  # no vocabulary to load: no super().__init__
        self.do_lower_case = do_lower_case
        self.max_input_chars_per_word = 200


def write_vocab(tokens: list[str], path: str) -> None:
    """One token per line, atomically (temp file, then rename)."""
    write_atomically(path, "".join(f"{token}\n" for token in tokens))
