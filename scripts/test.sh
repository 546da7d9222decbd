#!/usr/bin/env bash
# Sets up .venv, checks style with ruff, and runs the whole test suite (slow tests included).
# Tests that need ../shared (fixtures and data beside the checkout) skip when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
