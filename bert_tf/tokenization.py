"""WordPiece tokenization with the original BERT's exact behaviour, and a fast in-graph path.

`FullTokenizer` = `BasicTokenizer` (clean text, split CJK characters, optionally lower-case
and strip accents, split punctuation) then `WordpieceTokenizer` (greedy longest-match-first
against the vocabulary, `[UNK]` for words it cannot cover or longer than 200 characters).

`FastTokenizer` does the same work as TensorFlow ops (tensorflow-text), batched and usable
inside a SavedModel; it gives the same ids as `FullTokenizer` (see its docstring for how
the few cases tensorflow-text treats differently are brought in line).
"""

from __future__ import annotations

import collections
import re
import unicodedata

import tensorflow as tf
import tensorflow_text as tf_text

# Published checkpoints whose case handling we know, for validate_case_matches_checkpoint.
_UNCASED_MODELS = (
    "uncased_L-24_H-1024_A-16",
    "uncased_L-12_H-768_A-12",
    "multilingual_L-12_H-768_A-12",
    "chinese_L-12_H-768_A-12",
)
_CASED_MODELS = (
    "cased_L-12_H-768_A-12",
    "cased_L-24_H-1024_A-16",
    "multi_cased_L-12_H-768_A-12",
)


class VocabError(ValueError):
    """A vocabulary file that is missing, empty or unreadable."""


def validate_case_matches_checkpoint(do_lower_case: bool, init_checkpoint: str | None) -> None:
    """Raises ValueError when `do_lower_case` contradicts a published checkpoint's name.

    Like the original, this only knows the names of Google's published models
    (`.../uncased_L-12_H-768_A-12/bert_model.ckpt` and so on) and is silent otherwise.
    """
    if not init_checkpoint:
        return
    match = re.match(r"^.*?([A-Za-z0-9_-]+)/bert_model.ckpt", init_checkpoint)
    if match is None:
        return
    model_name = match.group(1)
    if model_name in _UNCASED_MODELS and not do_lower_case:
        actual, case_name, opposite = "False", "uncased", "True"
    elif model_name in _CASED_MODELS and do_lower_case:
        actual, case_name, opposite = "True", "cased", "False"
    else:
        return
    raise ValueError(
        f"You passed in `--do_lower_case={actual}` with `--init_checkpoint={init_checkpoint}`. "
        f"However, `{model_name}` seems to be a {case_name} model, so you should pass in "
        f"`--do_lower_case={opposite}` so that the fine-tuning matches how the model was "
        f"pre-trained. If this error is wrong, please just comment out this check."
    )


def convert_to_unicode(text: str | bytes) -> str:
    """Returns `text` as str; bytes are decoded as UTF-8, dropping invalid bytes (original)."""
    if isinstance(text, str):
        return text
    if isinstance(text, bytes):
        return text.decode("utf-8", "ignore")
    raise ValueError(f"Unsupported string type: {type(text)}")


def printable_text(text: str | bytes) -> str:
    """Returns `text` in a form suitable for printing or logging (str in Python 3)."""
    return convert_to_unicode(text)


def load_vocab(vocab_file: str) -> collections.OrderedDict[str, int]:
    """Reads a vocabulary file (one token per line) into an ordered token -> id dict.

    As the original: each line is stripped of surrounding whitespace and gets the id of its
    line number; a token that appears twice keeps the id of its last line.
    """
    if not tf.io.gfile.exists(vocab_file):
        raise VocabError(f"{vocab_file}: vocabulary file not found")
    with tf.io.gfile.GFile(vocab_file, "rb") as reader:
        data = reader.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise VocabError(
            f"{vocab_file}: line {line} is not valid UTF-8 (byte {error.start}); "
            f"expected a UTF-8 vocab.txt with one token per line"
        ) from None
    vocab: collections.OrderedDict[str, int] = collections.OrderedDict()
    lines = text.split("\n")
    if lines[-1] == "":  # the newline that ends the last line, or an empty file
        lines.pop()
    for index, line in enumerate(lines):
        vocab[line.strip()] = index
    if not vocab:
        raise VocabError(f"{vocab_file}: vocabulary file is empty")
    return vocab


def convert_by_vocab(vocab: dict, items: list) -> list:
    """Maps each item through `vocab` (tokens -> ids or ids -> tokens)."""
    return [vocab[item] for item in items]


def whitespace_tokenize(text: str) -> list[str]:
    """Strips `text` and splits it on whitespace."""
    text = text.strip()
    return text.split() if text else []


class FullTokenizer:
    """End-to-end tokenization: BasicTokenizer, then WordPiece on each word."""

    def __init__(self, vocab_file: str, do_lower_case: bool = True):
        self.vocab = load_vocab(vocab_file)
        self.inv_vocab = {index: token for token, index in self.vocab.items()}
        self.basic_tokenizer = BasicTokenizer(do_lower_case=do_lower_case)
        self.wordpiece_tokenizer = WordpieceTokenizer(vocab=self.vocab)
        self.vocab_file = vocab_file
        self.do_lower_case = do_lower_case

    def tokenize(self, text: str | bytes) -> list[str]:
        split_tokens = []
        for token in self.basic_tokenizer.tokenize(text):
            split_tokens.extend(self.wordpiece_tokenizer.tokenize(token))
        return split_tokens

    def convert_tokens_to_ids(self, tokens: list[str]) -> list[int]:
        return convert_by_vocab(self.vocab, tokens)

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return convert_by_vocab(self.inv_vocab, ids)


class BasicTokenizer:
    """Splits on whitespace and punctuation, separates CJK characters, lower-cases."""

    def __init__(self, do_lower_case: bool = True):
        self.do_lower_case = do_lower_case

    def tokenize(self, text: str | bytes) -> list[str]:
        text = _tokenize_chinese_chars(_clean_text(convert_to_unicode(text)))
        split_tokens = []
        for token in whitespace_tokenize(text):
            if self.do_lower_case:
                token = _strip_accents(token.lower())
            split_tokens.extend(_split_on_punctuation(token))
        return whitespace_tokenize(" ".join(split_tokens))


class WordpieceTokenizer:
    """Greedy longest-match-first WordPiece over one already basic-tokenized word at a time."""

    def __init__(self, vocab: dict, unk_token: str = "[UNK]", max_input_chars_per_word: int = 200):
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word

    def tokenize(self, text: str) -> list[str]:
        """E.g. "unaffable" -> ["un", "##aff", "##able"]; whitespace separates words."""
        output_tokens = []
        for token in whitespace_tokenize(convert_to_unicode(text)):
            if len(token) > self.max_input_chars_per_word:
                output_tokens.append(self.unk_token)
                continue
            pieces = []
            start = 0
            while start < len(token):
                end = len(token)
                piece = None
                while start < end:
                    candidate = token[start:end] if start == 0 else "##" + token[start:end]
                    if candidate in self.vocab:
                        piece = candidate
                        break
                    end -= 1
                if piece is None:
                    pieces = [self.unk_token]
                    break
                pieces.append(piece)
                start = end
            output_tokens.extend(pieces)
        return output_tokens


def _strip_accents(text: str) -> str:
    """Removes combining marks after NFD decomposition ("é" -> "e")."""
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def _split_on_punctuation(text: str) -> list[str]:
    """Makes every punctuation character a token of its own: "a,b" -> ["a", ",", "b"]."""
    output: list[list[str]] = []
    start_new_word = True
    for char in text:
        if _is_punctuation(char):
            output.append([char])
            start_new_word = True
        else:
            if start_new_word:
                output.append([])
            start_new_word = False
            output[-1].append(char)
    return ["".join(chars) for chars in output]


def _tokenize_chinese_chars(text: str) -> str:
    """Puts spaces around every CJK ideograph so each becomes its own word."""
    output = []
    for char in text:
        if _is_chinese_char(ord(char)):
            output.extend((" ", char, " "))
        else:
            output.append(char)
    return "".join(output)


def _is_chinese_char(cp: int) -> bool:
    """True for code points in the CJK Unified Ideographs blocks (not Hangul, not kana)."""
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def _clean_text(text: str) -> str:
    """Drops NUL, U+FFFD and control characters; maps every whitespace character to " "."""
    output = []
    for char in text:
        cp = ord(char)
        if cp == 0 or cp == 0xFFFD or _is_control(char):
            continue
        output.append(" " if _is_whitespace(char) else char)
    return "".join(output)


def _is_whitespace(char: str) -> bool:
    """Space, tab, newline, carriage return and the Unicode space separators (Zs)."""
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _is_control(char: str) -> bool:
    """Control and format characters (Cc, Cf), except tab, newline, carriage return."""
    if char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def _is_punctuation(char: str) -> bool:
    """Unicode punctuation (P*) plus every non-alphanumeric printable ASCII character."""
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


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
        return self._wordpiece.tokenize(self.words(texts)).merge_dims(-2, -1)
