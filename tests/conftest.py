"""Shared test helpers: where ../shared is, and tiny configs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BERT_TF_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared (or $BERT_TF_SHARED); skips the test when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: this test needs the shared fixtures/data beside the repo")
    return path


def fixture_path(*parts: str) -> Path:
    return shared_path("fixtures", *parts)


def data_path(*parts: str) -> Path:
    return shared_path("data", *parts)


TINY_CONFIG = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=64,
    type_vocab_size=2,
)


@pytest.fixture
def tiny_config():
    import bert_tf

    return bert_tf.BertConfig(**TINY_CONFIG)


def event_scalars(output_dir, tag: str = "loss") -> list[float]:
    """The `tag` scalars of the TensorBoard events in `output_dir`, in step order."""
    import tensorflow as tf

    values = {}
    for path in Path(output_dir).glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == tag:
                    values[event.step] = float(tf.make_ndarray(value.tensor))
    return [values[step] for step in sorted(values)]


def read_results(path) -> dict[str, float]:
    """An `eval_results.txt` (`key = value` lines) as floats."""
    lines = Path(path).read_text().splitlines()
    return {key: float(value) for key, value in (line.split(" = ") for line in lines)}


def one_line_error(result, *parts: str) -> str:
    """Asserts a failed script run that ends with one line holding `parts`, and no
    traceback; returns that line."""
    assert result.returncode != 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    for part in parts:
        assert part in line, line
    return line


def run_script(args: list, env: dict | None = None, check: bool = True):
    """Runs a top-level script (a path relative to the repository, or `-m module`) in a
    fresh Python from the repository root; returns the CompletedProcess."""
    result = subprocess.run(
        [sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True,
        timeout=900, env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{args[0]} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result
