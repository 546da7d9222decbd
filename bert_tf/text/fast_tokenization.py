"""The FullTokenizer pipeline as TensorFlow ops (tensorflow-text): batched, in-graph, and
saved inside a SavedModel; the same ids as `tokenization.FullTokenizer`."""

from __future__ import annotations

import functools
import string
import unicodedata
from collections.abc import Sequence

import tensorflow as tf
import tensorflow_text as tf_text

from bert_tf.data.tokenization import load_vocab


def _re2_class(code_points: list[int]) -> str:
    """An RE2 character class of the sorted `code_points`, as ranges."""
    ranges: list[str] = []
    start = previous = code_points[0]
    for cp in [*code_points[1:], None]:
        if cp is not None and cp == previous + 1:
            previous = cp
            continue
        ranges.append(f"\\x{{{start:X}}}" + (f"-\\x{{{previous:X}}}" if previous > start else ""))
        if cp is not None:
            start = previous = cp
    return "[" + "".join(ranges) + "]"


@functools.cache
def character_classes() -> dict[str, str]:
    """`class_members()` as RE2 character classes."""
    return {name: _re2_class(cps) for name, cps in class_members().items()}


def class_members() -> dict[str, list[int]]:
    """The code points of the exact tokenizer's character classes, taken from Python's
    `unicodedata` code point by code point, so that both tokenizers agree on every code
    point whatever Unicode version TensorFlow's RE2/ICU tables know (`\\p{P}` there knows
    characters Python 3.11's Unicode 14 does not):
      deleted: NUL, U+FFFD and control/format characters (Cc, Cf) but tab, newline, CR;
      whitespace: what the original maps to " " (space, tab, newline, CR, Zs) and what
        Python's str.split splits on besides (Zl, Zp);
      punctuation: `_is_punctuation` (P* and non-alphanumeric printable ASCII);
      mark: Mn, what accent stripping removes after NFD.
    Takes ~1 s once per process."""
    members: dict[str, list[int]] = {"deleted": [], "whitespace": [], "punctuation": [],
                                     "mark": []}
    ascii_punctuation = {ord(char) for char in string.punctuation}
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:  # surrogates: not in UTF-8 text
            continue
        category = unicodedata.category(chr(cp))
        if category == "Cn":  # unassigned: in no class (most code points)
            continue
        # The rules of tokenization._is_control, _is_whitespace and _is_punctuation, with
        # the category looked up once (tests compare the two on every code point).
        if cp in (0, 0xFFFD) or (category in ("Cc", "Cf") and cp not in (9, 10, 13)):
            members["deleted"].append(cp)
        elif cp in (9, 10, 13, 32) or category in ("Zs", "Zl", "Zp"):
            members["whitespace"].append(cp)
        if cp in ascii_punctuation or category.startswith("P"):
            members["punctuation"].append(cp)
        if category == "Mn":
            members["mark"].append(cp)
    return members


# CJK ideographs, as `_is_chinese_char` defines them: each becomes a word of its own.
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
    Character classes come from Python's `unicodedata` (`character_classes`), not from
    TensorFlow's newer Unicode tables, so both tokenizers agree on every code point.
    """

    def __init__(
        self, vocab_file: str | Sequence[str], do_lower_case: bool = True,
        max_input_chars_per_word: int = 200,
    ):
        """`vocab_file`: a vocab.txt path, or the vocabulary's tokens in id order."""
        self.vocab = (load_vocab(vocab_file) if isinstance(vocab_file, str) else
                      {token: index for index, token in enumerate(vocab_file)})
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
        classes = character_classes()
        texts = tf.strings.regex_replace(texts, classes["deleted"], "")
        texts = tf.strings.regex_replace(texts, classes["whitespace"], " ")
        if self.do_lower_case:
            texts = tf.strings.lower(texts, encoding="utf-8")
            texts = tf_text.normalize_utf8(texts, "NFD")
            texts = tf.strings.regex_replace(texts, classes["mark"], "")
        return texts

    def words(self, texts) -> tf.RaggedTensor:
        """[N] strings -> [N, (words)] words after basic tokenization."""
        words = tf_text.regex_split(
            self.normalize(tf.convert_to_tensor(texts)),
            delim_regex_pattern=f" +|{character_classes()['punctuation']}|{_CJK}",
            keep_delim_regex_pattern=f"{character_classes()['punctuation']}|{_CJK}",
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
