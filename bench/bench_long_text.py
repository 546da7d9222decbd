"""Long texts: `--long_text=windows` against truncation on real long documents.

    .venv/bin/python bench/bench_long_text.py [--train_documents 300] [--epochs 3]

The task: CoNLL-2003 documents (`-DOCSTART-` to `-DOCSTART-`, ~200-400 words, so several
times max_seq_length) labelled with the set of entity types they mention (LOC, MISC, ORG,
PER): multi-label, and the evidence for a type can sit anywhere in the document. Train on
the first N documents of train.txt, evaluate on dev.txt's documents. MiniLM real weights,
`run_classifier.py --task_name=custom --multi_label`, the same flags for both modes but
`--long_text`; prints one JSON line per mode (dev micro/macro F1, subset accuracy,
training records, wall seconds) and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MINILM = SHARED / "fixtures" / "minilm_ckpt"
CONLL = SHARED / "data" / "conll2003"
TYPES = ("LOC", "MISC", "ORG", "PER")


def conll_documents(path: Path, count: int | None = None) -> list[tuple[str, list[str]]]:
    """The documents of a CoNLL-2003 file (the first `count`): their words joined by
    spaces, and the sorted entity types their tags mention."""
    documents, words, types = [], [], set()
    for line in [*path.read_text(encoding="utf-8").splitlines(), "-DOCSTART-"]:
        if line.startswith("-DOCSTART-"):
            if words:
                documents.append((" ".join(words), sorted(types)))
            words, types = [], set()
            if count is not None and len(documents) == count:
                break
        elif line.strip():
            fields = line.split()
            words.append(fields[0])
            if fields[-1] != "O":
                types.add(fields[-1].split("-", 1)[1])
    return documents


def write_jsonl(path: Path, documents: list[tuple[str, list[str]]]) -> None:
    path.write_text("".join(json.dumps({"text": text, "label": types}) + "\n"
                            for text, types in documents), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train_documents", type=int, default=300)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--doc_stride", type=int, default=96)
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="long_text_"))
    data = work / "data"
    data.mkdir()
    write_jsonl(data / "train.jsonl", conll_documents(CONLL / "train.txt", args.train_documents))
    dev = conll_documents(CONLL / "dev.txt")
    write_jsonl(data / "dev.jsonl", dev)
    words = [len(text.split()) for text, _ in dev]
    print(f"dev: {len(dev)} documents, {sum(words) / len(words):.0f} words on average")
    rows = []
    for mode in ("truncate", "windows"):
        started = time.time()
        result = subprocess.run([
            sys.executable, "run_classifier.py", "--task_name=custom", f"--data_dir={data}",
            f"--vocab_file={MINILM / 'vocab.txt'}",
            f"--bert_config_file={MINILM / 'bert_config.json'}",
            f"--init_checkpoint={MINILM / 'bert_model.ckpt'}", f"--output_dir={work / mode}",
            "--do_train", "--do_eval", "--multi_label", f"--labels={','.join(TYPES)}",
            f"--long_text={mode}", f"--doc_stride={args.doc_stride}",
            f"--max_seq_length={args.max_seq_length}", "--train_batch_size=32",
            f"--learning_rate={args.learning_rate}", f"--num_train_epochs={args.epochs}",
            "--eval_batch_size=32", "--seed=1", "--save_checkpoints_steps=100000",
        ], cwd=REPO, capture_output=True, text=True)
        if result.returncode:
            sys.exit(result.stderr[-3000:])
        results = dict(line.split(" = ") for line in
                       (work / mode / "eval_results.txt").read_text().splitlines())
        row = {"mode": mode, "seconds": round(time.time() - started, 1),
               **{key: float(results[key]) for key in ("micro_f1", "macro_f1",
                                                       "subset_accuracy", "global_step")}}
        print(json.dumps(row), flush=True)
        rows.append(row)
    print("\n| mode | dev micro-F1 | dev macro-F1 | subset accuracy | steps | wall s |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['mode']} | {row['micro_f1']:.4f} | {row['macro_f1']:.4f} | "
              f"{row['subset_accuracy']:.4f} | {row['global_step']:.0f} | {row['seconds']} |")


if __name__ == "__main__":
    main()
