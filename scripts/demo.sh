#!/usr/bin/env bash
# Sets up .venv and runs the end-to-end demo on the data the package ships.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m bert_tf.demo --output_dir=out/demo "$@"
