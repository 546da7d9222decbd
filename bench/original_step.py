"""Time the ORIGINAL Google BERT pretraining step (its TF1 graph) or the raw-TF reference,
in an environment of its own: TensorFlow 2.15 (the last release the original's fixtures
were made on) and PyPI's `bert-tensorflow==1.0.4`, which is google-research/bert's
modeling.py, optimization.py and run_pretraining.py unchanged.

    python3.11 -m venv /tmp/tf215
    /tmp/tf215/bin/pip install "tensorflow-cpu==2.15.1" "numpy<2" bert-tensorflow==1.0.4
    /tmp/tf215/bin/python bench/original_step.py --shape tiny --steps 10 [--raw]

`bench_training.py --original_python /tmp/tf215/bin/python` runs this beside bert_tf's modes
and prints one table. Prints one line: `seq/s <rate>`.

The original imports `tensorflow.contrib.layers.layer_norm`, gone since TF 2.0; a module
put in its place here computes what contrib's did (variables `LayerNorm/beta` and
`LayerNorm/gamma`, `tf.nn.moments` over the last axis, `tf.nn.batch_normalization` with
epsilon 1e-12). The step is what the original's `model_fn` trains: `modeling.BertModel`
(is_training=True), `run_pretraining.get_masked_lm_output` / `get_next_sentence_output`,
`optimization.create_optimizer` (AdamWeightDecay, warmup then linear decay, clip 1.0),
run by `Session.run(train_op)` on constant inputs, TF1 behaviour (`disable_v2_behavior`).
TensorFlow reads `TF_CPU_ALLOCATOR_USE_BFC` from the environment (bench_training.py times
the original both with and without the pooled host allocator bert_tf turns on).
`--raw` instead times `raw_tf_reference.py` on this TensorFlow (eager TF2 behaviour), which
separates what the TensorFlow version costs from what the original's graph costs.
"""

from __future__ import annotations

import argparse
import sys
import time
import types

import numpy as np
import tensorflow as tf
from bench_training import SHAPES, pretraining_batch


def install_contrib_layer_norm() -> None:
    """Provide `tensorflow.contrib.layers.layer_norm` as contrib computed it."""
    v1 = tf.compat.v1

    def layer_norm(inputs, begin_norm_axis=-1, begin_params_axis=-1, scope=None):
        del begin_norm_axis, begin_params_axis  # the original passes -1, -1
        with v1.variable_scope(scope, default_name="LayerNorm"):
            shape = inputs.shape[-1:]
            beta = v1.get_variable("beta", shape, initializer=v1.zeros_initializer())
            gamma = v1.get_variable("gamma", shape, initializer=v1.ones_initializer())
            mean, variance = tf.nn.moments(inputs, [inputs.shape.rank - 1], keepdims=True)
            return tf.nn.batch_normalization(inputs, mean, variance, offset=beta,
                                             scale=gamma, variance_epsilon=1e-12)

    contrib = types.ModuleType("tensorflow.contrib")
    contrib.layers = types.SimpleNamespace(layer_norm=layer_norm)
    sys.modules["tensorflow.contrib"] = contrib


def original_rate(shape: str, batch: dict, steps: int) -> float:
    """Sequences/s of the original's pretraining train_op under a TF1 Session."""
    tf.compat.v1.disable_v2_behavior()
    install_contrib_layer_norm()
    from bert import modeling, optimization, run_pretraining

    v1 = tf.compat.v1
    config = modeling.BertConfig(vocab_size=30522, type_vocab_size=2, **SHAPES[shape])
    inputs = {name: tf.constant(value) for name, value in batch.items()}
    v1.set_random_seed(0)
    model = modeling.BertModel(
        config=config, is_training=True, input_ids=inputs["input_ids"],
        input_mask=inputs["input_mask"], token_type_ids=inputs["segment_ids"],
        use_one_hot_embeddings=False)
    masked_lm_loss, _, _ = run_pretraining.get_masked_lm_output(
        config, model.get_sequence_output(), model.get_embedding_table(),
        inputs["masked_lm_positions"], inputs["masked_lm_ids"], inputs["masked_lm_weights"])
    next_sentence_loss, _, _ = run_pretraining.get_next_sentence_output(
        config, model.get_pooled_output(), inputs["next_sentence_labels"])
    loss = masked_lm_loss + next_sentence_loss
    train_op = optimization.create_optimizer(loss, 1e-4, 10000, 100, use_tpu=False)
    with v1.Session() as session:
        session.run(v1.global_variables_initializer())
        for _ in range(2):
            session.run(train_op)
        start = time.perf_counter()
        for _ in range(steps):
            session.run(train_op)
        return len(batch["input_ids"]) * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", choices=tuple(SHAPES), default="tiny")
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--raw", action="store_true",
                        help="time raw_tf_reference.py on this TensorFlow instead")
    args = parser.parse_args()
    batch = pretraining_batch(args.batch, args.seq)
    if args.raw:
        from bench_training import raw_rate
        from raw_tf_reference import RawConfig

        rate = raw_rate(RawConfig(**SHAPES[args.shape]), batch, args.steps)
    else:
        rate = original_rate(args.shape, batch, args.steps)
    print(f"seq/s {rate:.4f}  (TensorFlow {tf.__version__}, numpy {np.__version__})")


if __name__ == "__main__":
    main()
