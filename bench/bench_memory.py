"""Peak memory and step time of a pretraining step with and without gradient checkpointing.

    .venv/bin/python bench/bench_memory.py [--shape base] [--seq 512] [--batch 8] [--steps 2]
    .venv/bin/python bench/bench_memory.py --shape large --seq 512 --batch 1,2 --only on

Each configuration runs in a fresh process: the training driver's step (masked LM with 20
predictions + NSP + AdamWeightDecay + clipping, random weights, fp32, tf.function) on one
batch, once to trace and warm up, then `--steps` timed steps. Peak memory is the process's
peak resident set (`ru_maxrss`; on a GPU it would be `tf.config.experimental
.get_memory_info`'s peak, printed too where the device has one); "before steps" is the
resident set after the model and the optimizer's slots exist, so their difference is what
the step itself (activations, gradients, workspace) needs. With two or more batch sizes it
also fits peak = fixed + per-example x batch and states the largest batch under 16 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_training  # noqa: E402  (the shapes and the batch live there)

GIB = 1024 ** 3


def peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def child(shape: str, seq: int, batch_size: int, steps: int, checkpointing: bool) -> dict:
    """One configuration, in this (fresh) process."""
    import tensorflow as tf

    import bert_tf
    from bert_tf.models.objectives import PretrainingObjective
    from bert_tf.training import loop
    from bert_tf.training.optimization import create_optimizer

    config = bert_tf.BertConfig(vocab_size=30522, type_vocab_size=2,
                                max_position_embeddings=max(512, seq),
                                **bench_training.SHAPES[shape])
    batch = bench_training.pretraining_batch(batch_size, seq)
    strategy = tf.distribute.get_strategy()
    model = bert_tf.BertPretrainer(config)
    model.bert.gradient_checkpointing = checkpointing
    optimizer = create_optimizer(1e-4, 10000, 100)
    optimizer.build(model.trainable_variables)
    before = peak_bytes()
    train_steps, _ = loop.make_train_function(
        strategy, model, optimizer, PretrainingObjective(),
        loop.RunConfig(output_dir=tempfile.mkdtemp()))
    iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())
    float(train_steps(iterator, tf.constant(1))[0])
    started = time.perf_counter()
    float(train_steps(iterator, tf.constant(steps))[0])
    seconds = (time.perf_counter() - started) / steps
    devices = tf.config.list_logical_devices("GPU")
    device_peak = (tf.config.experimental.get_memory_info(devices[0].name)["peak"]
                   if devices else None)
    return {"shape": shape, "seq": seq, "batch": batch_size, "checkpointing": checkpointing,
            "seconds_per_step": seconds, "peak_gib": peak_bytes() / GIB,
            "before_steps_gib": before / GIB,
            "device_peak_gib": device_peak / GIB if device_peak else None}


def run_child(args, batch_size: int, checkpointing: bool) -> dict:
    found = subprocess.run(
        [sys.executable, __file__, "--child", f"--shape={args.shape}", f"--seq={args.seq}",
         f"--batch={batch_size}", f"--steps={args.steps}",
         f"--checkpointing={int(checkpointing)}"],
        capture_output=True, text=True, check=True)
    return json.loads(found.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", choices=sorted(bench_training.SHAPES), default="base")
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--batch", default="8", help="one batch size, or several: 1,2")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--only", choices=("on", "off"), help="only with / without")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--checkpointing", type=int, default=0)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.shape, args.seq, int(args.batch), args.steps,
                               bool(args.checkpointing))))
        return
    modes = {"on": [True], "off": [False], None: [False, True]}[args.only]
    batches = [int(b) for b in args.batch.split(",")]
    rows = [run_child(args, b, mode) for mode in modes for b in batches]
    print(f"\n{args.shape}, seq {args.seq}, fp32, CPU peak resident set:\n")
    print("| checkpointing | batch | s/step | peak GiB | before steps GiB | step's own GiB |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {'on' if row['checkpointing'] else 'off'} | {row['batch']} | "
              f"{row['seconds_per_step']:.1f} | {row['peak_gib']:.2f} | "
              f"{row['before_steps_gib']:.2f} | {row['peak_gib'] - row['before_steps_gib']:.2f} |")
    for mode in modes:
        fit = [(row["batch"], row["peak_gib"]) for row in rows if row["checkpointing"] == mode]
        if len(fit) >= 2:
            slope, fixed = np.polyfit(*zip(*fit, strict=True), 1)
            print(f"checkpointing {'on' if mode else 'off'}: peak = {fixed:.2f} GiB + "
                  f"{slope:.2f} GiB x batch; largest batch under 16 GiB: "
                  f"{int((16 - fixed) // slope)}")


if __name__ == "__main__":
    main()
