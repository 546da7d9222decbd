"""Pretraining step throughput (masked LM + NSP + AdamWeightDecay + clipping) through the
training driver: graph (tf.function) vs XLA, fp32 vs bf16 — with each mode's model FLOP/s
as a fraction of the machine's measured matmul peak, and the input pipeline alone.

    .venv/bin/python bench/bench_training.py [--shape tiny|base] [--batch N] [--seq 128]
        [--rounds 3] [--modes "fp32 tf.function,fp32 XLA"] [--original_python /tmp/tf215/bin/python]

Shapes as the fixture README's reference figures: `tiny` = 4 layers, hidden 256, batch 16;
`base` = BERT-Base, batch 8; sequence 128, 20 masked positions. Random weights. Every
contender is built and warmed up first, then timed once per round, the rounds interleaved so
that a slow spell of a shared machine hits all of them: the raw-TF reference
(raw_tf_reference.py), bert_tf's modes, keras-hub, and with `--original_python` the
ORIGINAL's TF1 graph and the raw reference on TensorFlow 2.15 (original_step.py, a process
each per round). The table gives medians and, for ratios, the median of per-round ratios.

Model FLOPs per sequence (`model_flops`), counting a multiply-add as 2 and the backward
pass as twice the forward:
    6 * N * S                       dense layers: N = the encoder's parameters (not the
                                    embeddings), S = sequence length
  + 6 * (H^2 + 3H + 2)              pooler and NSP head (one position per sequence)
  + 12 * L * S^2 * H                attention scores and their weighted sum, L layers
  + 6 * P * (H^2 + H * V)           masked-LM head on P predictions: its dense layer and
                                    the logits against the V x H embedding table
The embedding lookups are gathers (no FLOPs). The peak (`matmul_peak`) is the best FLOP/s
of a 2048 x 2048 matmul in this process (fp32, and bf16 for bf16 modes); MFU = model
FLOP/s / peak.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

SHAPES = {
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072),
    "tiny": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                 intermediate_size=1024),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                  intermediate_size=4096),
}
DEFAULT_BATCH = {"tiny": 16, "base": 8}
PREDICTIONS = 20
# Sequences/s measured by the fixture README on this machine (2 cores), fp32.
REFERENCE = {
    "tiny": {"original TF1 graph": 33.8, "HF transformers (PyTorch)": 8.5,
             "keras-hub (MLM head only)": 31.8},
    "base": {"original TF1 graph": 2.24, "HF transformers (PyTorch)": 1.27,
             "keras-hub (MLM head only)": 2.09},
}
# label: (mixed_precision flag, XLA)
MODES = {"fp32 tf.function": ("", False), "fp32 XLA": ("", True),
         "bf16 tf.function": ("bf16", False), "bf16 XLA": ("bf16", True)}


def pretraining_batch(batch_size: int, seq: int, vocab_size: int = 30522) -> dict:
    """A random pretraining batch (every position real, 20 masked positions)."""
    rng = np.random.default_rng(0)
    return {
        "input_ids": rng.integers(0, vocab_size, (batch_size, seq)).astype("int32"),
        "input_mask": np.ones((batch_size, seq), "int32"),
        "segment_ids": np.zeros((batch_size, seq), "int32"),
        "masked_lm_positions": rng.integers(0, seq, (batch_size, PREDICTIONS)).astype("int32"),
        "masked_lm_ids": rng.integers(0, vocab_size, (batch_size, PREDICTIONS)).astype("int32"),
        "masked_lm_weights": np.ones((batch_size, PREDICTIONS), "float32"),
        "next_sentence_labels": rng.integers(0, 2, (batch_size, 1)).astype("int32"),
    }


def model_flops(config, seq: int, predictions: int = PREDICTIONS) -> float:
    """Training FLOPs of one sequence (the module docstring's formula)."""
    hidden, layers = config.hidden_size, config.num_hidden_layers
    per_layer = 4 * hidden * hidden + 4 * hidden + 2 * hidden * config.intermediate_size + (
        config.intermediate_size + hidden) + 4 * hidden  # attention, FFN, 2 LayerNorms
    return (6 * layers * per_layer * seq + 6 * (hidden * hidden + 3 * hidden + 2)
            + 12 * layers * seq * seq * hidden
            + 6 * predictions * (hidden * hidden + hidden * config.vocab_size))


def matmul_peak(dtype: str = "float32", size: int = 2048, repeats: int = 5) -> float:
    """The best FLOP/s of a size x size matmul (8 chained, in a tf.function) here."""
    import tensorflow as tf

    a = tf.random.normal((size, size), dtype=tf.float32)
    a = tf.cast(a, dtype) / size ** 0.5

    @tf.function
    def chain(x):
        for _ in range(8):
            x = tf.matmul(x, a)
        return tf.reduce_sum(tf.cast(x[:1, :1], tf.float32))

    float(chain(a))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        float(chain(a))
        best = min(best, time.perf_counter() - start)
    return 8 * 2 * size ** 3 / best


def step_timer(config, batch: dict, precision: str, jit: bool, strategy=None):
    """The training driver's pretraining step on `batch` (repeated), traced and warmed up:
    returns `run(steps) -> seconds`."""
    import tensorflow as tf

    import bert_tf
    from bert_tf.jobs import stages
    from bert_tf.models.objectives import PretrainingObjective
    from bert_tf.training import loop
    from bert_tf.training.optimization import create_optimizer

    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = bert_tf.BertPretrainer(config, dtype=stages.dtype_policy(precision))
        optimizer = create_optimizer(1e-4, 10000, 100)
        if precision == "fp16":
            import keras

            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
    run_config = loop.RunConfig(output_dir=tempfile.mkdtemp(), jit_compile=jit)
    train_steps, _ = loop.make_train_function(
        strategy, model, optimizer, PretrainingObjective(), run_config
    )
    iterator = iter(strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors(batch).repeat()))

    def run(steps: int) -> float:
        start = time.perf_counter()
        float(train_steps(iterator, tf.constant(steps))[0])
        return time.perf_counter() - start

    run(2)  # trace, compile, warm up
    return run


def step_rate(config, batch: dict, precision: str, jit: bool, steps: int,
              strategy=None) -> float:
    """Sequences/s of the training driver's pretraining step on `batch` (repeated)."""
    run = step_timer(config, batch, precision, jit, strategy)
    return len(batch["input_ids"]) * steps / run(steps)


def raw_timer(config, batch: dict):
    """The same step as a plain graph of raw TF ops (raw_tf_reference.py), warmed up:
    returns `run(steps) -> seconds`."""
    import tensorflow as tf
    from raw_tf_reference import RawBertPretraining

    model = RawBertPretraining(config)
    tensors = {name: tf.constant(value) for name, value in batch.items()}
    return call_timer(lambda: model.train_step(tensors))


def call_timer(step):
    """`run(steps) -> seconds` for a step that is one call returning its loss (read once,
    after the last step), warmed up by two calls."""
    def run(steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            loss = step()
        float(loss)
        return time.perf_counter() - start

    run(2)
    return run


def raw_rate(config, batch: dict, steps: int) -> float:
    """Sequences/s of raw_timer's step."""
    return len(batch["input_ids"]) * steps / raw_timer(config, batch)(steps)


def subprocess_rate(python: str, args, steps: int, raw: bool, pooled: bool) -> float | None:
    """Sequences/s that original_step.py prints when run by `python` (an environment with
    TensorFlow 2.15 and the original code; see that file), with TensorFlow's default host
    allocator or (`pooled`) the BFC pool bert_tf turns on; None when it fails."""
    import subprocess

    command = [python, os.path.join(os.path.dirname(__file__), "original_step.py"),
               "--shape", args.shape, "--batch", str(args.batch), "--seq", str(args.seq),
               "--steps", str(steps)] + (["--raw"] if raw else [])
    done = subprocess.run(command, capture_output=True, text=True, env={
        **os.environ, "PYTHONPATH": os.path.dirname(__file__),
        "TF_CPU_ALLOCATOR_USE_BFC": "true" if pooled else "false"}, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("seq/s ")]
    if done.returncode or not lines:
        print(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}", flush=True)
        return None
    return float(lines[-1].split()[1])


def input_rate(batch: dict, batches: int = 200) -> float:
    """Sequences/s of the pretraining input pipeline alone (`input_pipeline
    .pretraining_dataset`, training mode) reading records of `batch`'s shape."""
    import tensorflow as tf

    from bert_tf.training.input_pipeline import pretraining_dataset

    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "records.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for row in range(len(batch["input_ids"])):
            features = {
                name: tf.train.Feature(float_list=tf.train.FloatList(value=value[row]))
                if value.dtype == np.float32 else
                tf.train.Feature(int64_list=tf.train.Int64List(value=value[row]))
                for name, value in batch.items()}
            writer.write(tf.train.Example(
                features=tf.train.Features(feature=features)).SerializeToString())
    size, seq = batch["input_ids"].shape
    dataset = pretraining_dataset(path, size, seq, PREDICTIONS, is_training=True, seed=1)
    iterator = iter(dataset)
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return size * batches / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", choices=("tiny", "base"), default="tiny")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1,
                        help="interleaved rounds: each contender is timed once per round; "
                             "the table shows medians and per-round paired ratios")
    parser.add_argument("--modes", default=",".join(MODES),
                        help=f"bert_tf modes to time, comma-separated, of: {', '.join(MODES)}")
    parser.add_argument("--original_python",
                        help="a Python with TensorFlow 2.15 and bert-tensorflow==1.0.4 "
                             "(original_step.py): also time the original's TF1 graph, and "
                             "the raw reference on that TensorFlow, in every round")
    args = parser.parse_args()
    args.batch = args.batch or DEFAULT_BATCH[args.shape]

    import bert_tf

    config = bert_tf.BertConfig(vocab_size=30522, type_vocab_size=2, **SHAPES[args.shape])
    batch = pretraining_batch(args.batch, args.seq)
    peaks = {"": matmul_peak("float32"), "bf16": matmul_peak("bfloat16")}
    print(f"matmul peak here: fp32 {peaks[''] / 1e9:.1f} GFLOP/s, bf16 "
          f"{peaks['bf16'] / 1e9:.1f} GFLOP/s; model {model_flops(config, args.seq) / 1e9:.2f} "
          f"GFLOP per sequence", flush=True)
    print(f"input pipeline alone: {input_rate(batch):.0f} seq/s", flush=True)
    timers = {"raw TF graph (reference)": raw_timer(config, batch)}
    for label in args.modes.split(","):
        timers[label] = step_timer(config, batch, *MODES[label])
    keras_hub = keras_hub_timer(config, batch)
    if keras_hub:
        timers["keras-hub fp32"] = keras_hub
    rates = {label: [] for label in timers}
    for round_index in range(args.rounds):
        for label, run in timers.items():
            rates[label].append(args.batch * args.steps / run(args.steps))
        if args.original_python:
            for label, raw, pooled in ((ORIGINAL, False, False), (ORIGINAL_POOLED, False, True),
                                       ("raw TF graph on TF 2.15", True, True)):
                rates.setdefault(label, []).append(
                    subprocess_rate(args.original_python, args, args.steps, raw, pooled))
        print(f"round {round_index + 1}: " + ", ".join(
            f"{label} {values[-1] or float('nan'):.2f}" for label, values in rates.items()),
            flush=True)
    print_table(rates, config, args, peaks)


ORIGINAL = "original TF1 graph (TF 2.15)"
ORIGINAL_POOLED = "original, BFC allocator"


def print_table(rates: dict, config, args, peaks: dict) -> None:
    """Medians over rounds (the upper middle value for an even count); ratios are medians
    of per-round ratios (paired), skipping rounds where either side failed."""
    def median(values):
        values = sorted(v for v in values if v)
        return values[len(values) // 2] if values else float("nan")

    def paired(label, base):
        ratios = [a / b for a, b in zip(rates[label], rates.get(base, []), strict=False)
                  if a and b]
        return f"{median(ratios):.2f}" if ratios else "—"

    print(f"\n{args.shape}: batch {args.batch}, seq {args.seq}, {args.steps} steps x "
          f"{args.rounds} rounds; the rounds column gives each round's seq/s")
    print("| step | seq/s (median) | rounds | x original | x original (BFC) | x raw TF 2.21 "
          "| GFLOP/s | MFU |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for label, values in rates.items():
        precision = MODES.get(label, ("", False))[0]
        achieved = median(values) * model_flops(config, args.seq)
        rounds = " / ".join(f"{v:.2f}" if v else "failed" for v in values)
        ratios = " | ".join(paired(label, base) for base in (
            ORIGINAL, ORIGINAL_POOLED, "raw TF graph (reference)"))
        print(f"| {label} | {median(values):.2f} | {rounds} | {ratios} | "
              f"{achieved / 1e9:.1f} | {achieved / peaks[precision]:.0%} |", flush=True)
    print("\nThe fixture README's figures for this machine type (other days, not side by side):")
    for name, value in REFERENCE[args.shape].items():
        print(f"  {name:28s} {value:6.2f} seq/s")


def keras_hub_timer(config, batch: dict):
    """The same step with keras-hub's BertBackbone + MaskedLMHead + an NSP dense layer and
    Keras AdamW (clip 1.0), fp32, in a tf.function, warmed up: `run(steps) -> seconds`;
    None when keras-hub is not installed."""
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

    return call_timer(step)


if __name__ == "__main__":
    main()
