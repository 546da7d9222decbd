"""The HF transformers peer of bench_bucketing.py: MRPC fine-tuning with dynamic padding.

`BertForSequenceClassification` on MiniLM converted with `python -m bert_tf.interop.hf_conversion
to_hf`, batch 32, sequence at most 128, each batch padded to its longest pair (HF's usual
`DataCollatorWithPadding`), AdamW 2e-5 with 10% linear warm-up and linear decay, weight
decay 0.01 (not on LayerNorm or biases), clipping at 1.0, seed 1. Runs in an environment
with torch and transformers; prints one JSON line: training seconds, dev accuracy and
eval + predict examples/s (dev + test, batch 32).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from transformers import (
    BertForSequenceClassification,
    BertTokenizerFast,
    DataCollatorWithPadding,
    get_linear_schedule_with_warmup,
)

from bert_tf.tasks import glue


def encoded(tokenizer, examples) -> list[dict]:
    pairs = tokenizer([e.text_a for e in examples], [e.text_b for e in examples],
                      truncation="longest_first", max_length=128)
    return [{"input_ids": ids, "token_type_ids": types, "attention_mask": mask,
             "labels": int(e.label) if e.label in ("0", "1") else 0}
            for ids, types, mask, e in zip(pairs["input_ids"], pairs["token_type_ids"],
                                           pairs["attention_mask"], examples, strict=True)]


def batches(rows: list[dict], collate, size: int, order=None):
    order = np.arange(len(rows)) if order is None else order
    for start in range(0, len(rows), size):
        yield collate([rows[i] for i in order[start:start + size]])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hf_dir", required=True)
    parser.add_argument("--vocab_file", required=True)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--epochs", type=float, default=3.0)
    args = parser.parse_args()
    torch.manual_seed(1)
    with open(args.vocab_file, encoding="utf-8") as lines:  # (transformers 5 ignores vocab_file=)
        vocab = {line.rstrip("\n"): index for index, line in enumerate(lines)}
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True)
    assert tokenizer("hello")["input_ids"] == [vocab["[CLS]"], vocab["hello"], vocab["[SEP]"]]
    task = glue.get_task("mrpc")
    splits = {split: encoded(tokenizer, glue.read_examples(task, args.data_dir, split))
              for split in ("train", "dev", "test")}
    collate = DataCollatorWithPadding(tokenizer)
    model = BertForSequenceClassification.from_pretrained(args.hf_dir, num_labels=2)
    decay = [p for n, p in model.named_parameters() if "LayerNorm" not in n and "bias" not in n]
    rest = [p for n, p in model.named_parameters() if "LayerNorm" in n or "bias" in n]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                                   {"params": rest, "weight_decay": 0.0}], lr=2e-5, eps=1e-6)
    steps = int(len(splits["train"]) / 32 * args.epochs)
    schedule = get_linear_schedule_with_warmup(optimizer, int(steps * 0.1), steps)
    rng = np.random.default_rng(1)
    started, step = time.time(), 0
    model.train()
    while step < steps:
        for batch in batches(splits["train"], collate, 32, rng.permutation(len(splits["train"]))):
            if step == steps or len(batch["labels"]) < 32:
                break
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
    seconds = time.time() - started
    model.eval()
    started = time.time()
    with torch.no_grad():
        predicted = {split: torch.cat([model(**{k: v for k, v in b.items() if k != "labels"})
                                       .logits.argmax(-1) for b in
                                       batches(splits[split], collate, 32)]).numpy()
                     for split in ("dev", "test")}
    predict_seconds = time.time() - started
    labels = np.array([row["labels"] for row in splits["dev"]])
    print(json.dumps({"seconds": seconds, "accuracy": float((predicted["dev"] == labels).mean()),
                      "predict_per_second": (len(splits["dev"]) + len(splits["test"]))
                      / predict_seconds, "steps": step}))


if __name__ == "__main__":
    main()
