"""The peer for run_ner.py: the same NER fine-tuning in HF transformers (PyTorch, CPU).

Same windows and labels (bert_tf.tasks.ner's features: first piece of each word labelled,
long sentences in windows), same weights (a Google checkpoint converted with
`python -m bert_tf.interop.hf_conversion to_hf`), same batch size, steps, learning rate, linear
warm-up and decay, weight decay 0.01 (not on LayerNorm or biases), gradient clipping at
1.0, dropout 0.1; scored by the same conlleval code. Only the training framework differs
(and its AdamW, which corrects the moments' bias; the original's AdamWeightDecay does not).

Runs in an environment with torch and transformers (not the project's `.venv`):

    python -m venv /tmp/hfenv && /tmp/hfenv/bin/pip install torch==2.13.0 transformers \
        google-crc32c absl-py   # what bert_tf.tasks.ner needs besides
    .venv/bin/python -m bert_tf.interop.hf_conversion to_hf $MINILM /tmp/minilm_hf
    PYTHONPATH=. /tmp/hfenv/bin/python bench/bench_ner_hf.py --hf_dir=/tmp/minilm_hf \
        --vocab_file=$MINILM/vocab.txt --data_dir=../shared/data/conll2003 \
        --max_seq_length=64 --doc_stride=32 --num_train_epochs=2 --learning_rate=1e-4

Prints dev and test entity F1 (conlleval), training wall time and windows/s.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from transformers import BertConfig, BertForTokenClassification

from bert_tf.data.tokenization import FullTokenizer
from bert_tf.tasks import ner, ner_eval


def windows(path: str, tokenizer: FullTokenizer, labels: list[str], args) -> tuple:
    """(sentences, features, tensors) of one split."""
    sentences = ner.read_sentences(path)
    features = list(ner.convert_sentences(sentences, tokenizer, labels, args.max_seq_length,
                                          args.doc_stride))
    tensors = {name: torch.tensor([getattr(f, name) for f in features])
               for name in ("input_ids", "input_mask", "label_ids", "label_weights")}
    return sentences, features, tensors


def make_model(args, num_labels: int) -> BertForTokenClassification:
    config = BertConfig.from_pretrained(args.hf_dir, num_labels=num_labels,
                                        classifier_dropout=0.1)
    torch.manual_seed(args.seed)
    model = BertForTokenClassification.from_pretrained(args.hf_dir, config=config)
    model.classifier.weight.data.normal_(0.0, 0.02).clamp_(-0.04, 0.04)  # truncated normal
    model.classifier.bias.data.zero_()
    return model


def loss_of(model, batch: dict) -> torch.Tensor:
    """Mean cross-entropy over the labelled pieces, as TokenClassificationObjective."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["input_mask"]).logits
    losses = torch.nn.functional.cross_entropy(
        logits.flatten(0, 1), batch["label_ids"].flatten(), reduction="none")
    weights = batch["label_weights"].flatten().float()
    return (losses * weights).sum() / weights.sum().clamp(min=1.0)


def train(model, tensors: dict, args) -> tuple[int, float]:
    """Fine-tunes in place; returns (steps, seconds)."""
    count = len(tensors["input_ids"])
    steps = int(count / args.train_batch_size * args.num_train_epochs)
    warmup = int(steps * args.warmup_proportion)
    no_decay = ("bias", "LayerNorm.weight", "LayerNorm.bias")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
         "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)],
         "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=args.learning_rate, eps=1e-6)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: (step / warmup if step < warmup
                                 else max(0.0, (steps - step) / max(1, steps - warmup))))
    generator = torch.Generator().manual_seed(args.seed)
    order = torch.randperm(count, generator=generator)
    model.train()
    start = time.perf_counter()
    for step in range(steps):
        if (step + 1) * args.train_batch_size > len(order):
            order = torch.cat([order, torch.randperm(count, generator=generator)])
        index = order[step * args.train_batch_size:(step + 1) * args.train_batch_size]
        loss = loss_of(model, {name: value[index] for name, value in tensors.items()})
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if step % 100 == 0:
            print(f"step {step}/{steps} loss {loss.item():.4f}", flush=True)
    return steps, time.perf_counter() - start


@torch.no_grad()
def f1_of(model, split: tuple, labels: list[str], batch_size: int) -> float:
    sentences, features, tensors = split
    model.eval()
    predicted = []
    for start in range(0, len(features), batch_size):
        logits = model(input_ids=tensors["input_ids"][start:start + batch_size],
                       attention_mask=tensors["input_mask"][start:start + batch_size]).logits
        predicted.append(logits.argmax(-1).numpy())
    tags = ner.word_predictions(sentences, features, np.concatenate(predicted), labels)
    counts = ner_eval.count(ner_eval.read_rows(ner.prediction_lines(sentences, tags)))
    return counts.scores(None)[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hf_dir", required=True)
    parser.add_argument("--vocab_file", required=True)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--do_lower_case", type=int, default=1)
    parser.add_argument("--max_seq_length", type=int, default=64)
    parser.add_argument("--doc_stride", type=int, default=32)
    parser.add_argument("--train_batch_size", type=int, default=32)
    parser.add_argument("--num_train_epochs", type=float, default=2.0)
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--warmup_proportion", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    tokenizer = FullTokenizer(args.vocab_file, bool(args.do_lower_case))
    train_sentences = ner.read_sentences(os.path.join(args.data_dir, "train.txt"))
    labels = ner.label_list(train_sentences)
    _, _, train_tensors = windows(os.path.join(args.data_dir, "train.txt"), tokenizer,
                                  labels, args)
    model = make_model(args, len(labels))
    steps, seconds = train(model, train_tensors, args)
    examples = steps * args.train_batch_size
    print(f"HF transformers {__import__('transformers').__version__}, torch "
          f"{torch.__version__}: {steps} steps, {seconds:.0f} s training, "
          f"{examples / seconds:.1f} windows/s")
    for split in ("dev", "test"):
        start = time.perf_counter()
        data = windows(os.path.join(args.data_dir, f"{split}.txt"), tokenizer, labels, args)
        f1 = f1_of(model, data, labels, 32)
        print(f"{split}: F1 {f1:.2f} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
