"""Tokenizer throughput on ../shared/data/text/big.txt: exact vs fast path, and HF tokenizers.

    .venv/bin/python bench/bench_tokenizer.py [--corpus PATH] [--vocab PATH]

Tokenizes every non-empty line (the fixture README's protocol) and prints MB/s and
word pieces/s for each tokenizer, plus ratios to the exact path, from one run. The HF
`tokenizers` peer runs when the `bench` extra is installed (`pip install -e .[bench]`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"


def timed(function):
    start = time.perf_counter()
    count = function()
    return time.perf_counter() - start, count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", default=str(SHARED / "data/text/big.txt"))
    parser.add_argument("--vocab", default=str(SHARED / "fixtures/minilm_ckpt/vocab.txt"))
    parser.add_argument("--batch_size", type=int, default=1024)
    args = parser.parse_args()

    from bert_tf.data.tokenization import FullTokenizer
    from bert_tf.text.fast_tokenization import FastTokenizer

    lines = [line for line in Path(args.corpus).read_text("utf-8").split("\n") if line.strip()]
    megabytes = sum(len(line.encode()) for line in lines) / 1e6
    batches = [lines[i : i + args.batch_size] for i in range(0, len(lines), args.batch_size)]
    exact, fast = FullTokenizer(args.vocab, True), FastTokenizer(args.vocab, True)
    fast.tokenize(batches[0])  # build the lookup table and trace once

    results = {
        "bert_tf FullTokenizer (exact, Python)": timed(
            lambda: sum(len(exact.convert_tokens_to_ids(exact.tokenize(t))) for t in lines)
        ),
        f"bert_tf FastTokenizer (tensorflow-text, batch {args.batch_size})": timed(
            lambda: sum(int(fast.tokenize(b).flat_values.shape[0]) for b in batches)
        ),
    }
    try:
        from tokenizers import BertWordPieceTokenizer

        peer = BertWordPieceTokenizer(args.vocab, lowercase=True)
        results[f"HF tokenizers BertWordPiece (Rust, batch {args.batch_size})"] = timed(
            lambda: sum(
                len(e.ids) - 2 for b in batches for e in peer.encode_batch(b)
            )  # minus [CLS]/[SEP]
        )
    except ImportError:
        print("(HF tokenizers not installed: pip install -e .[bench] to compare)")

    base = next(iter(results.values()))[0]
    print(f"corpus: {args.corpus} ({megabytes:.2f} MB, {len(lines)} lines)")
    print(f"{'tokenizer':62s} {'seconds':>8s} {'MB/s':>6s} {'pieces/s':>10s} {'x exact':>8s}")
    for name, (seconds, count) in results.items():
        print(
            f"{name:62s} {seconds:8.2f} {megabytes / seconds:6.2f} {count / seconds:10.0f} "
            f"{base / seconds:8.2f}   ({count} pieces)"
        )


if __name__ == "__main__":
    main()
