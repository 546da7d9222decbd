"""What a classifier saves by computing the last layer for the first token only.

    .venv/bin/python bench/bench_pooled_only.py [--config minilm|base] [--batch 32] [--seq 128]

`BertClassifier` asks its encoder for `pooled_only` outputs: the last transformer layer
still reads every row (keys and values) but computes its attention, output projection and
feed-forward block for the [CLS] row alone. This times, in one process and interleaved,
`bert(inputs)["pooled_output"]` (every row of every layer, as the original computes it) and
`bert(inputs, pooled_only=True)["pooled_output"]`, as a forward pass (prediction) and as
forward + backward (a training step's gradients), with tf.function, float32, random inputs
and the MiniLM fixture's shape (6 layers, hidden 384) or BERT-Base's (12 layers, 768). Prints
the median of `--repeats` timings of `--steps` calls each, and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

MINILM_CONFIG = (Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "minilm_ckpt"
                 / "bert_config.json")
BASE = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
            intermediate_size=3072, type_vocab_size=2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", choices=("minilm", "base"), default="minilm")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import tensorflow as tf

    import bert_tf

    config = (bert_tf.BertConfig.from_json_file(str(MINILM_CONFIG)) if args.config == "minilm"
              else bert_tf.BertConfig(**BASE))
    model = bert_tf.BertModel(config)
    rng = np.random.default_rng(0)
    inputs = {
        "input_ids": tf.constant(rng.integers(0, config.vocab_size, (args.batch, args.seq)),
                                 tf.int32),
        "input_mask": tf.ones((args.batch, args.seq), tf.int32),
        "segment_ids": tf.zeros((args.batch, args.seq), tf.int32),
    }

    def forward(pooled_only: bool):
        return tf.function(lambda x: model(x, pooled_only=pooled_only)["pooled_output"])

    def gradients(pooled_only: bool):
        @tf.function
        def step(x):
            with tf.GradientTape() as tape:
                pooled = model(x, training=True, pooled_only=pooled_only)["pooled_output"]
                loss = tf.reduce_sum(tf.square(pooled))
            grads = tape.gradient(loss, model.trainable_variables)
            # Return every gradient (summed), or the graph prunes the ones not returned.
            return tf.add_n([tf.reduce_sum(g.values if isinstance(g, tf.IndexedSlices) else g)
                             for g in grads if g is not None])
        return step

    runs = {(kind, pooled_only): make(pooled_only)
            for kind, make in (("forward", forward), ("forward + backward", gradients))
            for pooled_only in (False, True)}
    seconds = {key: [] for key in runs}
    for run in runs.values():
        run(inputs).numpy()
    for _ in range(args.repeats):
        for key, run in runs.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                run(inputs).numpy()
            seconds[key].append((time.perf_counter() - start) / args.steps)
    print(f"{args.config}: {config.num_hidden_layers} layers, hidden {config.hidden_size}, "
          f"batch {args.batch}, seq {args.seq}, float32, median of {args.repeats} x "
          f"{args.steps} calls")
    for kind in ("forward", "forward + backward"):
        every, first = (statistics.median(seconds[kind, p]) for p in (False, True))
        print(f"{kind:20s} every row {args.batch / every:7.1f} seq/s   pooled_only "
              f"{args.batch / first:7.1f} seq/s   {every / first:.2f}x")


if __name__ == "__main__":
    main()
