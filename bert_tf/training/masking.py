"""Dynamic masking (RoBERTa, Liu et al. 2019): a fresh masked-LM mask each time a batch is
read, drawn in the tf.data pipeline with stateless random ops.

The rules are the original `create_masked_lm_predictions`' : `[CLS]`, `[SEP]` and padding
are never chosen; `min(max_predictions_per_seq, max(1, round(n * masked_lm_prob)))` of the
n candidate tokens are; with whole-word masking, words (a piece and its `##` continuations)
are taken in random order while they fit; each chosen token becomes `[MASK]` with
probability 0.8, stays with 0.1, and becomes a random vocabulary entry with 0.1. The draws
depend on (seed, batch index): a new epoch gives new masks, the same seed the same ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from bert_tf.data.tokenization import load_vocab


@dataclasses.dataclass(frozen=True)
class DynamicMasking:
    """What the masking needs to know about the vocabulary, and its rates."""

    vocab_size: int
    mask_id: int
    special_ids: tuple[int, ...]  # never masked ([CLS], [SEP], [PAD])
    continuation: np.ndarray | None  # [V] bool: the id is a `##` piece (whole-word masking)
    masked_lm_prob: float = 0.15
    max_predictions_per_seq: int = 20
    seed: int = 0
    max_ngram: int = 1  # ALBERT: spans of up to this many words, P(n) ~ 1/n

    @classmethod
    def from_vocab(cls, vocab: str | Mapping[str, int], whole_word: bool = False,
                   **kwargs) -> DynamicMasking:
        """From a vocab.txt path, or a token -> id mapping (a tokenizer's `vocab`, where
        BERT's special names may alias other tokens' ids: bpe.py)."""
        if isinstance(vocab, str):
            vocab = load_vocab(vocab)
        size = max(vocab.values()) + 1
        continuation = None
        if whole_word:
            continuation = np.zeros(size, bool)
            for token, index in vocab.items():
                continuation[index] = token.startswith("##")
        specials = tuple(vocab[t] for t in ("[CLS]", "[SEP]", "[PAD]") if t in vocab)
        return cls(size, vocab["[MASK]"], specials, continuation, **kwargs)


def _stable_argsort(values: tf.Tensor) -> tf.Tensor:
    return tf.argsort(values, axis=-1, stable=True)


def _ngram_choice(word_id, special, word_score, wanted, max_ngram: int, seed) -> tf.Tensor:
    """ALBERT's n-gram picks, in graph: words in random order each start a span of n words
    (P(n) ~ 1/n); a span is taken when it overlaps no taken span nor a special token and
    its word pieces still fit the budget. Returns the chosen tokens [B, S]."""
    size, length = tf.shape(word_id)[0], tf.shape(word_id)[1]
    rows = tf.repeat(tf.range(size)[:, None], length, axis=1)
    flat = tf.reshape(word_id + rows * length, [-1])
    ones = tf.ones([size * length], tf.int32)
    word_pieces = tf.reshape(tf.math.unsorted_segment_sum(ones, flat, size * length),
                             [size, length])
    blocked = tf.reshape(tf.math.unsorted_segment_max(
        tf.cast(tf.reshape(special, [-1]), tf.int32), flat, size * length), [size, length]) > 0
    words = tf.reduce_max(word_id, axis=1) + 1  # [B]
    units = tf.range(length)[None, :]
    blocked |= units >= words[:, None]
    logits = tf.math.log(1.0 / tf.range(1, max_ngram + 1, dtype=tf.float32))
    span = 1 + tf.reshape(tf.random.stateless_categorical(
        tf.repeat(logits[None, :], size * length, axis=0), 1, seed), [size, length])
    order = _stable_argsort(tf.where(blocked, 2.0, word_score))

    def pick(k, taken, count):
        start = order[:, k]
        n = tf.cast(tf.gather(span, start, batch_dims=1), tf.int32)
        in_span = (units >= start[:, None]) & (units < (start + n)[:, None])
        pieces = tf.reduce_sum(tf.where(in_span, word_pieces, 0), axis=1)
        ok = (~tf.reduce_any(in_span & (taken | blocked), axis=1)) & (
            count + pieces <= wanted) & (start + n <= words)
        return k + 1, taken | (in_span & ok[:, None]), count + tf.where(ok, pieces, 0)

    _, taken, _ = tf.while_loop(
        lambda k, taken, count: k < length, pick,
        (tf.constant(0), tf.zeros([size, length], tf.bool), tf.zeros([size], tf.int32)))
    return tf.gather(taken, word_id, batch_dims=1) & ~special


def mask_batch(batch: dict, index: tf.Tensor, masking: DynamicMasking) -> dict:
    """Replaces `input_ids` and the `masked_lm_*` features of a [B, S] batch with a fresh
    mask drawn from (masking.seed, index)."""
    ids = tf.cast(batch["input_ids"], tf.int32)
    size, length = tf.shape(ids)[0], tf.shape(ids)[1]
    seeds = tf.random.experimental.stateless_split(
        tf.stack([tf.cast(masking.seed, tf.int64), tf.cast(index, tf.int64)]), 4)
    special = ~tf.cast(batch["input_mask"], tf.bool)
    for special_id in masking.special_ids:
        special |= ids == special_id
    positions = tf.broadcast_to(tf.range(length)[None, :], [size, length])
    if masking.continuation is not None:
        continuation = tf.gather(tf.constant(masking.continuation), ids) & ~special
        word_id = tf.cumsum(tf.cast(~continuation, tf.int32), axis=1) - 1
    else:
        word_id = positions
    word_score = tf.random.stateless_uniform([size, length], seeds[0])
    score = tf.where(special, 2.0, tf.gather(word_score, word_id, batch_dims=1))

    candidates = tf.reduce_sum(tf.cast(~special, tf.float32), axis=1)
    wanted = tf.cast(tf.round(candidates * masking.masked_lm_prob), tf.int32)
    wanted = tf.clip_by_value(wanted, 1, masking.max_predictions_per_seq)

    # Tokens in random word order (a word's pieces stay together: equal scores, stable
    # sort); a word is taken when the count up to its last piece still fits.
    order = _stable_argsort(score)
    count_in_order = tf.broadcast_to(tf.range(1, length + 1)[None, :], [size, length])
    count = tf.scatter_nd(
        tf.stack([tf.repeat(tf.range(size)[:, None], length, axis=1), order], axis=-1),
        count_in_order, [size, length])
    flat_words = tf.reshape(word_id + tf.range(size)[:, None] * length, [-1])
    word_end = tf.math.unsorted_segment_max(tf.reshape(count, [-1]), flat_words, size * length)
    token_word_end = tf.reshape(tf.gather(word_end, flat_words), [size, length])
    chosen = (token_word_end <= wanted[:, None]) & ~special
    if masking.max_ngram > 1:
        chosen = _ngram_choice(word_id, special, word_score, wanted, masking.max_ngram, seeds[3])

    roll = tf.random.stateless_uniform([size, length], seeds[1])
    random_ids = tf.random.stateless_uniform(
        [size, length], seeds[2], minval=0, maxval=masking.vocab_size, dtype=tf.int32)
    replaced = tf.where(roll < 0.8, masking.mask_id, tf.where(roll < 0.9, ids, random_ids))

    slots = masking.max_predictions_per_seq
    first = _stable_argsort(tf.where(chosen, positions, positions + length))[:, :slots]
    taken = tf.range(slots)[None, :] < tf.reduce_sum(tf.cast(chosen, tf.int32), axis=1)[:, None]
    masked_positions = tf.where(taken, first, 0)
    result = dict(batch)
    result["input_ids"] = tf.where(chosen, replaced, ids)
    result["masked_lm_positions"] = masked_positions
    result["masked_lm_ids"] = tf.where(taken, tf.gather(ids, masked_positions, batch_dims=1), 0)
    result["masked_lm_weights"] = tf.cast(taken, tf.float32)
    return result
