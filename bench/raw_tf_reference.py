"""The pretraining step as a plain TF2 graph of raw ops: bench_training's reference.

No Keras: `tf.Variable`s, `tf.gather` embeddings, `tf.matmul` dense layers on [B*S, H]
matrices (the original's reshape-to-matrix layout), `tf.nn.dropout`, the original's
LayerNorm formula, attention as [B, N, S, D] batched matmuls with the -10000 mask, the
masked-LM and NSP losses as the original writes them, global-norm clipping at 1.0 and a
hand-written AdamWeightDecay update (no bias correction, decay off for LayerNorm and bias;
a constant learning rate: the schedule's few scalar ops are left out), all in one
`tf.function`. Timed in the same process as the Keras model, it separates what
the TensorFlow version costs from what the Keras code costs (the original ran on TF 2.15).
"""

from __future__ import annotations

import dataclasses
import math

import tensorflow as tf


@dataclasses.dataclass
class RawConfig:
    """The BertConfig fields the reference reads (BERT-Base defaults), so the reference also
    runs where bert_tf is not installed (original_step.py's TensorFlow 2.15 environment)."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02


def gelu(x):
    return 0.5 * x * (1.0 + tf.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def layer_norm(x, gamma, beta):
    mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
    return (x - mean) * tf.math.rsqrt(variance + 1e-12) * gamma + beta


class RawBertPretraining:
    """BERT + masked-LM + NSP heads and their AdamWeightDecay, as raw TF variables/ops."""

    def __init__(self, config, learning_rate: float = 1e-4, seed: int = 0):
        self.config = config
        self.learning_rate = learning_rate
        init = tf.random.stateless_truncated_normal
        counter = iter(range(10_000))
        hidden, inner = config.hidden_size, config.intermediate_size
        self.variables: dict[str, tf.Variable] = {}

        def add(name, shape, zeros=False, ones=False):
            if ones:
                value = tf.ones(shape)
            elif zeros:
                value = tf.zeros(shape)
            else:
                value = init(shape, seed=[seed, next(counter)], stddev=config.initializer_range)
            self.variables[name] = tf.Variable(value, name=name)

        add("word", [config.vocab_size, hidden])
        add("type", [config.type_vocab_size, hidden])
        add("position", [config.max_position_embeddings, hidden])
        add("emb/LayerNorm/gamma", [hidden], ones=True)
        add("emb/LayerNorm/beta", [hidden], zeros=True)
        for i in range(config.num_hidden_layers):
            for name, shape in (("q", [hidden, hidden]), ("k", [hidden, hidden]),
                                ("v", [hidden, hidden]), ("o", [hidden, hidden]),
                                ("inter", [hidden, inner]), ("out", [inner, hidden])):
                add(f"l{i}/{name}/kernel", shape)
                add(f"l{i}/{name}/bias", shape[-1:], zeros=True)
            for norm in ("attn", "ffn"):
                add(f"l{i}/{norm}/LayerNorm/gamma", [hidden], ones=True)
                add(f"l{i}/{norm}/LayerNorm/beta", [hidden], zeros=True)
        add("pooler/kernel", [hidden, hidden])
        add("pooler/bias", [hidden], zeros=True)
        add("mlm/kernel", [hidden, hidden])
        add("mlm/bias", [hidden], zeros=True)
        add("mlm/LayerNorm/gamma", [hidden], ones=True)
        add("mlm/LayerNorm/beta", [hidden], zeros=True)
        add("mlm/output_bias", [config.vocab_size], zeros=True)
        add("nsp/output_weights", [2, hidden])
        add("nsp/output_bias", [2], zeros=True)
        self.slots = {name: (tf.Variable(tf.zeros_like(v)), tf.Variable(tf.zeros_like(v)))
                      for name, v in self.variables.items()}
        self.step = tf.Variable(0, dtype=tf.int64)

    def dense(self, x, name, activation=None):
        x = tf.matmul(x, self.variables[f"{name}/kernel"]) + self.variables[f"{name}/bias"]
        return activation(x) if activation else x

    def encoder(self, batch, dropout: float):
        v, config = self.variables, self.config
        ids, mask = batch["input_ids"], batch["input_mask"]
        size, seq = tf.shape(ids)[0], tf.shape(ids)[1]
        hidden, heads = config.hidden_size, config.num_attention_heads
        head_size = hidden // heads
        x = (tf.gather(v["word"], ids) + tf.gather(v["type"], batch["segment_ids"])
             + v["position"][:seq][None])
        x = tf.nn.dropout(layer_norm(x, v["emb/LayerNorm/gamma"], v["emb/LayerNorm/beta"]),
                          dropout)
        x = tf.reshape(x, [-1, hidden])
        bias = (1.0 - tf.cast(mask[:, None, None, :], tf.float32)) * -10000.0

        def heads_of(t):  # [B*S, H] -> [B, N, S, D]
            return tf.transpose(tf.reshape(t, [size, seq, heads, head_size]), [0, 2, 1, 3])

        for i in range(config.num_hidden_layers):
            layer = f"l{i}"
            q, k, val = (heads_of(self.dense(x, f"{layer}/{n}")) for n in ("q", "k", "v"))
            scores = tf.matmul(q, k, transpose_b=True) * (1.0 / math.sqrt(head_size)) + bias
            probs = tf.nn.dropout(tf.nn.softmax(scores), dropout)
            context = tf.reshape(tf.transpose(tf.matmul(probs, val), [0, 2, 1, 3]),
                                 [-1, hidden])
            attended = tf.nn.dropout(self.dense(context, f"{layer}/o"), dropout)
            x = layer_norm(attended + x, v[f"{layer}/attn/LayerNorm/gamma"],
                           v[f"{layer}/attn/LayerNorm/beta"])
            ffn = self.dense(self.dense(x, f"{layer}/inter", gelu), f"{layer}/out")
            x = layer_norm(tf.nn.dropout(ffn, dropout) + x, v[f"{layer}/ffn/LayerNorm/gamma"],
                           v[f"{layer}/ffn/LayerNorm/beta"])
        return tf.reshape(x, [size, seq, hidden])

    def loss(self, batch, dropout: float = 0.1):
        v = self.variables
        sequence = self.encoder(batch, dropout)
        size, seq = tf.shape(sequence)[0], tf.shape(sequence)[1]
        # Masked LM: gather the predicted positions from the flattened sequence.
        flat = tf.reshape(sequence, [-1, self.config.hidden_size])
        offsets = tf.reshape(tf.range(size) * seq, [-1, 1])
        positions = tf.reshape(batch["masked_lm_positions"] + offsets, [-1])
        x = self.dense(tf.gather(flat, positions), "mlm", gelu)
        x = layer_norm(x, v["mlm/LayerNorm/gamma"], v["mlm/LayerNorm/beta"])
        logits = tf.matmul(x, v["word"], transpose_b=True) + v["mlm/output_bias"]
        log_probs = tf.nn.log_softmax(logits)
        labels = tf.one_hot(tf.reshape(batch["masked_lm_ids"], [-1]), self.config.vocab_size)
        weights = tf.reshape(batch["masked_lm_weights"], [-1])
        per_example = -tf.reduce_sum(log_probs * labels, axis=-1)
        masked_lm = tf.reduce_sum(weights * per_example) / (tf.reduce_sum(weights) + 1e-5)
        # Next sentence: pooler on the first token.
        pooled = self.dense(sequence[:, 0], "pooler", tf.tanh)
        nsp_logits = tf.matmul(pooled, v["nsp/output_weights"], transpose_b=True) + v[
            "nsp/output_bias"]
        nsp_labels = tf.one_hot(tf.reshape(batch["next_sentence_labels"], [-1]), 2)
        nsp = tf.reduce_mean(-tf.reduce_sum(tf.nn.log_softmax(nsp_logits) * nsp_labels, -1))
        return masked_lm + nsp

    @tf.function
    def train_step(self, batch):
        names = list(self.variables)
        variables = [self.variables[name] for name in names]
        with tf.GradientTape() as tape:
            loss = self.loss(batch)
        gradients = [tf.convert_to_tensor(g) for g in tape.gradient(loss, variables)]
        gradients, _ = tf.clip_by_global_norm(gradients, 1.0)
        for name, variable, gradient in zip(names, variables, gradients, strict=True):
            m, v = self.slots[name]
            m.assign(0.9 * m + 0.1 * gradient)
            v.assign(0.999 * v + 0.001 * tf.square(gradient))
            update = m / (tf.sqrt(v) + 1e-6)
            if "LayerNorm" not in name and "bias" not in name:
                update += 0.01 * variable
            variable.assign_sub(self.learning_rate * update)
        self.step.assign_add(1)
        return loss
