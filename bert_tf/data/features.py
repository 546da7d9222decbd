"""Token lists -> model inputs in the original layout: `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`.

Shared by fine-tuning, feature extraction and the demo; the same rules as the original
`run_classifier.convert_single_example` (pairs truncated longest-first, segment ids 0 for
`[CLS] a [SEP]` and 1 for `b [SEP]`, zero padding to `max_seq_length`).
"""

from __future__ import annotations

import dataclasses

from bert_tf.data.tokenization import FullTokenizer


@dataclasses.dataclass
class EncodedInput:
    """One sequence of length max_seq_length: ids, 1/0 attention mask, 0/1 segment ids."""

    tokens: list[str]
    input_ids: list[int]
    input_mask: list[int]
    segment_ids: list[int]


def truncate_seq_pair(tokens_a: list, tokens_b: list, max_length: int) -> None:
    """Truncates the pair in place, one token at a time from the longer list (b on ties)."""
    while len(tokens_a) + len(tokens_b) > max_length:
        if len(tokens_a) > len(tokens_b):
            tokens_a.pop()
        else:
            tokens_b.pop()


def encode_tokens(
    tokenizer: FullTokenizer,
    tokens_a: list[str],
    tokens_b: list[str] | None,
    max_seq_length: int,
) -> EncodedInput:
    """Lays out word pieces as `[CLS] a [SEP] (b [SEP])`, truncating and padding to length."""
    tokens_a = list(tokens_a)
    if tokens_b:  # an empty second segment counts as none, as in the original
        tokens_b = list(tokens_b)
        truncate_seq_pair(tokens_a, tokens_b, max_seq_length - 3)  # [CLS], [SEP], [SEP]
    else:
        tokens_a = tokens_a[: max_seq_length - 2]  # [CLS], [SEP]
    tokens = ["[CLS]", *tokens_a, "[SEP]"]
    segment_ids = [0] * len(tokens)
    if tokens_b:
        tokens += [*tokens_b, "[SEP]"]
        segment_ids += [1] * (len(tokens_b) + 1)
    input_ids = tokenizer.convert_tokens_to_ids(tokens)
    input_mask = [1] * len(input_ids)
    padding = max_seq_length - len(input_ids)
    return EncodedInput(
        tokens=tokens,
        input_ids=input_ids + [0] * padding,
        input_mask=input_mask + [0] * padding,
        segment_ids=segment_ids + [0] * padding,
    )


def encode_text(
    tokenizer: FullTokenizer, text_a: str, text_b: str | None, max_seq_length: int
) -> EncodedInput:
    """Tokenizes one text (or a pair) and lays it out with `encode_tokens`."""
    tokens_b = tokenizer.tokenize(text_b) if text_b else None
    return encode_tokens(tokenizer, tokenizer.tokenize(text_a), tokens_b, max_seq_length)
