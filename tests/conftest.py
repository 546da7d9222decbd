"""Shared test helpers: where ../shared is, and tiny configs."""

from __future__ import annotations

import os
import resource
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


def run_script(args: list, env: dict | None = None, check: bool = True,
               limit_file_bytes: int | None = None):
    """Runs a top-level script (a path relative to the repository, or `-m module`) in a
    fresh Python from the repository root; returns the CompletedProcess. With
    `limit_file_bytes`, RLIMIT_FSIZE is set: a full disk without root (writes past the limit
    fail with EFBIG; Python ignores SIGXFSZ)."""

    def limit():
        if limit_file_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_bytes, limit_file_bytes))

    result = subprocess.run(
        [sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True,
        timeout=900, env={**os.environ, **(env or {})}, preexec_fn=limit,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{args[0]} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def script(args: list, limit_file_bytes: int | None = None, check: bool = False):
    """`run_script` for a test that inspects the failure: not checked unless asked."""
    return run_script(args, check=check, limit_file_bytes=limit_file_bytes)


def visible_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def staged_files(folder: Path) -> list[Path]:
    from bert_tf import file_io

    return [p for p in folder.rglob("*") if file_io.is_unfinished(str(p)) and p.is_file()]


def tiny_pretraining_flags(output_dir: Path, **overrides) -> list[str]:
    """run_pretraining.py on the tiny checkpoint and the optimizer fixture's records."""
    tiny = fixture_path("tiny_ckpt")
    flags = dict(bert_config_file=tiny / "bert_config_nodropout.json",
                 input_file=fixture_path("optimizer", "first8.tfrecord"),
                 init_checkpoint=tiny / "bert_model.ckpt", output_dir=output_dir,
                 train_batch_size=8, num_train_steps=2, num_warmup_steps=1,
                 save_checkpoints_steps=1, iterations_per_loop=1)
    flags.update(overrides)
    return ["run_pretraining.py", "--do_train", *[f"--{k}={v}" for k, v in flags.items()]]
