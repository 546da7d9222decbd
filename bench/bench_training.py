"""Pretraining step throughput (masked LM + NSP + AdamWeightDecay + clipping) through the
training driver: eager-graph (tf.function) vs XLA vs bf16, fp16.

    .venv/bin/python bench/bench_training.py [--shape tiny|base] [--batch N] [--seq 128]

Shapes as the fixture README's reference figures: `tiny` = 4 layers, hidden 256, batch 16;
`base` = BERT-Base, batch 8; sequence 128, 20 masked positions. Random weights. Prints
sequences/s per mode from one run (after warm-up steps), and the ratios to the original TF1
graph, HF transformers (PyTorch CPU) and keras-hub as the fixture README measured them on
this machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

SHAPES = {
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072),
    "tiny": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                 intermediate_size=1024),
}
DEFAULT_BATCH = {"tiny": 16, "base": 8}
# Sequences/s measured by the fixture README on this machine (2 cores), fp32.
REFERENCE = {
    "tiny": {"original TF1 graph": 33.8, "HF transformers (PyTorch)": 8.5,
             "keras-hub (MLM head only)": 31.8},
    "base": {"original TF1 graph": 2.24, "HF transformers (PyTorch)": 1.27,
             "keras-hub (MLM head only)": 2.09},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    batch_size = args.batch or DEFAULT_BATCH[args.shape]

    import tensorflow as tf

    import bert_tf
    from bert_tf import training
    from bert_tf.jobs import stages
    from bert_tf.objectives import PretrainingObjective
    from bert_tf.optimization import create_optimizer

    config = bert_tf.BertConfig(vocab_size=30522, type_vocab_size=2, **SHAPES[args.shape])
    rng = np.random.default_rng(0)
    predictions = 20
    batch = {
        "input_ids": rng.integers(0, 30522, (batch_size, args.seq)).astype("int32"),
        "input_mask": np.ones((batch_size, args.seq), "int32"),
        "segment_ids": np.zeros((batch_size, args.seq), "int32"),
        "masked_lm_positions": rng.integers(0, args.seq, (batch_size, predictions)).astype(
            "int32"),
        "masked_lm_ids": rng.integers(0, 30522, (batch_size, predictions)).astype("int32"),
        "masked_lm_weights": np.ones((batch_size, predictions), "float32"),
        "next_sentence_labels": rng.integers(0, 2, (batch_size, 1)).astype("int32"),
    }
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    strategy = tf.distribute.get_strategy()
    results = {}
    modes = [("fp32 tf.function", "", False), ("fp32 XLA", "", True),
             ("bf16 tf.function", "bf16", False), ("bf16 XLA", "bf16", True)]
    for label, precision, jit in modes:
        with strategy.scope():
            model = bert_tf.BertPretrainer(config, dtype=stages.dtype_policy(precision))
            optimizer = create_optimizer(1e-4, 10000, 100)
            optimizer.build(model.trainable_variables)
        run_config = training.RunConfig(output_dir=tempfile.mkdtemp(), jit_compile=jit)
        train_steps, _ = training.make_train_function(
            strategy, model, optimizer, PretrainingObjective(), run_config
        )
        iterator = iter(dataset)
        float(train_steps(iterator, tf.constant(2))[0])  # trace, compile, warm up
        start = time.perf_counter()
        float(train_steps(iterator, tf.constant(args.steps))[0])
        results[label] = batch_size * args.steps / (time.perf_counter() - start)
        print(f"{label:18s} {results[label]:7.2f} seq/s", flush=True)

    keras_hub_rate = keras_hub_step_rate(config, batch, args.steps)
    if keras_hub_rate:
        results["keras-hub fp32"] = keras_hub_rate
        print(f"{'keras-hub fp32':18s} {keras_hub_rate:7.2f} seq/s  (side by side; ours fp32 "
              f"x{results['fp32 tf.function'] / keras_hub_rate:.2f}, best "
              f"x{max(results.values()) / keras_hub_rate:.2f})", flush=True)

    print(f"\n{args.shape}: batch {batch_size}, seq {args.seq}; ratios of the best mode "
          f"({max(results, key=results.get)}) and fp32 tf.function to the references:")
    best = max(results.values())
    for name, value in REFERENCE[args.shape].items():
        print(f"  {name:28s} {value:6.2f} seq/s  best x{best / value:.2f}  "
              f"fp32 x{results['fp32 tf.function'] / value:.2f}")


def keras_hub_step_rate(config, batch: dict, steps: int) -> float | None:
    """The same step with keras-hub's BertBackbone + MaskedLMHead + an NSP dense layer and
    Keras AdamW (clip 1.0), fp32, in a tf.function; None when keras-hub is not installed."""
    try:
        import keras_hub
    except ImportError:
        print("keras-hub not installed (pip install -e '.[bench]'): no side-by-side peer")
        return None
    import keras
    import tensorflow as tf

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=config.vocab_size, num_layers=config.num_hidden_layers,
        num_heads=config.num_attention_heads, hidden_dim=config.hidden_size,
        intermediate_dim=config.intermediate_size, max_sequence_length=512,
    )
    mlm = keras_hub.layers.MaskedLMHead(token_embedding=backbone.token_embedding,
                                        intermediate_activation="gelu")
    nsp = keras.layers.Dense(2)
    optimizer = keras.optimizers.AdamW(1e-4, weight_decay=0.01, global_clipnorm=1.0)
    inputs = {"token_ids": batch["input_ids"], "padding_mask": batch["input_mask"],
              "segment_ids": batch["segment_ids"]}
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            outputs = backbone(inputs, training=True)
            logits = mlm(outputs["sequence_output"], mask_positions=batch["masked_lm_positions"])
            loss = cross_entropy(batch["masked_lm_ids"], logits,
                                 sample_weight=batch["masked_lm_weights"])
            loss += cross_entropy(batch["next_sentence_labels"],
                                  nsp(outputs["pooled_output"]))
        variables = backbone.trainable_variables + mlm.trainable_variables + (
            nsp.trainable_variables)
        optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    for _ in range(2):
        float(step())
    start = time.perf_counter()
    for _ in range(steps):
        float(step())
    return len(batch["input_ids"]) * steps / (time.perf_counter() - start)


if __name__ == "__main__":
    main()
