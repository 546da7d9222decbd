"""Wall time of create_pretraining_data.py, fidelity and fast mode, on the real corpus.

    .venv/bin/python bench/bench_pretraining_data.py [--repeats 3]

Runs the fixture README's flags (big.txt, minilm vocab, dupe_factor 5, ...) as fresh
processes, `--repeats` times each, and prints the median wall time, peak RSS (the largest
process) and the speed-up over the original's 22.9 s on this machine (fixture README; the
original's code is not shipped, so its time is the README's, not measured here). Checks that
fidelity mode wrote the original's bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
ORIGINAL_SECONDS = 22.9  # ../shared/fixtures/README.md, "Speed anchors"
ORIGINAL_SHA256 = "26ff7fefb064583c2d88ff5ed043d576ba2f4eaaf7713c741d88073254ed1ad9"
FLAGS = [
    f"--input_file={SHARED / 'data' / 'text' / 'big.txt'}",
    f"--vocab_file={SHARED / 'fixtures' / 'minilm_ckpt' / 'vocab.txt'}",
    "--do_lower_case=True", "--max_seq_length=128", "--max_predictions_per_seq=20",
    "--masked_lm_prob=0.15", "--random_seed=12345", "--dupe_factor=5", "--short_seq_prob=0.1",
]


def timed_run(args: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS in MB of the process and its waited-for children)."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "create_pretraining_data.py", *FLAGS, *args],
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"create_pretraining_data.py {args} failed:\n{process.stderr.read()}")
    return seconds, usage.ru_maxrss // 1024


# big.txt (2.78 MB) in 8 shards, the same for every worker count.
SHARD_SIZE_MB = 0.35


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        runs = {"fidelity": ["--mode=fidelity", f"--output_file={tmp}/fidelity.tfrecord"]}
        for workers in sorted({1, 2, cores}):
            runs[f"fast, {workers} worker(s)"] = [
                "--mode=fast", f"--num_workers={workers}", f"--shard_size_mb={SHARD_SIZE_MB}",
                f"--output_file={tmp}/fast{workers}/"]
        print(f"{cores} cores; original (fixture README): {ORIGINAL_SECONDS} s")
        print("| mode | median wall | runs | peak RSS | vs original |")
        print("|---|---:|---|---:|---:|")
        for name, args in runs.items():
            results = [timed_run(args) for _ in range(options.repeats)]
            wall = statistics.median(seconds for seconds, _ in results)
            every = ", ".join(f"{seconds:.2f}" for seconds, _ in results)
            rss = max(megabytes for _, megabytes in results)
            print(f"| {name} | {wall:.2f} s | {every} | {rss} MB | "
                  f"{ORIGINAL_SECONDS / wall:.1f}× |", flush=True)
        digest = hashlib.sha256(Path(tmp, "fidelity.tfrecord").read_bytes()).hexdigest()
        verdict = "the original's bytes" if digest == ORIGINAL_SHA256 else "NOT the original's"
        print(f"fidelity output sha256 {digest[:8]}…: {verdict}")


if __name__ == "__main__":
    main()
