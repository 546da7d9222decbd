"""The FullTokenizer pipeline as TensorFlow ops (tensorflow-text): batched, in-graph, and
saved inside a SavedModel; the same ids as `tokenization.FullTokenizer`."""

from __future__ import annotations

import tensorflow as tf
import tensorflow_text as tf_text

from bert_tf.tokenization import load_vocab

# In-graph equivalents of the original's character classes (RE2 syntax).
# Control characters the original deletes: Cc except \t \n \r, all of Cf, NUL and U+FFFD.
_DELETED_CHARS = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\x{FFFD}\p{Cf}]"
# Characters the original treats as whitespace: \t \n \r and Zs (cleaning), Zl and Zp
# (Python's str.split splits on them).
_WHITESPACE_CHARS = r"[\t\n\r\p{Zs}\p{Zl}\p{Zp}]"
# Characters that become words of their own: punctuation as `_is_punctuation` defines it,
# and CJK ideographs as `_is_chinese_char` does.
_PUNCTUATION = r"[!-/:-@\[-`{-~\p{P}]"
_CJK = (
    r"[\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}"
    r"\x{2B740}-\x{2B81F}\x{2B820}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}]"
)


class FastTokenizer:
    """The FullTokenizer pipeline as TensorFlow ops (tensorflow-text), for batches and graphs.

    Gives the same ids as `FullTokenizer` on the fixtures and on the text corpus. Where
    tensorflow-text's own BertTokenizer behaves differently, this class does that step
    itself before handing over:
      - lower-casing: tensorflow-text case-folds with NFKC (ß -> ss, fullwidth -> ASCII,
        Ⅻ -> xii); the original uses Python's `str.lower()`, which `tf.strings.lower`
        with UTF-8 matches (final sigma included). Then NFD and removal of marks (Mn).
      - control/format characters (Cc, Cf, e.g. zero-width space): tensorflow-text turns
        them into spaces (splitting words); the original deletes them (joining).
      - Unicode spaces (Zs, Zl, Zp): tensorflow-text splits only on ASCII whitespace.
      - words longer than 200 characters become [UNK] (tensorflow-text counts bytes).
    Character classes come from ICU/RE2 in TensorFlow rather than Python's `unicodedata`;
    code points whose category differs between their Unicode versions could differ.
    """

    def __init__(
        self, vocab_file: str, do_lower_case: bool = True, max_input_chars_per_word: int = 200
    ):
        self.vocab = load_vocab(vocab_file)
        self.do_lower_case = do_lower_case
        self.max_input_chars_per_word = max_input_chars_per_word
        tokens = tf.constant(list(self.vocab.keys()))
        ids = tf.constant(list(self.vocab.values()), dtype=tf.int64)
        self._table = tf.lookup.StaticVocabularyTable(
            tf.lookup.KeyValueTensorInitializer(tokens, ids), num_oov_buckets=1
        )
        self._wordpiece = tf_text.WordpieceTokenizer(
            self._table,
            suffix_indicator="##",
            max_bytes_per_word=4 * max_input_chars_per_word,
            token_out_type=tf.int64,
            unknown_token="[UNK]",
        )

    @property
    def table(self) -> tf.lookup.StaticVocabularyTable:
        """The word-piece -> id lookup table (a resource a SavedModel must track)."""
        return self._table

    def normalize(self, texts: tf.Tensor) -> tf.Tensor:
        """[N] UTF-8 strings -> [N] strings cleaned (and lower-cased) as the original does."""
        texts = tf.strings.regex_replace(texts, _DELETED_CHARS, "")
        texts = tf.strings.regex_replace(texts, _WHITESPACE_CHARS, " ")
        if self.do_lower_case:
            texts = tf.strings.lower(texts, encoding="utf-8")
            texts = tf_text.normalize_utf8(texts, "NFD")
            texts = tf.strings.regex_replace(texts, r"\p{Mn}", "")
        return texts

    def words(self, texts) -> tf.RaggedTensor:
        """[N] strings -> [N, (words)] words after basic tokenization."""
        words = tf_text.regex_split(
            self.normalize(tf.convert_to_tensor(texts)),
            delim_regex_pattern=f" +|{_PUNCTUATION}|{_CJK}",
            keep_delim_regex_pattern=f"{_PUNCTUATION}|{_CJK}",
        )
        too_long = tf.strings.length(words.flat_values, unit="UTF8_CHAR") > (
            self.max_input_chars_per_word
        )
        return words.with_flat_values(tf.where(too_long, "[UNK]", words.flat_values))

    def tokenize(self, texts) -> tf.RaggedTensor:
        """[N] strings (str, bytes or a string tensor) -> [N, (tokens)] int64 token ids."""
        return self.tokenize_words(texts).merge_dims(-2, -1)

    def tokenize_words(self, texts) -> tf.RaggedTensor:
        """[N] strings -> [N, (words), (pieces)] int64 token ids, grouped by word."""
        return self._wordpiece.tokenize(self.words(texts))
