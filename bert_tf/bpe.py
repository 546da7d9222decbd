"""Byte-level BPE tokenization (GPT-2 / RoBERTa style): `vocab.json` + `merges.txt`.

Text is split by the GPT-2 pattern (contractions, runs of letters, of digits, of other
symbols, each with an optional leading space; whitespace), every piece's UTF-8 bytes are
mapped to printable characters (so no byte is unknown and no text is lost), and pairs are
merged in the order of `merges.txt` until none applies. `decode(encode(text)) == text`.
"""

from __future__ import annotations

import functools
import json

import regex
import tensorflow as tf

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


class ByteLevelBPETokenizer:
    """Encodes text to ids with a byte-level BPE vocabulary and its merges."""

    def __init__(self, vocab_file: str, merges_file: str):
        with tf.io.gfile.GFile(vocab_file, "r") as handle:
            try:
                self.vocab: dict[str, int] = json.load(handle)
            except json.JSONDecodeError as error:
                raise UsageError(f"{vocab_file}: not a JSON vocabulary ({error})") from None
        self.inverse = {index: token for token, index in self.vocab.items()}
        self.ranks: dict[tuple[str, str], int] = {}
        with tf.io.gfile.GFile(merges_file, "r") as handle:
            for number, line in enumerate(handle.read().split("\n"), start=1):
                if not line or line.startswith("#version"):
                    continue
                parts = line.split(" ")
                if len(parts) != 2:
                    raise UsageError(f"{merges_file}:{number}: expected two symbols, got "
                                     f"{line!r}")
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

    def decode(self, ids: list[int]) -> str:
        data = bytes(self._char_to_byte[c] for i in ids for c in self.inverse[i])
        return data.decode("utf-8", errors="replace")
