"""GoEmotions multi-label: `run_classifier.py --task_name=custom --multi_label` beside HF
transformers, on the same weights, split, steps and schedule.

    .venv/bin/python bench/bench_goemotions.py --side bert_tf
    .venv/bin/python -m bert_tf.interop.hf_conversion to_hf $MINILM /tmp/minilm_hf
    HFENV/bin/python bench/bench_goemotions.py --side hf --hf_dir /tmp/minilm_hf

The shipped GoEmotions files (Reddit comments, 28 emotions, zero or more per comment; no
training split is shipped): train on `dev.tsv` (5,426 comments), evaluate on `test.tsv`
(5,427). MiniLM real weights, max_seq_length 64 (comments are short), batch 32, 3 epochs
(508 steps; `--epochs`), AdamW 5e-5 (`--learning_rate`) with 10% linear warm-up and linear
decay, weight decay 0.01 (not on LayerNorm or biases), clipping at 1.0, a sigmoid per
emotion, binary cross-entropy, a label predicted at probability >= 0.3 (the GoEmotions
paper's threshold). Both sides read the files with `bert_tf.tasks.custom` (TF-free, so the
HF environment needs no TensorFlow) and score with its `compute_metrics`. Prints one JSON
line: macro/micro F1, subset accuracy, training seconds, steps.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bert_tf.tasks import custom  # noqa: E402

SHARED = REPO.parent / "shared"
MINILM = SHARED / "fixtures" / "minilm_ckpt"
GOEMOTIONS = SHARED / "data" / "goemotions"
LABELS = tuple(str(i) for i in range(28))
BATCH, SEQUENCE, THRESHOLD = 32, 64, 0.3
TASK = custom.CustomTask(labels=LABELS, text_a_column="0", label_column="1", multi_label=True,
                         label_separator=",", threshold=THRESHOLD, header=False)


def data_dir() -> str:
    """train = the shipped dev split, dev = the shipped test split."""
    folder = Path(tempfile.mkdtemp(prefix="goemotions_"))
    shutil.copy(GOEMOTIONS / "dev.tsv", folder / "train.tsv")
    shutil.copy(GOEMOTIONS / "test.tsv", folder / "dev.tsv")
    shutil.copy(GOEMOTIONS / "test.tsv", folder / "test.tsv")
    return str(folder)


def run_bert_tf(folder: str, epochs: float, learning_rate: float) -> dict:
    output = tempfile.mkdtemp(prefix="goemotions_out_")
    started = time.time()
    subprocess.run([
        sys.executable, "run_classifier.py", "--task_name=custom", f"--data_dir={folder}",
        "--multi_label", "--no_header", "--text_a_column=0", "--label_column=1",
        "--label_separator=,", f"--labels={','.join(LABELS)}", f"--threshold={THRESHOLD}",
        f"--vocab_file={MINILM / 'vocab.txt'}", f"--bert_config_file={MINILM / 'bert_config.json'}",
        f"--init_checkpoint={MINILM / 'bert_model.ckpt'}", f"--output_dir={output}",
        f"--max_seq_length={SEQUENCE}", f"--train_batch_size={BATCH}", "--eval_batch_size=64",
        f"--learning_rate={learning_rate}", f"--num_train_epochs={epochs}", "--seed=1",
        "--save_checkpoints_steps=100000", "--do_train", "--do_eval",
    ], cwd=REPO, check=True, capture_output=True)
    seconds = time.time() - started
    results = dict(line.split(" = ") for line in
                   (Path(output) / "eval_results.txt").read_text().splitlines())
    return {"side": "bert_tf", "macro_f1": float(results["macro_f1"]),
            "micro_f1": float(results["micro_f1"]),
            "subset_accuracy": float(results["subset_accuracy"]),
            "seconds_train_and_eval": seconds, "steps": int(results["global_step"])}


def run_hf(folder: str, hf_dir: str, epochs: float, learning_rate: float) -> dict:
    import torch
    from transformers import BertForSequenceClassification, BertTokenizerFast

    torch.manual_seed(1)
    with open(MINILM / "vocab.txt", encoding="utf-8") as lines:
        vocab = {line.rstrip("\n"): index for index, line in enumerate(lines)}
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True)

    def encoded(split):
        examples = custom.read_examples(TASK, folder, split)
        tokens = tokenizer([e.text_a for e in examples], truncation=True, max_length=SEQUENCE,
                           padding="max_length", return_tensors="pt")
        labels = torch.tensor([TASK.label_id(e.label) for e in examples], dtype=torch.float32)
        return tokens, labels

    (train, train_labels), (dev, dev_labels) = encoded("train"), encoded("dev")
    model = BertForSequenceClassification.from_pretrained(
        hf_dir, num_labels=len(LABELS), problem_type="multi_label_classification")
    decay = [p for n, p in model.named_parameters() if "LayerNorm" not in n and "bias" not in n]
    rest = [p for n, p in model.named_parameters() if "LayerNorm" in n or "bias" in n]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                                   {"params": rest, "weight_decay": 0.0}],
                                  lr=learning_rate, eps=1e-6)
    steps = int(len(train_labels) / BATCH * epochs)
    warmup = int(steps * 0.1)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: s / warmup if s < warmup else max(0.0, (steps - s) / (steps - warmup)))
    rng = np.random.default_rng(1)
    started, step = time.time(), 0
    model.train()
    while step < steps:
        order = rng.permutation(len(train_labels))
        for start in range(0, len(order) - BATCH + 1, BATCH):
            if step == steps:
                break
            rows = torch.as_tensor(order[start:start + BATCH])
            loss = model(**{k: v[rows] for k, v in train.items()}, labels=train_labels[rows]).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(**{k: v[s:s + 64] for k, v in dev.items()}).logits
                            for s in range(0, len(dev_labels), 64)])
    seconds = time.time() - started
    outputs = {"probabilities": torch.sigmoid(logits).numpy(), "label_ids": dev_labels.numpy(),
               "is_real_example": np.ones(len(dev_labels))}
    metrics = custom.compute_metrics(TASK, outputs)
    return {"side": "hf", "macro_f1": metrics["macro_f1"], "micro_f1": metrics["micro_f1"],
            "subset_accuracy": metrics["subset_accuracy"], "seconds_train_and_eval": seconds,
            "steps": step}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", choices=("bert_tf", "hf"), required=True)
    parser.add_argument("--hf_dir", help="MiniLM converted by bert_tf.interop.hf_conversion to_hf")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--learning_rate", type=float, default=5e-5)
    args = parser.parse_args()
    folder = data_dir()
    if args.side == "bert_tf":
        result = run_bert_tf(folder, args.epochs, args.learning_rate)
    else:
        result = run_hf(folder, args.hf_dir, args.epochs, args.learning_rate)
    result.update(epochs=args.epochs, learning_rate=args.learning_rate)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
