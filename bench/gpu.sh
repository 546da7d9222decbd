#!/usr/bin/env bash
# BERT-Base on one GPU in under 5 minutes: pretraining steps at sequence 128 and 512 in
# fp32 / bf16 / fp16 (loss scaling), XLA off and on, as sequences/s and MFU against the
# device's measured matmul peak; then fine-tuning prediction padded vs length-bucketed.
#
#   bash bench/gpu.sh            # on a CUDA machine with the project installed
#                                # (pip install -e . 'tensorflow[and-cuda]')
#   bash bench/gpu.sh --dry_run  # the same program on the CPU, tiny (CI runs this)
#
# PYTHON picks the interpreter (default: the repo's .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
exec "$PYTHON" bench/bench_gpu.py "$@"
