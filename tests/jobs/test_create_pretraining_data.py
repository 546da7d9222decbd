"""create_pretraining_data.py under faults: killed workers, another run's shards, stale
staging, SIGTERM mid-write, a full disk, bad flags (docs/RELIABILITY.md)."""

import hashlib
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import (
    REPO,
    data_path,
    fixture_path,
    one_line_error,
    script,
    staged_files,
    visible_files,
)

from bert_tf import file_io
from bert_tf.data import pretraining_data as pd
from bert_tf.data import pretraining_shards as ps
from bert_tf.errors import OutputError

VOCAB = str(fixture_path("minilm_ckpt", "vocab.txt"))


SAMPLE = str(fixture_path("pretrain_public", "sample_text.txt"))








def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pretraining_data_flags(output: Path, *extra: str) -> list[str]:
    return ["create_pretraining_data.py", f"--input_file={SAMPLE}", f"--output_file={output}",
            f"--vocab_file={VOCAB}", "--dupe_factor=2", *extra]


_make_shard = ps.make_shard


def _dies_on_shard_one(job):
    if job.shard.index == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return _make_shard(job)


def test_fast_mode_fails_within_seconds_when_a_worker_is_killed(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus.txt"
    text = data_path("text", "big.txt").read_text(encoding="utf-8").splitlines()[:3000]
    corpus.write_text("\n".join(text) + "\n", encoding="utf-8")
    monkeypatch.setattr(ps, "make_shard", _dies_on_shard_one)  # forked workers inherit it
    started = time.monotonic()
    with pytest.raises(ps.WorkerDied) as error:
        ps.create_sharded([str(corpus)], str(tmp_path / "out") + "/", VOCAB, True,
                          pd.InstanceOptions(dupe_factor=1), seed=7, num_workers=2,
                          shard_size_mb=0.02)
    assert time.monotonic() - started < 60
    message = str(error.value)
    assert message.startswith(f"shard 1 ({corpus}, bytes ")
    assert "was killed by signal 9 (SIGKILL)" in message and "rerun" in message
    assert multiprocessing.active_children() == []  # no worker left running
    assert not (tmp_path / "out").exists() or visible_files(tmp_path / "out") == []
    assert staged_files(tmp_path) == []


def test_fast_mode_refuses_another_runs_shards_and_cleans_them_on_request(tmp_path):
    corpus = tmp_path / "corpus.txt"
    text = data_path("text", "big.txt").read_text(encoding="utf-8").splitlines()[:2000]
    corpus.write_text("\n".join(text) + "\n", encoding="utf-8")
    out = str(tmp_path / "out") + "/"

    def make(shard_size_mb, clean=False):
        return ps.create_sharded([str(corpus)], out, VOCAB, True, pd.InstanceOptions(dupe_factor=1),
                                 seed=7, num_workers=1, shard_size_mb=shard_size_mb,
                                 clean_output=clean)[0]

    first = make(0.03)
    assert len(first) > 2
    with pytest.raises(pd.PretrainingDataError, match=r"holds \d+ shards of another run.*"
                                                      r"--clean_output"):
        make(1.0)
    assert visible_files(tmp_path / "out") == sorted(Path(p).name for p in first)
    second = make(1.0, clean=True)
    assert visible_files(tmp_path / "out") == [Path(p).name for p in second]
    # The same shard count replaces the files in place.
    assert make(1.0) == second


def test_stale_staging_is_removed_and_never_read_as_data(tmp_path):
    clean = tmp_path / "clean" / "out.tfrecord"
    script(pretraining_data_flags(clean), check=True)
    # What interrupted runs leave: a staged file of this version, and older versions' names.
    out = tmp_path / "dirty" / "out.tfrecord"
    staging = out.parent / file_io.STAGING_FOLDER
    staging.mkdir(parents=True)
    (staging / "out.tfrecord.4242-deadbeef").write_bytes(b"partial")
    legacy = out.parent / "out.tfrecord.tmp-1234"
    legacy.write_bytes(clean.read_bytes()[:100])
    # A reader's glob sees the legacy leftover and refuses it rather than read it.
    with pytest.raises(OutputError, match=r"out.tfrecord.tmp-1234 is an unfinished output"):
        file_io.expand_patterns(str(out.parent / "out*"))
    script(pretraining_data_flags(out), check=True)
    assert digest(out) == digest(clean)
    assert visible_files(out.parent) == ["out.tfrecord"]  # staging, legacy, lock: all gone
    # Bookkeeping files beside outputs are skipped by readers' globs.
    (out.parent / file_io.LOCK_FILE).write_text("pid 1")
    (out.parent / file_io.STAGING_FOLDER).mkdir()
    assert file_io.expand_patterns(str(out.parent / "*")) == [str(out)]


def test_sigterm_while_writing_leaves_nothing_and_a_rerun_is_identical(tmp_path):
    clean = tmp_path / "clean" / "out.tfrecord"
    flags = ["--dupe_factor=40", "--random_seed=3"]
    script(pretraining_data_flags(clean, *flags), check=True)
    out = tmp_path / "killed" / "out.tfrecord"
    process = subprocess.Popen([sys.executable, *pretraining_data_flags(out, *flags)], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    staging = out.parent / file_io.STAGING_FOLDER
    deadline = time.time() + 120
    while process.poll() is None and time.time() < deadline and not (
            staging.exists() and any(p.name.startswith("out.tfrecord.") for p in
                                     staging.iterdir())):
        time.sleep(0.005)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    if process.returncode == 0:
        pytest.skip("the run finished before SIGTERM arrived")
    assert process.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert "Traceback" not in stderr and staged_files(tmp_path / "killed") == []
    # Atomic either way: no output, or (a signal that came after the rename) the whole one.
    assert not out.exists() or digest(out) == digest(clean)
    script(pretraining_data_flags(out, *flags), check=True)
    assert digest(out) == digest(clean)


def test_full_disk_removes_the_staged_file_and_keeps_earlier_output(tmp_path):
    out = tmp_path / "out.tfrecord"
    out.write_bytes(b"an earlier run's output")
    result = script(pretraining_data_flags(out, "--dupe_factor=10"), limit_file_bytes=20_000)
    one_line_error(result, f"{out}: cannot write: [Errno 27] File too large")
    assert out.read_bytes() == b"an earlier run's output"
    assert visible_files(tmp_path) == ["out.tfrecord"] and staged_files(tmp_path) == []


def test_bad_flags_of_create_pretraining_data(tmp_path):
    result = script(pretraining_data_flags(tmp_path / "o.tfrecord", "--dupe_factor=0"))
    one_line_error(result, "dupe_factor must be at least 1, found 0")
    assert visible_files(tmp_path) == []
