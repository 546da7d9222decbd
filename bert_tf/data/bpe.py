"""Byte-level BPE tokenization (GPT-2 / RoBERTa style): `vocab.json` + `merges.txt`.

Text is split by the GPT-2 pattern (contractions, runs of letters, of digits, of other
symbols, each with an optional leading space; whitespace), every piece's UTF-8 bytes are
mapped to printable characters (so no byte is unknown and no text is lost), and pairs are
merged in the order of `merges.txt` until none applies. `decode(encode(text)) == text`.

For RoBERTa-style pretraining the tokenizer stands in for `FullTokenizer`
(`tokenization.load_tokenizer` with a merges file): `tokenize`, `vocab` and
`convert_tokens_to_ids` as the data and masking code use them, with BERT's special names
as aliases of RoBERTa's (`[CLS]` = `<s>`, `[SEP]` = `</s>`, `[MASK]` = `<mask>`,
`[PAD]` = `<pad>`, `[UNK]` = `<unk>`), so the records hold RoBERTa's ids in BERT's layout.
"""

from __future__ import annotations

import functools
import json

import regex

from bert_tf import file_io
from bert_tf.errors import UsageError

PATTERN = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
)


@functools.cache
def byte_to_char() -> dict[int, str]:
    """Each byte -> a printable character: printable Latin-1 bytes stand for themselves,
    the others (controls, space, ...) for code points from 256 up."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


# BERT's special token names -> RoBERTa's, for the data and masking code written for BERT.
SPECIAL_ALIASES = {"[CLS]": "<s>", "[SEP]": "</s>", "[MASK]": "<mask>", "[PAD]": "<pad>",
                   "[UNK]": "<unk>"}


class ByteLevelBPETokenizer:
    """Encodes text to ids with a byte-level BPE vocabulary and its merges."""

    def __init__(self, vocab_file: str, merges_file: str, do_lower_case: bool = False):
        try:
            vocab = json.loads(file_io.read_bytes(vocab_file).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise UsageError(f"{vocab_file}: not a JSON vocabulary ({error})") from None
        if not isinstance(vocab, dict):
            raise UsageError(f"{vocab_file}: not a JSON vocabulary (expected an object)")
        self.inverse = {index: token for token, index in vocab.items()}
        # BERT's special names as aliases of RoBERTa's, where the vocabulary has them.
        aliases = {bert: vocab[roberta] for bert, roberta in SPECIAL_ALIASES.items()
                   if roberta in vocab and bert not in vocab}
        self.vocab: dict[str, int] = {**vocab, **aliases}
        self.do_lower_case = do_lower_case
        self.ranks: dict[tuple[str, str], int] = {}
        text = file_io.read_bytes(merges_file).decode("utf-8")
        for number, line in enumerate(text.split("\n"), start=1):
            if not line or line.startswith("#version"):
                continue
            parts = line.split(" ")
            if len(parts) != 2:
                raise UsageError(f"{merges_file}:{number}: expected two symbols, got {line!r}")
            self.ranks[(parts[0], parts[1])] = len(self.ranks)
        self._char_to_byte = {c: b for b, c in byte_to_char().items()}
        self._cache: dict[str, list[str]] = {}

    def bpe(self, word: str) -> list[str]:
        """A pre-tokenized piece (in byte characters) -> its BPE symbols."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        symbols = list(word)
        while len(symbols) > 1:
            pairs = {(symbols[i], symbols[i + 1]) for i in range(len(symbols) - 1)}
            best = min(pairs, key=lambda pair: self.ranks.get(pair, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(symbols):
                if i < len(symbols) - 1 and (symbols[i], symbols[i + 1]) == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        self._cache[word] = symbols
        return symbols

    def tokenize(self, text: str) -> list[str]:
        """Text (lowercased first with `do_lower_case`) -> BPE symbols."""
        if self.do_lower_case:
            text = text.lower()
        table = byte_to_char()
        tokens = []
        for piece in PATTERN.findall(text):
            tokens.extend(self.bpe("".join(table[b] for b in piece.encode("utf-8"))))
        return tokens

    def encode(self, text: str) -> list[int]:
        """Ids of the text's BPE tokens (a symbol missing from the vocabulary is an error:
        byte-level vocabularies hold every byte)."""
        try:
            return [self.vocab[token] for token in self.tokenize(text)]
        except KeyError as error:
            raise UsageError(f"BPE symbol {error.args[0]!r} is not in the vocabulary") from None

    def convert_tokens_to_ids(self, tokens: list[str]) -> list[int]:
        return [self.vocab[token] for token in tokens]

    def decode(self, ids: list[int]) -> str:
        data = bytes(self._char_to_byte[c] for i in ids for c in self.inverse[i])
        return data.decode("utf-8", errors="replace")
