#!/usr/bin/env bash
# Sets up .venv, checks style with ruff, and runs the whole test suite (slow tests included).
# Tests that need ../shared (fixtures and data beside the checkout) skip when it is absent.
# Two pytest workers (pytest-xdist): much of the suite is single-threaded Python (tracing,
# interpreter start-up in subprocesses), so two cores finish it in ~0.7x the time of one
# process. Arguments go to pytest after these: `-n 0` runs it in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q -p no:cacheprovider -n 2 --dist worksteal "$@"
