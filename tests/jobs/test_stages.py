"""The training jobs' stages: one run per output_dir (a dead holder's lock is taken) and
flags that would divide by zero or take no step are refused."""

import signal
import subprocess
import sys
import types

import pytest
import tensorflow as tf
from conftest import REPO, one_line_error, script, tiny_pretraining_flags

from bert_tf import file_io
from bert_tf.errors import BertTfError, OutputError
from bert_tf.jobs import stages


def test_a_second_run_into_a_held_output_dir_is_refused_and_a_dead_holders_lock_taken(tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from bert_tf import file_io\n"
         f"with file_io.output_lock({str(out)!r} + '/'):\n"
         "    print('held', flush=True); time.sleep(120)"],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    result = script(tiny_pretraining_flags(out))
    one_line_error(result, f"output_dir: {out}/ is in use by another run (pid {holder.pid}")
    assert not list(out.glob("model.ckpt-*"))
    # In-process too: the training driver's folder guard.
    strategy = tf.distribute.get_strategy()
    with pytest.raises(OutputError, match="in use by another run"):
        with stages.output_folder(strategy, str(out)):
            pass
    holder.send_signal(signal.SIGKILL)  # dies holding the lock: the kernel releases it
    holder.wait()
    assert (out / file_io.LOCK_FILE).exists()
    with stages.output_folder(strategy, str(out)):
        assert "pid " in (out / file_io.LOCK_FILE).read_text()
    assert not (out / file_io.LOCK_FILE).exists()


def test_run_options_that_would_divide_by_zero_or_take_no_step_are_refused():
    base = dict(output_dir="o", save_checkpoints_steps=1, iterations_per_loop=1,
                gradient_accumulation_steps=1, keep_checkpoint_max=5, jit_compile=False,
                train_batch_size=8, init_checkpoint=None)
    for flag in ("save_checkpoints_steps", "iterations_per_loop", "gradient_accumulation_steps"):
        options = types.SimpleNamespace(**{**base, flag: 0})
        with pytest.raises(BertTfError, match=f"{flag} must be at least 1, found 0"):
            stages.run_config(options, 10)
    with pytest.raises(BertTfError, match="training would take 0 steps"):
        stages.run_config(types.SimpleNamespace(**base), 0)
