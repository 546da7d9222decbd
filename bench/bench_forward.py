"""Forward-pass throughput of BertModel: eager vs tf.function vs XLA, fp32 and bf16.

    .venv/bin/python bench/bench_forward.py [--shape base|tiny] [--batch 8] [--seq 128]

Random weights in the BERT-Base shape (12 layers, hidden 768, 12 heads, intermediate 3072)
unless --shape=tiny. Prints sequences/s for each mode from one run (after warm-up).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

SHAPES = {
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072),
    "tiny": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                 intermediate_size=1024),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", choices=sorted(SHAPES), default="base")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()

    import tensorflow as tf

    import bert_tf

    config = bert_tf.BertConfig(vocab_size=30522, type_vocab_size=2, **SHAPES[args.shape])
    rng = np.random.default_rng(0)
    inputs = {
        "input_ids": tf.constant(rng.integers(0, 30522, (args.batch, args.seq)), tf.int32),
        "input_mask": tf.ones((args.batch, args.seq), tf.int32),
        "segment_ids": tf.zeros((args.batch, args.seq), tf.int32),
    }
    results = {}
    for policy in ("float32", "mixed_bfloat16"):
        model = bert_tf.BertModel(config, dtype=policy)
        modes = {
            "eager": lambda x, m=model: m(x)["sequence_output"],
            "tf.function": tf.function(lambda x, m=model: m(x)["sequence_output"]),
            "tf.function(jit_compile=True)": tf.function(
                lambda x, m=model: m(x)["sequence_output"], jit_compile=True
            ),
        }
        for mode, run in modes.items():
            for _ in range(2):
                run(inputs).numpy()
            start = time.perf_counter()
            for _ in range(args.steps):
                run(inputs).numpy()
            seconds = (time.perf_counter() - start) / args.steps
            results[f"{policy:15s} {mode}"] = args.batch / seconds
    base = next(iter(results.values()))
    print(f"BertModel {args.shape} shape, batch {args.batch}, seq {args.seq}, {args.steps} steps")
    for name, rate in results.items():
        print(f"{name:48s} {rate:8.2f} sequences/s  {rate / base:5.2f}x eager fp32")


if __name__ == "__main__":
    main()
