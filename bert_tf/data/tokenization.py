"""WordPiece tokenization with the original BERT's exact behaviour (pure Python, no TensorFlow).

`FullTokenizer` = `BasicTokenizer` (clean text, split CJK characters, optionally lower-case
and strip accents, split punctuation) then `WordpieceTokenizer` (greedy longest-match-first
against the vocabulary, `[UNK]` for words it cannot cover or longer than 200 characters).

The same work as TensorFlow ops, for graphs and SavedModels: `fast_tokenization.FastTokenizer`.
"""

from __future__ import annotations

import collections
import re
import unicodedata

from bert_tf import file_io
from bert_tf.errors import BertTfError

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


class VocabError(BertTfError, ValueError):
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
    raise VocabError(
        f"You passed in `--do_lower_case={actual}` with `--init_checkpoint={init_checkpoint}`. "
        f"However, `{model_name}` seems to be a {case_name} model, so you should pass in "
        f"`--do_lower_case={opposite}` so that the fine-tuning matches how the model was "
        f"pre-trained. If this error is wrong, please just comment out this check."
    )


def check_vocab_fits(vocab: dict, vocab_file: str, vocab_size: int, config_file: str) -> None:
    """Refuses a vocabulary with more tokens than the model has embeddings: ids past
    `vocab_size` would fail at the first step (or, on some devices, read garbage)."""
    needed = max(vocab.values(), default=-1) + 1  # ids 0 .. needed - 1 need embeddings
    if vocab_size is not None and needed > vocab_size:
        raise VocabError(
            f"{vocab_file}: {needed} tokens, but vocab_size in {config_file} is "
            f"{vocab_size}: ids from {vocab_size} on would have no embedding; use the "
            f"vocab.txt that belongs to this config and checkpoint"
        )


def load_tokenizer(vocab_file: str, do_lower_case: bool = True,
                   merges_file: str | None = None):
    """`FullTokenizer(vocab_file, do_lower_case)`, or with `merges_file` the byte-level BPE
    tokenizer of a RoBERTa-style `vocab.json` (bpe.ByteLevelBPETokenizer, which answers the
    same `tokenize` / `vocab` / `convert_tokens_to_ids`, BERT's special names included)."""
    if merges_file:
        from bert_tf.data.bpe import ByteLevelBPETokenizer

        return ByteLevelBPETokenizer(vocab_file, merges_file, do_lower_case)
    return FullTokenizer(vocab_file, do_lower_case)


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
    if not file_io.exists(vocab_file):
        raise VocabError(f"{vocab_file}: vocabulary file not found")
    with file_io.open_file(vocab_file, "rb") as reader:
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


def convert_tokens_to_ids(vocab: dict, tokens: list[str]) -> list[int]:
    """Token strings -> ids through `vocab` (as `load_vocab` returns it)."""
    return convert_by_vocab(vocab, tokens)


def convert_ids_to_tokens(inv_vocab: dict, ids: list[int]) -> list[str]:
    """Ids -> token strings through `inv_vocab` ({id: token})."""
    return convert_by_vocab(inv_vocab, ids)


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
        self._word_pieces: dict[str, list[str]] = {}

    def tokenize(self, text: str | bytes) -> list[str]:
        """Word pieces of `text`: the original's BasicTokenizer then WordpieceTokenizer, with
        the same result, faster. An ASCII line is split by one regular expression; any other
        line is cleaned by one `str.translate` (the original's per-character rules,
        remembered per character) and split on whitespace. The pieces of each word are
        remembered (up to _WORD_CACHE_SIZE words)."""
        text = convert_to_unicode(text)
        if text.isascii():
            words = _ascii_words(text, self.do_lower_case)  # already basic-tokenized
        else:
            words = text.translate(_CLEANING).split()  # still to lower-case and split
        cache = self._word_pieces
        split_tokens = []
        for word in words:
            pieces = cache.get(word)
            if pieces is None:
                pieces = self._word_pieces_uncached(word)
                if len(cache) < _WORD_CACHE_SIZE:
                    cache[word] = pieces
            split_tokens.extend(pieces)
        return split_tokens

    def _word_pieces_uncached(self, word: str) -> list[str]:
        """The pieces of one cleaned, whitespace-free word (lower-cased, accents stripped and
        split on punctuation here; a no-op for the ASCII path's words)."""
        if self.do_lower_case:
            word = _strip_accents(word.lower())
        return [
            piece
            for part in _split_on_punctuation(word)
            for piece in self.wordpiece_tokenizer.tokenize(part)
        ]

    def convert_tokens_to_ids(self, tokens: list[str]) -> list[int]:
        return convert_tokens_to_ids(self.vocab, tokens)

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return convert_ids_to_tokens(self.inv_vocab, ids)


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


_WORD_CACHE_SIZE = 250_000  # words; the frequent ones are met early (Zipf)


class _CleaningTable(dict):
    """Code point -> what _clean_text and _tokenize_chinese_chars make of it (None: deleted),
    for str.translate; each character is classified once, on first sight."""

    def __missing__(self, cp: int) -> str | None:
        char = chr(cp)
        if cp == 0 or cp == 0xFFFD or _is_control(char):
            result = None
        elif _is_whitespace(char):
            result = " "
        elif _is_chinese_char(cp):
            result = f" {char} "
        else:
            result = char
        self[cp] = result
        return result


_CLEANING = _CleaningTable()
# ASCII control characters (Cc) but tab, newline and carriage return: _clean_text drops them.
_ASCII_CONTROL = {cp: None for cp in [*range(0, 9), 11, 12, *range(14, 32), 127]}
# What BasicTokenizer makes of ASCII text once those are gone: runs of letters and digits,
# and every other printable character (all ASCII punctuation to _is_punctuation) alone.
_ASCII_WORD = re.compile(r"[A-Za-z0-9]+|[!-/:-@\[-`{-~]")


def _ascii_words(text: str, do_lower_case: bool) -> list[str]:
    """BasicTokenizer.tokenize for ASCII `text` (accent stripping and CJK splitting have
    nothing to do there)."""
    text = text.translate(_ASCII_CONTROL)
    return _ASCII_WORD.findall(text.lower() if do_lower_case else text)


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
