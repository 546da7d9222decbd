"""Output heads in the original checkpoint layout, and the models that put them on BERT.

- `MaskedLMHead`: `cls/predictions/transform/{dense,LayerNorm}` then logits against the
  word embedding table (tied) plus `cls/predictions/output_bias` [V].
- `NextSentenceHead`: `cls/seq_relationship/output_weights` [2, H] (note [out, in], as the
  original stores it) and `output_bias` [2].
- `BertPretrainer` (run_pretraining.py): BertModel + both heads.
- `BertClassifier` (run_classifier.py): top-level `output_weights` [L, H], `output_bias`.
- `BertSpanModel` (run_squad.py): `cls/squad/output_weights` [2, H], `output_bias` [2].
- `BertTokenClassifier` (run_ner.py): a label per position, top-level `output_weights`
  [L, H] and `output_bias` as the classifier's.

Each model's `HEAD_VARIABLES` names what fine-tuning adds, the only variables an init
checkpoint of the encoder may lack. The original's losses on their outputs are in
objectives.py (what the scripts train with).

Keras: every model works with `compile` / `fit` / `evaluate` / `predict` and saves to a
`.keras` file (`get_config`; classes registered under the package name "bert_tf"). The
classifiers return their logits as one tensor, so the plain Keras call works:
`compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))` and
`fit(inputs, label_ids)`. Models with two outputs return a dict and take a loss per output
the Keras way: `compile(loss={"start_logits": ..., "end_logits": ...})` with `y` (and
`sample_weight`, e.g. `masked_lm_weights` for the pretrainer) as dicts with the same keys.

Shapes: B batch, S sequence length, P masked positions per sequence, H hidden, V vocab,
L labels.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from bert_tf.config import BertConfig
from bert_tf.models.modeling import (
    SERIALIZABLE_PACKAGE,
    BertModel,
    LayerNorm,
    Serializable,
    embedding_width,
    get_activation,
    truncated_normal,
)


def gather_positions(sequence_output, positions):
    """[B, S, H] and [B, P] int positions -> [B, P, H], the vectors at those positions."""
    indices = ops.expand_dims(ops.cast(positions, "int32"), -1)
    return ops.take_along_axis(sequence_output, indices, axis=1)


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


@keras.saving.register_keras_serializable(package=SERIALIZABLE_PACKAGE)
class BertPretrainer(Serializable, keras.Model):
    """BertModel + masked-LM + next-sentence heads, as the original `run_pretraining.py`.

    Inputs: the BertModel inputs plus `masked_lm_positions` [B, P]. Returns
    `masked_lm_log_probs` [B, P, V] and `next_sentence_log_probs` [B, 2] (the encoder's own
    outputs: `model.bert(inputs)`).

    Example:

    ```python
    config = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64)
    model = BertPretrainer(config)
    outputs = model({
        "input_ids": np.array([[2, 5, 4, 3, 0]]), "input_mask": np.array([[1, 1, 1, 1, 0]]),
        "segment_ids": np.zeros((1, 5), "int32"), "masked_lm_positions": np.array([[2]]),
    })
    outputs["masked_lm_log_probs"].shape       # (1, 1, 99)
    outputs["next_sentence_log_probs"].shape   # (1, 2)
    checkpoint.save_checkpoint(model, "/tmp/pretrainer/model.ckpt")  # bert/*, cls/*
    ```
    """

    # The heads: what an init checkpoint of the encoder alone may lack when pretraining.
    HEAD_VARIABLES = ("cls/",)

    def __init__(self, config: BertConfig, **kwargs):
        """Makes the model; its variables are built on the first call.

        Args:
          config: the encoder's `BertConfig`; the heads use its sizes.
          **kwargs: Keras model arguments (`name`, `dtype`).
        """
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
        encoded = self.bert(inputs, training=training)
        return {
            "masked_lm_log_probs": self.masked_lm(
                encoded["sequence_output"], inputs["masked_lm_positions"],
                self.bert.word_embeddings),
            "next_sentence_log_probs": self.next_sentence(encoded["pooled_output"]),
        }


@keras.saving.register_keras_serializable(package=SERIALIZABLE_PACKAGE)
class BertClassifier(Serializable, keras.Model):
    """BertModel + the original classifier: dropout 0.1 on the pooled output, then
    top-level `output_weights` [num_labels, H] and `output_bias` [num_labels].

    Returns the logits [B, L] (float32); for regression (L = 1) the one logit is the
    prediction.

    Example (MRPC: two labels, on a published encoder):

    ```python
    config = BertConfig.from_json_file("uncased_L-12_H-768_A-12/bert_config.json")
    model = BertClassifier(config, num_labels=2)
    report = checkpoint.load_checkpoint(model, "uncased_L-12_H-768_A-12/bert_model.ckpt")
    report.missing                  # ['output_bias', 'output_weights']: the new head
    logits = model({"input_ids": ids, "input_mask": mask, "segment_ids": segments})
    logits.shape                    # (batch, 2)
    model.compile(optimizer=keras.optimizers.AdamW(2e-5),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(train_dataset)        # tf.data of (input dict, label_ids)
    ```
    """

    # The head fine-tuning adds: the only variables an init checkpoint may lack.
    HEAD_VARIABLES = ("output_weights", "output_bias")
    CONFIG_ARGS = ("num_labels",)

    def __init__(self, config: BertConfig, num_labels: int, **kwargs):
        """Makes the model; its variables are built on the first call.

        Args:
          config: the encoder's `BertConfig`.
          num_labels: the classes (1: a regression score; multi-label: one sigmoid each).
          **kwargs: Keras model arguments (`name`, `dtype`).
        """
        kwargs.setdefault("name", "bert_classifier")
        super().__init__(**kwargs)
        self.config = config
        self.num_labels = num_labels
        self.bert = BertModel(config, dtype=self.dtype_policy)
        self.dropout = keras.layers.Dropout(0.1, dtype=self.dtype_policy)
        # Top-level names, as the original creates them outside any scope.
        self.output_weights = keras.Variable(
            truncated_normal(config)((num_labels, config.hidden_size)), name="output_weights"
        )
        self.output_bias = keras.Variable(np.zeros(num_labels, "float32"), name="output_bias")
        self.built = True

    def call(self, inputs: dict, training=False):
        """-> logits [B, L] (float32)."""
        pooled = self.bert(inputs, training=training, pooled_only=True)["pooled_output"]
        pooled = self.dropout(pooled, training=training)
        weights = ops.cast(self.output_weights, pooled.dtype)
        logits = ops.cast(ops.matmul(pooled, ops.transpose(weights)), "float32")
        return logits + self.output_bias


@keras.saving.register_keras_serializable(package=SERIALIZABLE_PACKAGE)
class BertSpanModel(Serializable, keras.Model):
    """BertModel + the original span head `cls/squad/output_weights` [2, H] and
    `cls/squad/output_bias` [2]. Returns start_logits and end_logits [B, S] (float32).

    Example:

    ```python
    model = BertSpanModel(BertConfig.from_json_file("bert_config.json"))
    checkpoint.load_checkpoint(model, "squad_output/model.ckpt-5000")
    outputs = model({"input_ids": ids, "input_mask": mask, "segment_ids": segments})
    start = outputs["start_logits"].numpy().argmax(-1)  # [B] best start positions
    ```
    """

    # The head fine-tuning adds: the only variables an init checkpoint may lack.
    HEAD_VARIABLES = ("cls/squad/",)

    def __init__(self, config: BertConfig, **kwargs):
        """Makes the model; its variables are built on the first call.

        Args:
          config: the encoder's `BertConfig`.
          **kwargs: Keras model arguments (`name`, `dtype`).
        """
        kwargs.setdefault("name", "bert_squad")
        super().__init__(**kwargs)
        self.config = config
        self.bert = BertModel(config, dtype=self.dtype_policy)
        with keras.name_scope("cls"), keras.name_scope("squad"):
            self.output_weights = keras.Variable(
                truncated_normal(config)((2, config.hidden_size)), name="output_weights"
            )
            self.output_bias = keras.Variable(np.zeros(2, "float32"), name="output_bias")
        self.built = True

    def call(self, inputs: dict, training=False) -> dict:
        sequence = self.bert(inputs, training=training)["sequence_output"]
        weights = ops.cast(self.output_weights, sequence.dtype)
        logits = ops.cast(ops.einsum("bsh,kh->bsk", sequence, weights), "float32")
        logits = logits + self.output_bias
        return {"start_logits": logits[:, :, 0], "end_logits": logits[:, :, 1]}


@keras.saving.register_keras_serializable(package=SERIALIZABLE_PACKAGE)
class BertTokenClassifier(BertClassifier):
    """BertModel + a tag for every position (NER, run_ner.py): dropout 0.1 on the sequence
    output, then the classifier's variables (top-level `output_weights` [num_labels, H],
    `output_bias` [num_labels]) applied at every position.

    Returns the logits [B, S, L] (float32); `ops.argmax(logits, -1)` are the tags.

    Example:

    ```python
    model = BertTokenClassifier(BertConfig.from_json_file("bert_config.json"), num_labels=9)
    checkpoint.load_checkpoint(model, "ner_output/model.ckpt-1317")
    tags = model({"input_ids": ids, "input_mask": mask}).numpy().argmax(-1)  # [B, S]
    ```
    """

    def __init__(self, config: BertConfig, num_labels: int, **kwargs):
        """Makes the model; its variables are built on the first call.

        Args:
          config: the encoder's `BertConfig`.
          num_labels: the tags (label_list.txt's lines).
          **kwargs: Keras model arguments (`name`, `dtype`).
        """
        kwargs.setdefault("name", "bert_token_classifier")
        super().__init__(config, num_labels, **kwargs)

    def call(self, inputs: dict, training=False):
        """-> logits [B, S, L] (float32)."""
        sequence = self.dropout(self.bert(inputs, training=training)["sequence_output"],
                                training=training)
        weights = ops.cast(self.output_weights, sequence.dtype)
        logits = ops.cast(ops.einsum("bsh,lh->bsl", sequence, weights), "float32")
        return logits + self.output_bias
