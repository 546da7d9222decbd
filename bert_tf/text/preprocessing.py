"""BertPreprocessor: raw strings -> BERT inputs, as a Keras layer, so Keras models take text.

    inputs = keras.Input(shape=(), dtype="string")
    ids = BertPreprocessor(vocab_file, seq_length=128)(inputs)
    model = keras.Model(inputs, BertClassifier(config, 2)(ids))
    model.fit(["a sentence", ...], labels); model.predict(["some text"])

The layer tokenizes in the graph (fast_tokenization.FastTokenizer: the original's ids) and
lays the pieces out as `features.encode_text` does: `[CLS] a [SEP]`, or for a pair
`(text_a, text_b)` `[CLS] a [SEP] b [SEP]` trimmed longest-first (the longer segment loses
a piece first, b on ties: the same pieces as round-robin trimming), a second text without
pieces counting as none, zero padding to `seq_length`. The vocabulary is part of the
layer's config, so a saved `.keras` file needs no vocab.txt beside it.

Shapes: B batch, S = seq_length. String ops do not compile with XLA: a model holding this
layer runs without `jit_compile`.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from bert_tf.data.tokenization import load_vocab
from bert_tf.models.modeling import SERIALIZABLE_PACKAGE
from bert_tf.text.fast_tokenization import FastTokenizer

INPUT_NAMES = ("input_ids", "input_mask", "segment_ids")


@keras.saving.register_keras_serializable(package=SERIALIZABLE_PACKAGE)
class BertPreprocessor(keras.layers.Layer):
    """Strings [B] (or a pair of [B] string tensors) -> `input_ids`, `input_mask`,
    `segment_ids`, each int32 [B, S]. `vocabulary`: a vocab.txt path or its tokens in id
    order."""

    def __init__(self, vocabulary: str | Sequence[str], seq_length: int = 128,
                 do_lower_case: bool = True, **kwargs):
        super().__init__(**kwargs)
        if seq_length < 3:
            raise ValueError(f"seq_length must be at least 3 ([CLS] a [SEP]), found {seq_length}")
        if isinstance(vocabulary, str):
            vocabulary = list(load_vocab(vocabulary))
        self.vocabulary = list(vocabulary)
        self.seq_length = seq_length
        self.do_lower_case = do_lower_case
        self.tokenizer = FastTokenizer(self.vocabulary, do_lower_case)
        self._cls_id, self._sep_id = (self.tokenizer.vocab[token] for token in ("[CLS]", "[SEP]"))
        self.supports_jit = False  # string ops
        self.built = True

    def call(self, inputs) -> dict:
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != 2:
                raise ValueError(f"BertPreprocessor takes one string tensor or a pair, got "
                                 f"{len(inputs)}")
            return self.pack(*[self.tokenizer.tokenize(tf.reshape(text, [-1]))
                               for text in inputs])
        return self.pack(self.tokenizer.tokenize(tf.reshape(inputs, [-1])))

    def pack(self, pieces_a: tf.RaggedTensor, pieces_b: tf.RaggedTensor | None = None) -> dict:
        """Piece ids [B, (P)] of one or two segments -> the padded inputs [B, S]."""
        if pieces_b is None:
            pieces_b = pieces_a[:, :0]
        pieces_a = tf.cast(pieces_a, tf.int32)
        pieces_b = tf.cast(pieces_b, tf.int32)
        has_b = pieces_b.row_lengths() > 0
        pair_a, pair_b = tf_text.RoundRobinTrimmer(self.seq_length - 3).trim([pieces_a, pieces_b])
        length_a = tf.where(has_b, pair_a.row_lengths(),
                            tf.minimum(pieces_a.row_lengths(), self.seq_length - 2))
        pieces_a = tf.ragged.boolean_mask(
            pieces_a, tf.ragged.range(pieces_a.row_lengths()) < length_a[:, None])
        rows = tf.shape(has_b, out_type=tf.int64)[0]
        cls = tf.RaggedTensor.from_row_lengths(tf.fill([rows], self._cls_id),
                                               tf.ones([rows], tf.int64))
        sep = tf.RaggedTensor.from_row_lengths(tf.fill([rows], self._sep_id),
                                               tf.ones([rows], tf.int64))
        sep_b = tf.ragged.boolean_mask(sep, has_b[:, None])  # none after a missing b
        ids = tf.concat([cls, pieces_a, sep, pair_b, sep_b], axis=1)
        segments = tf.concat([tf.zeros_like(cls), tf.zeros_like(pieces_a), tf.zeros_like(sep),
                              tf.ones_like(pair_b), tf.ones_like(sep_b)], axis=1)
        input_ids, input_mask = tf_text.pad_model_inputs(ids, self.seq_length)
        segment_ids, _ = tf_text.pad_model_inputs(segments, self.seq_length)
        return {"input_ids": input_ids, "input_mask": tf.cast(input_mask, tf.int32),
                "segment_ids": segment_ids}

    def compute_output_spec(self, inputs) -> dict:
        rows = (inputs[0] if isinstance(inputs, (list, tuple)) else inputs).shape[0]
        return {name: keras.KerasTensor((rows, self.seq_length), "int32")
                for name in INPUT_NAMES}

    def get_config(self) -> dict:
        return {**super().get_config(), "vocabulary": self.vocabulary,
                "seq_length": self.seq_length, "do_lower_case": self.do_lower_case}
