"""create_pretraining_data.py on Apache Beam's DirectRunner vs fast mode, on one machine.

    .venv/bin/python bench/bench_beam.py [--copies 4] [--workers 2] [--shard_size_mb 1]

Builds big.txt concatenated `--copies` times, then runs, as fresh processes, `--mode=fast
--num_workers=W` and `--runner=beam` with the DirectRunner in multi-processing mode with W
workers, the same flags and seed; prints wall time, peak RSS (the largest process of the
run) and whether every shard's sha256 is the same.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from pathlib import Path

from bench_pretraining_data import SHARED, timed_run


def digests(folder: Path) -> list[str]:
    return [hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shard_size_mb", type=float, default=1.0)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp, "corpus.txt")
        corpus.write_bytes((SHARED / "data" / "text" / "big.txt").read_bytes() * options.copies)
        # After timed_run's flags: this --input_file replaces big.txt (absl: the last wins).
        common = [f"--input_file={corpus}", f"--shard_size_mb={options.shard_size_mb}"]
        runs = {
            f"--mode=fast --num_workers={options.workers}": [
                "--mode=fast", f"--num_workers={options.workers}", f"--output_file={tmp}/fast/"],
            f"--runner=beam, DirectRunner multi_processing, {options.workers} workers": [
                "--runner=beam", f"--output_file={tmp}/beam/",
                f"--beam_pipeline_options=--runner=DirectRunner --direct_running_mode="
                f"multi_processing --direct_num_workers={options.workers}"],
        }
        print(f"corpus: big.txt x {options.copies} ({corpus.stat().st_size / 1e6:.1f} MB), "
              f"shard size {options.shard_size_mb} MB")
        print("| run | wall | peak RSS |")
        print("|---|---:|---:|")
        for name, args in runs.items():
            seconds, megabytes = timed_run([*args, *common])
            print(f"| {name} | {seconds:.1f} s | {megabytes} MB |", flush=True)
        fast, beam = digests(Path(tmp, "fast")), digests(Path(tmp, "beam"))
        same = "identical" if fast == beam else "DIFFERENT"
        print(f"{len(fast)} shards; sha256 of every shard: {same}")


if __name__ == "__main__":
    main()
