"""serve.py under load: throughput and p50/p95/p99 latency at 1, 8 and 64 concurrent
clients, beside the same export called in process one request at a time.

    .venv/bin/python bench/bench_serving.py [--requests 400] [--seq 128]

The model: MiniLM (L12, H384) real weights with a classifier head (random, two labels:
the head costs nothing beside the encoder), exported by export_model.py with its default
bucketing. The texts: MRPC dev sentences (mixed lengths, 5-40 words), one per request.
Clients are asyncio tasks in this process (aiohttp), so on a 2-core machine the load
generator competes with the server for the cores; the in-process baseline has no HTTP,
JSON or batching. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared"
MINILM = SHARED / "fixtures" / "minilm_ckpt"


def minilm_classifier(folder: Path) -> Path:
    """MiniLM with a two-label head, saved in Google's layout (the export's input)."""
    from bert_tf import checkpoint
    from bert_tf.config import BertConfig
    from bert_tf.models.heads import BertClassifier

    model = BertClassifier(BertConfig.from_json_file(str(MINILM / "bert_config.json")), 2)
    model({"input_ids": np.zeros((1, 8), np.int32)})
    checkpoint.load_checkpoint(model, str(MINILM / "bert_model.ckpt"))
    return Path(checkpoint.save_checkpoint(model, str(folder / "model.ckpt")))


def texts(count: int) -> list[str]:
    from bert_tf.tasks import glue

    examples = glue.read_examples(glue.get_task("mrpc"), str(SHARED / "data" / "glue" / "MRPC"),
                                  "dev")
    sentences = [e.text_a for e in examples] + [e.text_b for e in examples]
    return [sentences[i % len(sentences)] for i in range(count)]


def percentiles(latencies: list[float]) -> tuple[float, float, float]:
    return tuple(float(np.percentile(latencies, q)) * 1000 for q in (50, 95, 99))


def direct(export: Path, sentences: list[str]) -> tuple[float, list[float]]:
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    serve = tf.saved_model.load(str(export)).signatures["serving_default"]
    serve(text=tf.constant(sentences[:1]))
    latencies, started = [], time.perf_counter()
    for sentence in sentences:
        began = time.perf_counter()
        serve(text=tf.constant([sentence]))
        latencies.append(time.perf_counter() - began)
    return len(sentences) / (time.perf_counter() - started), latencies


async def load(url: str, sentences: list[str], clients: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    queue = list(reversed(sentences))

    async def client(session):
        while queue:
            sentence = queue.pop()
            began = time.perf_counter()
            async with session.post(url, json={"instances": [sentence]}) as answer:
                assert answer.status == 200, await answer.text()
                await answer.read()
            latencies.append(time.perf_counter() - began)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:
        started = time.perf_counter()
        await asyncio.gather(*[client(session) for _ in range(clients)])
        return len(sentences) / (time.perf_counter() - started), latencies


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--seq", type=int, default=128)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_serving_"))
    prefix = minilm_classifier(work)
    export = work / "export"
    subprocess.run([sys.executable, "export_model.py", f"--init_checkpoint={prefix}",
                    f"--bert_config_file={MINILM / 'bert_config.json'}",
                    f"--vocab_file={MINILM / 'vocab.txt'}", f"--export_dir={export}",
                    f"--max_seq_length={args.seq}"], cwd=REPO, check=True, capture_output=True)
    sentences = texts(args.requests)
    rows = [("in process, one request at a time", *direct(export, sentences))]
    port = free_port()
    server = subprocess.Popen([sys.executable, "serve.py", f"--export_dir={export}",
                               f"--port={port}", "--grpc_port=0", f"--max_seq_length={args.seq}"],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert server.stdout.readline().startswith(b"ready")
        url = f"http://127.0.0.1:{port}/v1/models/bert:predict"
        for clients in (1, 8, 64):
            asyncio.run(load(url, sentences[:32], clients))  # warm the connections
            rows.append((f"serve.py, {clients} concurrent clients",
                         *asyncio.run(load(url, sentences, clients))))
    finally:
        server.terminate()
        server.wait()
    print("| calls | requests/s | p50 ms | p95 ms | p99 ms |\n|---|---|---|---|---|")
    for name, rate, latencies in rows:
        p50, p95, p99 = percentiles(latencies)
        print(f"| {name} | {rate:.1f} | {p50:.1f} | {p95:.1f} | {p99:.1f} |")


if __name__ == "__main__":
    main()
