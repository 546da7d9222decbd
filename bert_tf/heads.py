"""Output heads in the original checkpoint layout, and the models that put them on BERT.

- `MaskedLMHead`: `cls/predictions/transform/{dense,LayerNorm}` then logits against the
  word embedding table (tied) plus `cls/predictions/output_bias` [V].
- `NextSentenceHead`: `cls/seq_relationship/output_weights` [2, H] (note [out, in], as the
  original stores it) and `output_bias` [2].

Shapes: B batch, S sequence length, P masked positions per sequence, H hidden, V vocab.
"""

from __future__ import annotations

import keras
from keras import ops

from bert_tf.config import BertConfig
from bert_tf.modeling import (
    BertModel,
    LayerNorm,
    embedding_width,
    get_activation,
    truncated_normal,
)


def gather_positions(sequence_output, positions):
    """[B, S, H] and [B, P] int positions -> [B, P, H], the vectors at those positions."""
    indices = ops.expand_dims(ops.cast(positions, "int32"), -1)
    return ops.take_along_axis(sequence_output, indices, axis=1)


def label_log_probs(log_probs, labels):
    """[..., C] log-probabilities and [...] int labels -> [...] log p(label)."""
    labels = ops.expand_dims(ops.cast(labels, "int32"), -1)
    return ops.squeeze(ops.take_along_axis(log_probs, labels, axis=-1), -1)


class MaskedLMHead(keras.layers.Layer):
    """`cls/predictions`: predicts the original token at each masked position."""

    def __init__(self, config: BertConfig, **kwargs):
        super().__init__(name="predictions", **kwargs)
        self.config = config

    def build(self, input_shape=None):
        config = self.config
        with keras.name_scope("transform"):
            # To the embedding width E (= H unless ALBERT factorizes the embeddings).
            self.transform = keras.layers.Dense(
                embedding_width(config), activation=get_activation(config.hidden_act),
                kernel_initializer=truncated_normal(config), name="dense",
                dtype=self.dtype_policy,
            )
            self.transform.build((None, None, config.hidden_size))
            self.layer_norm = LayerNorm(embedding_width(config), dtype=self.dtype_policy)
            self.layer_norm.build()
        self.output_bias = self.add_weight(
            name="output_bias", shape=(config.vocab_size,), initializer="zeros"
        )

    def call(self, sequence_output, positions, word_embeddings):
        """[B, S, H], [B, P] positions, [V, E] table -> log-probabilities [B, P, V] (float32)."""
        x = self.layer_norm(self.transform(gather_positions(sequence_output, positions)))
        table = ops.cast(word_embeddings, x.dtype)
        logits = ops.matmul(x, ops.transpose(table))  # [B, P, V]; no copy of the table
        logits = ops.cast(logits, "float32") + ops.cast(self.output_bias, "float32")
        return ops.log_softmax(logits, axis=-1)


class NextSentenceHead(keras.layers.Layer):
    """`cls/seq_relationship`: is segment B the real continuation of segment A?"""

    def __init__(self, config: BertConfig, **kwargs):
        super().__init__(name="seq_relationship", **kwargs)
        self.config = config

    def build(self, input_shape=None):
        self.output_weights = self.add_weight(
            name="output_weights", shape=(2, self.config.hidden_size),
            initializer=truncated_normal(self.config),
        )
        self.output_bias = self.add_weight(name="output_bias", shape=(2,), initializer="zeros")

    def call(self, pooled_output):
        """[B, H] -> log-probabilities [B, 2] (float32): 0 = is next, 1 = random."""
        logits = ops.matmul(pooled_output, ops.transpose(self.output_weights))
        logits = ops.cast(logits, "float32") + ops.cast(self.output_bias, "float32")
        return ops.log_softmax(logits, axis=-1)


class BertPretrainer(keras.Model):
    """BertModel + masked-LM + next-sentence heads, as the original `run_pretraining.py`.

    Inputs: the BertModel inputs plus `masked_lm_positions` [B, P]. Returns the BertModel
    outputs plus `masked_lm_log_probs` [B, P, V] and `next_sentence_log_probs` [B, 2].
    """

    # The heads: what an init checkpoint of the encoder alone may lack when pretraining.
    HEAD_VARIABLES = ("cls/",)

    def __init__(self, config: BertConfig, **kwargs):
        kwargs.setdefault("name", "bert_pretrainer")
        super().__init__(**kwargs)
        self.config = config
        self.bert = BertModel(config, dtype=self.dtype_policy)
        with keras.name_scope("cls"):
            self.masked_lm = MaskedLMHead(config, dtype=self.dtype_policy)
            self.masked_lm.build()
            self.next_sentence = NextSentenceHead(config, dtype=self.dtype_policy)
            self.next_sentence.build()
        self.built = True

    def call(self, inputs: dict, training=False) -> dict:
        outputs = dict(self.bert(inputs, training=training))
        outputs["masked_lm_log_probs"] = self.masked_lm(
            outputs["sequence_output"], inputs["masked_lm_positions"], self.bert.word_embeddings
        )
        outputs["next_sentence_log_probs"] = self.next_sentence(outputs["pooled_output"])
        return outputs
