"""What `bench/gpu.sh` runs: BERT-Base training and fine-tuning throughput on one GPU.

Pretraining steps through the training driver (masked LM + NSP + AdamWeightDecay +
clipping, random weights) at sequence 128 (batch 32) and 512 (batch 8), in fp32, bf16 and
fp16 (with dynamic loss scaling), XLA off and on: sequences/s and MFU, the model FLOP/s
(`bench_training.model_flops`) over the device's measured matmul peak in that precision
(fp32 matmuls may run as TF32 where the GPU does that by default: the peak is measured the
same way). Then fine-tuning prediction, BERT-Base classifier, 2,048 inputs of MRPC-like
lengths (mean ~53 of 128), batch 32: padded to 128 vs length-bucketed (bucketing.py).

`--dry_run`: the same program on the CPU with a 1-layer model, sequence 16 and one timed
step per mode (CI runs it, so the script cannot rot without a GPU).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_training  # noqa: E402  (the step, the FLOP count and the peak live there)

PRECISIONS = {"fp32": ("", "float32"), "bf16": ("bf16", "bfloat16"),
              "fp16": ("fp16", "float16")}


def mrpc_like_arrays(count: int, max_seq_length: int, vocab_size: int) -> dict:
    """Classifier inputs whose real lengths follow MRPC's (mean 53, sd 15, of 128)."""
    rng = np.random.default_rng(0)
    scale = max_seq_length / 128
    lengths = np.clip(rng.normal(53 * scale, 15 * scale, count), 4, max_seq_length).astype(int)
    mask = (np.arange(max_seq_length)[None] < lengths[:, None]).astype(np.int32)
    return {"input_ids": rng.integers(1, vocab_size, mask.shape).astype(np.int32) * mask,
            "input_mask": mask, "segment_ids": np.zeros_like(mask)}


def prediction_rate(config, arrays: dict, batch_size: int, bucketed: bool,
                    jit: bool) -> float:
    """Inputs/s of a classifier's forward pass over `arrays`, padded or bucketed."""
    import tensorflow as tf

    from bert_tf.models.heads import BertClassifier
    from bert_tf.training import bucketing, loop
    from bert_tf.training.input_pipeline import in_order_batches

    strategy = tf.distribute.get_strategy()
    model = BertClassifier(config, 2)

    def dataset_fn(context, _):
        if bucketed:
            return bucketing.eval_batches(arrays, batch_size, context,
                                          arrays["input_mask"].shape[1])
        return in_order_batches(tf.data.Dataset.from_tensor_slices(arrays), batch_size, context)

    def predict_fn(logits, batch):
        return {"logits": logits}

    for _ in loop.predict(strategy, model, predict_fn, dataset_fn, jit):
        pass  # warm up: trace, and compile every bucket length
    start = time.perf_counter()
    for _ in loop.predict(strategy, model, predict_fn, dataset_fn, jit):
        pass
    return len(arrays["input_ids"]) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dry_run", action="store_true")
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()

    import tensorflow as tf

    import bert_tf

    gpus = tf.config.list_physical_devices("GPU")
    if args.dry_run:
        shape = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64)
        runs, steps, matmul_size, finetune = [(16, 2)], 1, 256, (32, 32, 8)
    else:
        if not gpus:
            sys.exit("no GPU visible to TensorFlow: run with --dry_run, or install the CUDA "
                     "build (pip install 'tensorflow[and-cuda]')")
        shape = bench_training.SHAPES["base"]
        runs, steps, matmul_size, finetune = [(128, 32), (512, 8)], args.steps, 8192, (
            2048, 128, 32)
    config = bert_tf.BertConfig(vocab_size=30522, type_vocab_size=2, **shape)
    device = tf.config.experimental.get_device_details(gpus[0]).get("device_name") if gpus \
        else "CPU (dry run)"
    peaks = {name: bench_training.matmul_peak(dtype, matmul_size)
             for name, (_, dtype) in PRECISIONS.items()}
    print(f"{device}: matmul peak " + ", ".join(
        f"{name} {peak / 1e12:.2f} TFLOP/s" for name, peak in peaks.items()), flush=True)
    print("\n| seq | batch | precision | XLA | seq/s | model TFLOP/s | MFU |")
    print("|---:|---:|---|---|---:|---:|---:|")
    for seq, batch_size in runs:
        batch = bench_training.pretraining_batch(batch_size, seq)
        flops = bench_training.model_flops(config, seq)
        for name, (flag, _) in PRECISIONS.items():
            for jit in (False, True):
                rate = bench_training.step_rate(config, batch, flag, jit, steps)
                print(f"| {seq} | {batch_size} | {name} | {'on' if jit else 'off'} | "
                      f"{rate:.1f} | {rate * flops / 1e12:.2f} | "
                      f"{rate * flops / peaks[name]:.0%} |", flush=True)
    count, max_seq_length, batch_size = finetune
    arrays = mrpc_like_arrays(count, max_seq_length, config.vocab_size)
    print(f"\nFine-tuning prediction, {count} inputs of mean length "
          f"{arrays['input_mask'].sum(1).mean():.0f} / {max_seq_length}, batch {batch_size}, "
          f"fp32:")
    for jit in (False, True):
        padded = prediction_rate(config, arrays, batch_size, False, jit)
        bucketed = prediction_rate(config, arrays, batch_size, True, jit)
        print(f"  XLA {'on ' if jit else 'off'}: padded {padded:.1f}/s, bucketed "
              f"{bucketed:.1f}/s (x{bucketed / padded:.2f})", flush=True)


if __name__ == "__main__":
    main()
