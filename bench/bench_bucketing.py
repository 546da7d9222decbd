"""Fine-tuning MRPC padded vs length-bucketed, side by side with keras-hub and HF.

    .venv/bin/python bench/bench_bucketing.py [--epochs 3] [--peer_epochs 3] \
        [--hf_python /tmp/hfenv/bin/python --hf_dir /tmp/minilm_hf]
    .venv/bin/python bench/bench_bucketing.py --seeds 1,2,3   # accuracy over seeds only

MiniLM real weights (`../shared/fixtures/minilm_ckpt`), MRPC train (3,668 pairs), sequence
128, batch 32, learning rate 2e-5, warm-up 10%, seed 1, float32. Prints for each run its
training wall time, dev accuracy, and eval + predict throughput (dev 408 + test 1,725
pairs, batch 32), from one run of this script:

- bert_tf `run_classifier` with `--bucketing=none` (the original's padding to 128) and
  `--bucketing=all` (training and prediction batches padded to their length bucket); then
  prediction alone from the trained checkpoint with `none` and `eval`;
- keras-hub's `BertTextClassifier` (`fit`, the same weights converted with
  `bert_tf.interop.keras_hub_conversion`; its preprocessor pads to 128);
- with `--hf_python`: HF transformers' `BertForSequenceClassification` with dynamic
  padding (`bench/bench_mrpc_hf.py`, run in that interpreter's environment).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
MINILM = SHARED / "fixtures" / "minilm_ckpt"
MRPC = SHARED / "data" / "glue" / "MRPC"


PREDICT_SECONDS: list[float] = []


def timed_predictions() -> None:
    """Times every `stages.predict` call (eval and test prediction, reading included)."""
    from bert_tf.jobs import stages

    predict = stages.predict

    def timed(*args, **kwargs):
        started = time.time()
        result = predict(*args, **kwargs)
        PREDICT_SECONDS.append(time.time() - started)
        return result

    stages.predict = timed


def ours(output_dir: str, bucketing: str, epochs: float, train: bool, seed: int = 1) -> dict:
    """One run_classifier job; returns wall time, the dev accuracy and the seconds spent
    predicting."""
    import tensorflow as tf

    from bert_tf.jobs.run_classifier import ClassifierOptions, run

    options = ClassifierOptions(
        data_dir=str(MRPC), task_name="MRPC", vocab_file=str(MINILM / "vocab.txt"),
        bert_config_file=str(MINILM / "bert_config.json"), output_dir=output_dir,
        init_checkpoint=str(MINILM / "bert_model.ckpt"), do_train=train, do_eval=True,
        do_predict=not train, max_seq_length=128, train_batch_size=32, eval_batch_size=32,
        predict_batch_size=32, learning_rate=2e-5, num_train_epochs=epochs,
        iterations_per_loop=50, seed=seed, bucketing=bucketing,
    )
    started, predicted = time.time(), len(PREDICT_SECONDS)
    results = run(options, tf.distribute.get_strategy())["eval"]
    return {"seconds": time.time() - started, "accuracy": results["eval_accuracy"],
            "predict_seconds": sum(PREDICT_SECONDS[predicted:])}


def keras_hub_run(epochs: float, work: str) -> dict:
    """keras-hub's BertTextClassifier on the converted MiniLM: fit, dev accuracy, and
    eval + predict throughput."""
    import keras
    import keras_hub
    import numpy as np

    from bert_tf.interop import keras_hub_conversion
    from bert_tf.tasks import glue

    preset = keras_hub_conversion.google_to_keras_hub(str(MINILM), os.path.join(work, "hub"))
    task = glue.get_task("mrpc")
    splits = {split: glue.read_examples(task, str(MRPC), split)
              for split in ("train", "dev", "test")}

    def inputs(split):
        examples = splits[split]
        return ((np.array([e.text_a for e in examples]), np.array([e.text_b for e in examples])),
                np.array([task.labels.index(e.label) if e.label in task.labels else 0
                          for e in examples]))

    keras.utils.set_random_seed(1)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
        keras_hub.models.BertTokenizer.from_preset(preset), sequence_length=128)
    model = keras_hub.models.BertTextClassifier(
        keras_hub.models.BertBackbone.from_preset(preset), num_classes=2,
        preprocessor=preprocessor)
    steps = int(len(splits["train"]) / 32 * epochs)
    schedule = keras.optimizers.schedules.PolynomialDecay(2e-5, steps, 0.0)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.01,
                                                   global_clipnorm=1.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    (text_a, text_b), y = inputs("train")
    part = len(y) if epochs >= 1 else int(len(y) * epochs)  # a fraction of one epoch
    started = time.time()
    model.fit((text_a[:part], text_b[:part]), y[:part], batch_size=32,
              epochs=max(1, round(epochs)), verbose=0)
    seconds = time.time() - started
    x, y = inputs("dev")
    started = time.time()
    logits = model.predict(x, batch_size=32, verbose=0)
    model.predict(inputs("test")[0], batch_size=32, verbose=0)
    predict_seconds = time.time() - started
    return {"seconds": seconds, "accuracy": float((logits.argmax(-1) == y).mean()),
            "predict_per_second": (len(splits["dev"]) + len(splits["test"])) / predict_seconds}


def seeds_table(seeds: list[int], modes: list[str], epochs: float) -> None:
    """Dev accuracy of training with each `--bucketing` mode for each seed, and their
    means."""
    import numpy as np

    accuracy: dict[str, list[float]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory() as work:
        for seed in seeds:
            for mode in accuracy:
                result = ours(os.path.join(work, f"{mode}{seed}"), mode, epochs, True, seed)
                accuracy[mode].append(result["accuracy"])
                print(f"seed {seed} --bucketing={mode}: {result}", flush=True)
    print("\n| seed | " + " | ".join(f"--bucketing={mode}" for mode in accuracy) + " |")
    print("|---:|" + "---:|" * len(modes))
    for row, seed in enumerate(seeds):
        print(f"| {seed} | " + " | ".join(f"{values[row]:.4f}" for values in accuracy.values())
              + " |")
    print("| mean +- std | " + " | ".join(
        f"{np.mean(values):.4f} +- {np.std(values):.4f}" for values in accuracy.values()) + " |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--peer_epochs", type=float, default=3.0)
    parser.add_argument("--hf_python", help="an interpreter with torch and transformers")
    parser.add_argument("--hf_dir", help="MiniLM converted by bert_tf.interop.hf_conversion to_hf")
    parser.add_argument("--skip_keras_hub", action="store_true")
    parser.add_argument("--seeds", help="comma-separated seeds: only train padded and "
                        "bucketed with each and print their dev accuracies")
    parser.add_argument("--modes", default="none,all", help="with --seeds: the "
                        "--bucketing modes to train with")
    args = parser.parse_args()
    if args.seeds:
        seeds_table([int(seed) for seed in args.seeds.split(",")], args.modes.split(","),
                    args.epochs)
        return
    rows = {}
    timed_predictions()
    with tempfile.TemporaryDirectory() as work:
        for mode in ("none", "all"):
            out = os.path.join(work, mode)
            rows[f"bert_tf --bucketing={mode}"] = train = ours(out, mode, args.epochs, True)
            print(f"bert_tf train --bucketing={mode}: {train}", flush=True)
        examples = 408 + 1725
        for mode, row in (("none", "none"), ("eval", "all")):
            result = ours(os.path.join(work, "all"), mode, args.epochs, False)
            rate = examples / result["predict_seconds"]
            rows[f"bert_tf --bucketing={row}"]["predict_per_second"] = rate
            print(f"bert_tf predict --bucketing={mode}: {rate:.1f} examples/s (dev + test, "
                  f"batch 32; whole job {result['seconds']:.1f} s)", flush=True)
        if not args.skip_keras_hub:
            rows["keras-hub BertTextClassifier"] = keras_hub_run(args.peer_epochs, work)
            print(f"keras-hub: {rows['keras-hub BertTextClassifier']}", flush=True)
    if args.hf_python:
        found = subprocess.run(
            [args.hf_python, str(Path(__file__).with_name("bench_mrpc_hf.py")),
             f"--hf_dir={args.hf_dir}", f"--vocab_file={MINILM / 'vocab.txt'}",
             f"--data_dir={MRPC}", f"--epochs={args.peer_epochs}"],
            capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
        rows["HF transformers (dynamic padding)"] = json.loads(found.stdout.splitlines()[-1])
    padded = rows["bert_tf --bucketing=none"]
    print("\n| run | epochs | train wall s | x padded | dev accuracy | eval+predict ex/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        rate = row["predict_per_second"]
        epochs = args.epochs if name.startswith("bert_tf") else args.peer_epochs
        print(f"| {name} | {epochs:g} | {row['seconds']:.0f} | "
              f"{row['seconds'] / padded['seconds']:.2f} | {row['accuracy']:.4f} | "
              f"{rate:.1f} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
