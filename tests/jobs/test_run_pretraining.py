"""The training driver and run_pretraining.py against the original's optimizer fixture,
under real tf.distribute strategies, across a kill -9, and with bad input."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO, event_scalars, fixture_path, read_results, run_script

import bert_tf
from bert_tf.jobs import stages
from bert_tf.jobs.run_pretraining import PretrainingOptions, run
from bert_tf.training import distribution, resume


def fixture_flags(output_dir, **overrides) -> list[str]:
    """run_pretraining.py flags of the optimizer fixture (see its README)."""
    tiny = fixture_path("tiny_ckpt")
    flags = dict(
        bert_config_file=tiny / "bert_config_nodropout.json",
        input_file=fixture_path("optimizer", "first8.tfrecord"),
        init_checkpoint=tiny / "bert_model.ckpt",
        output_dir=output_dir, train_batch_size=8, max_seq_length=128,
        max_predictions_per_seq=20, learning_rate=1e-3, num_train_steps=8, num_warmup_steps=3,
        save_checkpoints_steps=1, iterations_per_loop=1, eval_batch_size=8, max_eval_steps=1,
    )
    flags.update(overrides)
    return [f"--{name}={value}" for name, value in flags.items()]


def test_run_pretraining_reproduces_the_original_optimizer_trajectory(tmp_path):
    out = tmp_path / "out"
    run_script(["run_pretraining.py", "--do_train", "--do_eval", "--deterministic",
                "--keep_checkpoint_max=0", *fixture_flags(out)])
    trajectory = np.load(fixture_path("optimizer", "trajectory.npz"))
    worst = 0.0
    for step in range(1, 9):
        reader = tf.train.load_checkpoint(str(out / f"model.ckpt-{step}"))
        assert reader.get_tensor("global_step") == step
        for key in trajectory.files:
            if key.startswith(f"step{step}/"):
                name = key.split("/", 1)[1]
                value = reader.get_tensor(name)[: trajectory[key].shape[0]]
                worst = max(worst, float(np.abs(value - trajectory[key]).max()))
    assert worst < 1e-5, worst

    # Every tensor of the original's step-8 checkpoint, slots and global_step included.
    original = tf.train.load_checkpoint(
        str(fixture_path("optimizer", "model_ckpt_step8") / "model.ckpt-8")
    )
    ours = tf.train.load_checkpoint(str(out / "model.ckpt-8"))
    names = original.get_variable_to_shape_map()
    assert any(name.endswith("/adam_m") for name in names)
    ours_names = ours.get_variable_to_shape_map()
    assert set(names) <= set(ours_names)
    assert set(ours_names) - set(names) == set()  # no dropout layers run: no seed states saved
    for name in names:
        np.testing.assert_allclose(ours.get_tensor(name), original.get_tensor(name),
                                   atol=1e-5, rtol=0, err_msg=name)

    expected = read_results(fixture_path("optimizer", "model_ckpt_step8", "eval_results.txt"))
    found = read_results(out / "eval_results.txt")
    assert found.keys() == expected.keys()
    for key in expected:
        assert found[key] == pytest.approx(expected[key], abs=1e-4), key


def test_original_checkpoint_resumes_and_evaluates(tmp_path):
    """The original's model.ckpt-8 (with slots) in output_dir: eval picks it up."""
    source = fixture_path("optimizer", "model_ckpt_step8")
    out = tmp_path / "out"
    out.mkdir()
    for path in source.glob("model.ckpt-8.*"):
        shutil.copy(path, out)
    tf.compat.v1.train.update_checkpoint_state(str(out), str(out / "model.ckpt-8"))
    tiny = fixture_path("tiny_ckpt")
    options = PretrainingOptions(
        bert_config_file=str(tiny / "bert_config_nodropout.json"),
        input_file=str(fixture_path("optimizer", "first8.tfrecord")), output_dir=str(out),
        do_eval=True, max_eval_steps=1, num_train_steps=8, num_warmup_steps=3,
    )
    results = run(options, tf.distribute.get_strategy())
    expected = read_results(source / "eval_results.txt")
    for key in expected:
        assert results[key] == pytest.approx(expected[key], abs=1e-4), key


def test_latest_checkpoint_finds_one_written_before_the_state_file(tmp_path):
    """A kill between a checkpoint's `.index` and the `checkpoint` state file loses nothing:
    the newest complete checkpoint is found by scanning the directory."""
    source = fixture_path("optimizer", "model_ckpt_step8")
    for path in source.glob("model.ckpt-8.*"):
        shutil.copy(path, tmp_path)
    assert resume.latest_checkpoint(str(tmp_path)) == str(tmp_path / "model.ckpt-8")
    tf.compat.v1.train.update_checkpoint_state(str(tmp_path), str(tmp_path / "model.ckpt-3"))
    assert resume.latest_checkpoint(str(tmp_path)) == str(tmp_path / "model.ckpt-8")
    (tmp_path / "model.ckpt-9.data-00000-of-00001").write_bytes(b"")  # no index: incomplete
    assert resume.latest_checkpoint(str(tmp_path)) == str(tmp_path / "model.ckpt-8")




def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_mirrored_and_multi_worker_match_one_device(tmp_path):
    """Same global batch, 5 steps: 1 device, Mirrored over 2 logical CPUs, and 2 worker
    processes under MultiWorkerMirroredStrategy give the same loss curve (1e-4)."""
    data = str(fixture_path("pretrain_public", "sample_text_seed12345.tfrecord"))
    common = ["run_pretraining.py", "--do_train", "--deterministic"]

    def flags(name):
        return fixture_flags(tmp_path / name, input_file=data, num_train_steps=5,
                             num_warmup_steps=2, save_checkpoints_steps=5)

    run_script([*common, *flags("one")])
    run_script([*common, *flags("mirrored"), "--distribution_strategy=mirrored",
                "--num_cpu_devices=2"])
    ports = [_free_port(), _free_port()]
    workers = []
    for index in range(2):
        tf_config = {"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                     "task": {"type": "worker", "index": index}}
        workers.append(subprocess.Popen(
            [sys.executable, *common, *flags("multi_worker"),
             "--distribution_strategy=multi_worker"],
            cwd=REPO, env={**os.environ, "TF_CONFIG": json.dumps(tf_config)},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        ))
    for worker in workers:
        _, stderr = worker.communicate(timeout=600)
        assert worker.returncode == 0, stderr[-3000:]

    one = event_scalars(tmp_path / "one")
    assert len(one) == 5 and one[-1] < one[0]
    np.testing.assert_allclose(event_scalars(tmp_path / "mirrored"), one, atol=1e-4, rtol=0)
    np.testing.assert_allclose(event_scalars(tmp_path / "multi_worker"), one, atol=1e-4, rtol=0)
    # The chief alone wrote the checkpoint, in the original layout.
    final = tf.train.load_checkpoint(str(tmp_path / "multi_worker" / "model.ckpt-5"))
    assert final.get_tensor("global_step") == 5


@pytest.mark.slow
def test_a_dead_worker_fails_the_other_on_one_line_and_both_resume(tmp_path):
    """kill -9 one of two multi_worker processes mid-run: the other fails within seconds
    with one line (not a hang, not a traceback); rerunning both resumes from the last
    checkpoint and finishes."""
    out = tmp_path / "out"

    def start(num_train_steps: int, ports: list[int]) -> list[subprocess.Popen]:
        workers = []
        for index in range(2):
            log = open(tmp_path / f"worker{index}-{num_train_steps}.log", "w+")  # noqa: SIM115
            tf_config = {"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                         "task": {"type": "worker", "index": index}}
            workers.append(subprocess.Popen(
                [sys.executable, "run_pretraining.py", "--do_train",
                 "--distribution_strategy=multi_worker",
                 *fixture_flags(out, num_train_steps=num_train_steps, num_warmup_steps=1,
                                save_checkpoints_steps=10)],
                cwd=REPO, env={**os.environ, "TF_CONFIG": json.dumps(tf_config)},
                stdout=subprocess.DEVNULL, stderr=log))
            workers[-1].log = log
        return workers

    def stderr(worker: subprocess.Popen) -> str:
        worker.log.seek(0)
        return worker.log.read()

    chief, other = start(100_000, [_free_port(), _free_port()])
    deadline = time.time() + 300
    while not (out / "model.ckpt-20.index").exists() and time.time() < deadline:
        assert chief.poll() is None, stderr(chief)[-3000:]
        time.sleep(0.05)
    other.send_signal(signal.SIGKILL)
    killed_at = time.time()
    other.wait()
    try:
        chief.wait(timeout=120)
    finally:
        chief.kill()
    assert time.time() - killed_at < 120
    text = stderr(chief)
    assert chief.returncode == 1 and "Traceback" not in text, text[-3000:]
    line = text.strip().splitlines()[-1]
    assert "multi_worker: another worker stopped answering after global step" in line, line
    assert "restart every worker with the same command" in line and "model.ckpt-" in line
    last = resume.latest_checkpoint(str(out))
    step = int(last.rsplit("-", 1)[1])
    assert step >= 20
    for worker in start(step + 10, [_free_port(), _free_port()]):
        worker.wait(timeout=600)
        assert worker.returncode == 0, stderr(worker)[-3000:]
        assert f"Resuming from {last}" in stderr(worker)
    assert (out / f"model.ckpt-{step + 10}.index").exists()


@pytest.mark.slow
def test_kill_9_then_resume_ends_with_the_uninterrupted_weights(tmp_path):
    """With dropout on (seed states are saved too) and deterministic ops: kill -9 after a
    checkpoint, rerun the same command, and the final weights equal an uninterrupted run."""
    tiny = fixture_path("tiny_ckpt")
    data = str(fixture_path("pretrain_public", "sample_text_seed12345.tfrecord"))

    def command(name):
        return ["run_pretraining.py", "--do_train", "--deterministic", "--seed=7",
                *fixture_flags(tmp_path / name, input_file=data,
                               bert_config_file=tiny / "bert_config.json", num_train_steps=120,
                               num_warmup_steps=10, save_checkpoints_steps=20)]

    run_script(command("straight"))
    killed = subprocess.Popen([sys.executable, *command("killed")], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = tmp_path / "killed" / "model.ckpt-20.index"
    deadline = time.time() + 300
    while not first.exists() and killed.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert first.exists(), "the run never wrote its first checkpoint"
    assert not (tmp_path / "killed" / "model.ckpt-120.index").exists(), "killed too late"
    resumed = run_script(command("killed"))
    assert "Resuming from" in resumed.stderr

    straight = tf.train.load_checkpoint(str(tmp_path / "straight" / "model.ckpt-120"))
    again = tf.train.load_checkpoint(str(tmp_path / "killed" / "model.ckpt-120"))
    names = straight.get_variable_to_shape_map()
    assert any(name.endswith("seed_generator_state") for name in names)
    for name in names:
        np.testing.assert_array_equal(again.get_tensor(name), straight.get_tensor(name), name)


def test_records_of_other_lengths_fail_before_any_step(tmp_path):
    out = tmp_path / "out"
    result = run_script(["run_pretraining.py", "--do_train",
                         *fixture_flags(out, max_seq_length=64)], check=False)
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert "first8.tfrecord" in message and "'input_ids' has 128 values" in message
    assert "max_seq_length=64" in message
    assert not list(out.glob("model.ckpt-*"))


def test_wrong_size_init_checkpoint_and_foreign_output_dir(tmp_path):
    minilm = fixture_path("minilm_ckpt")
    flags = fixture_flags(tmp_path / "a", init_checkpoint=minilm / "bert_model.ckpt")
    result = run_script(["run_pretraining.py", "--do_train", *flags], check=False)
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert "384] in the checkpoint but [" in message and "64] in the model" in message
    assert not list((tmp_path / "a").glob("model.ckpt-*"))

    # An output_dir holding a checkpoint of another config (the MiniLM one) refuses to resume.
    foreign = tmp_path / "b"
    foreign.mkdir()
    for path in minilm.glob("bert_model.ckpt.*"):
        shutil.copy(path, foreign / path.name.replace("bert_model.ckpt", "model.ckpt-3"))
    tf.compat.v1.train.update_checkpoint_state(str(foreign), str(foreign / "model.ckpt-3"))
    result = run_script(["run_pretraining.py", "--do_train", *fixture_flags(foreign)],
                        check=False)
    assert result.returncode != 0 and "model.ckpt-3" in result.stderr
    assert "in the checkpoint but" in result.stderr


def test_flags_that_cannot_work_are_refused(tmp_path, tiny_config):
    with pytest.raises(distribution.DistributionError, match="unknown 'gpu'"):
        distribution.get_strategy("gpu")
    with pytest.raises(distribution.DistributionError, match="contradicts"):
        distribution.get_strategy("mirrored", use_tpu=True)
    with pytest.raises(ValueError, match="multiple of the number of replicas"):
        stages.check_batch_size("train_batch_size", 7, 2)
    with pytest.raises(ValueError, match="exceeds max_position_embeddings=64"):
        stages.check_sequence_length(128, tiny_config, "tiny.json")
    with pytest.raises(ValueError, match="do_train"):
        run(PretrainingOptions(bert_config_file="c.json", input_file="in",
                               output_dir=str(tmp_path)), tf.distribute.get_strategy())
    assert bert_tf.checkpoint.SEED_STATE_SUFFIX == "seed_generator_state"


def test_tpu_path_runs_up_to_the_resolver():
    """No TPU here: the TPU branch must get as far as the cluster resolver and then say
    which TPU it could not reach."""
    with pytest.raises(distribution.DistributionError, match="cannot reach the TPU") as error:
        distribution.get_strategy(use_tpu=True, tpu_name="my-tpu", tpu_zone="us-central1-b",
                                  gcp_project="my-project")
    assert "tpu_name='my-tpu'" in str(error.value) and "us-central1-b" in str(error.value)
    with pytest.raises(distribution.DistributionError, match="TPU Name"):
        distribution.get_strategy("tpu")


@pytest.mark.slow
def test_tiny_pretraining_on_real_text_lowers_the_masked_lm_loss(tmp_path):
    """Two hundred steps from random init on real English text (big.txt's first 3,000
    lines): masked-LM loss falls clearly below its untrained value, log(30522) = 10.3 (to
    5.9 here)."""
    from conftest import data_path

    corpus = tmp_path / "corpus.txt"
    lines = data_path("text", "big.txt").read_text(encoding="utf-8").splitlines()[:3000]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    vocab = fixture_path("tiny_ckpt", "vocab.txt")
    records = tmp_path / "records.tfrecord"
    run_script(["create_pretraining_data.py", f"--input_file={corpus}",
                f"--output_file={records}", f"--vocab_file={vocab}", "--max_seq_length=64",
                "--max_predictions_per_seq=10", "--dupe_factor=2"])
    out = tmp_path / "out"
    run_script(["run_pretraining.py", "--do_train", "--do_eval", "--seed=3",
                *fixture_flags(out, input_file=records, init_checkpoint="", max_seq_length=64,
                               max_predictions_per_seq=10, train_batch_size=32,
                               learning_rate=2e-3, num_train_steps=200, num_warmup_steps=20,
                               save_checkpoints_steps=200, iterations_per_loop=50,
                               eval_batch_size=32, max_eval_steps=10)])
    losses = event_scalars(out)
    results = read_results(out / "eval_results.txt")
    assert results["global_step"] == 200 and len(losses) == 4
    assert losses[-1] < losses[0], losses  # the logged loss keeps falling after step 50
    assert results["masked_lm_loss"] < 7.0, results




def test_fp16_loss_scaling_matches_fp32_and_lamb_runs_in_bf16(tmp_path):
    """fp16 goes through dynamic loss scaling (clipping at the scaled norm): its 8-step
    eval matches the original's fp32 results to float16 rounding. LAMB in bf16 trains and
    saves its slots under the original names."""
    expected = read_results(fixture_path("optimizer", "model_ckpt_step8", "eval_results.txt"))
    run_script(["run_pretraining.py", "--do_train", "--do_eval", "--deterministic",
                "--mixed_precision=fp16",
                *fixture_flags(tmp_path / "fp16", save_checkpoints_steps=8,
                               iterations_per_loop=4)])
    found = read_results(tmp_path / "fp16" / "eval_results.txt")
    for key in ("loss", "masked_lm_loss", "next_sentence_loss"):
        assert found[key] == pytest.approx(expected[key], abs=2e-3), key

    run_script(["run_pretraining.py", "--do_train", "--deterministic", "--mixed_precision=bf16",
                "--optimizer=lamb",
                *fixture_flags(tmp_path / "lamb", learning_rate=1e-2, save_checkpoints_steps=8,
                               iterations_per_loop=1)])
    losses = event_scalars(tmp_path / "lamb")
    assert len(losses) == 8 and losses[-1] < losses[0] - 0.1, losses
    reader = tf.train.load_checkpoint(str(tmp_path / "lamb" / "model.ckpt-8"))
    names = reader.get_variable_to_shape_map()
    assert "bert/pooler/dense/kernel/adam_m" in names and names["global_step"] == []


def test_gradient_accumulation_gives_the_same_update(tmp_path):
    """--gradient_accumulation_steps=4: each batch of 8 runs as 4 slices of 2, and the 8
    steps still land on the original's checkpoint and eval results."""
    run_script(["run_pretraining.py", "--do_train", "--do_eval", "--deterministic",
                "--gradient_accumulation_steps=4",
                *fixture_flags(tmp_path, save_checkpoints_steps=8, iterations_per_loop=4)])
    expected = read_results(fixture_path("optimizer", "model_ckpt_step8", "eval_results.txt"))
    found = read_results(tmp_path / "eval_results.txt")
    for key in expected:
        assert found[key] == pytest.approx(expected[key], abs=1e-5), key
    original = tf.train.load_checkpoint(
        str(fixture_path("optimizer", "model_ckpt_step8") / "model.ckpt-8"))
    ours = tf.train.load_checkpoint(str(tmp_path / "model.ckpt-8"))
    for name in original.get_variable_to_shape_map():
        np.testing.assert_allclose(ours.get_tensor(name), original.get_tensor(name),
                                   atol=1e-5, rtol=0, err_msg=name)
