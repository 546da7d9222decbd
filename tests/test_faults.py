"""Faults and bad input across the scripts: killed workers, interrupted and concurrent runs,
full disks, partial or corrupt checkpoints, crafted files. Every case ends in a clear
one-line error or a correct result, never a hang or a silent wrong result (see
docs/RELIABILITY.md for the table of cases)."""

import hashlib
import json
import multiprocessing
import os
import random
import resource
import shutil
import signal
import struct
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_CONFIG, data_path, fixture_path, one_line_error

import bert_tf
from bert_tf import file_io
from bert_tf.data import pretraining_data as pd
from bert_tf.data import pretraining_shards as ps
from bert_tf.data.tokenization import FullTokenizer, VocabError, check_vocab_fits
from bert_tf.errors import BertTfError, OutputError
from bert_tf.interop import hf_conversion
from bert_tf.jobs import extract_features, stages
from bert_tf.tasks import glue
from bert_tf.training import checkpoint as checkpoint_lib
from bert_tf.training import loop, resume
from bert_tf.training.input_pipeline import (
    RecordFormatError,
    find_unreadable_record_file,
    pretraining_dataset,
)

ROOT = Path(__file__).resolve().parents[1]
VOCAB = str(fixture_path("minilm_ckpt", "vocab.txt"))
SAMPLE = str(fixture_path("pretrain_public", "sample_text.txt"))


def script(args: list[str], limit_file_bytes: int | None = None, check: bool = False):
    """Runs a top-level script in a fresh Python, optionally with RLIMIT_FSIZE set (a full
    disk without root: writes past the limit fail with EFBIG; Python ignores SIGXFSZ)."""

    def limit():
        if limit_file_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_bytes, limit_file_bytes))

    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=600, preexec_fn=limit)
    if check and result.returncode:
        raise AssertionError(result.stderr[-3000:])
    return result


def visible_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def staged_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if file_io.is_unfinished(str(p)) and p.is_file()]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pretraining_data_flags(output: Path, *extra: str) -> list[str]:
    return ["create_pretraining_data.py", f"--input_file={SAMPLE}", f"--output_file={output}",
            f"--vocab_file={VOCAB}", "--dupe_factor=2", *extra]


# --- create_pretraining_data: workers, staging, stale shards, full disk ------------------


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
    process = subprocess.Popen([sys.executable, *pretraining_data_flags(out, *flags)], cwd=ROOT,
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


# --- training: locks, full disk, checkpoints ---------------------------------------------


def tiny_pretraining_flags(output_dir: Path, **overrides) -> list[str]:
    tiny = fixture_path("tiny_ckpt")
    flags = dict(bert_config_file=tiny / "bert_config_nodropout.json",
                 input_file=fixture_path("optimizer", "first8.tfrecord"),
                 init_checkpoint=tiny / "bert_model.ckpt", output_dir=output_dir,
                 train_batch_size=8, num_train_steps=2, num_warmup_steps=1,
                 save_checkpoints_steps=1, iterations_per_loop=1)
    flags.update(overrides)
    return ["run_pretraining.py", "--do_train", *[f"--{k}={v}" for k, v in flags.items()]]


def test_a_second_run_into_a_held_output_dir_is_refused_and_a_dead_holders_lock_taken(tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from bert_tf import file_io\n"
         f"with file_io.output_lock({str(out)!r} + '/'):\n"
         "    print('held', flush=True); time.sleep(120)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
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


def test_full_disk_at_a_checkpoint_leaves_no_staged_file(tmp_path):
    out = tmp_path / "out"
    result = script(tiny_pretraining_flags(out), limit_file_bytes=2_000_000)
    one_line_error(result, f"{out}/model.ckpt-1: cannot write the checkpoint:",
                   "File too large")
    assert staged_files(out) == [] and not list(out.glob("model.ckpt-*"))


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


def save_tiny(model_or_tensors, prefix: str) -> str:
    if isinstance(model_or_tensors, dict):
        return checkpoint_lib.save_tensors(prefix, model_or_tensors)
    return checkpoint_lib.save_checkpoint(model_or_tensors, prefix)


def tiny_tensors() -> dict:
    reader = tf.train.load_checkpoint(str(fixture_path("tiny_ckpt") / "bert_model.ckpt"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def test_corrupt_checkpoints_give_one_clear_error(tmp_path):
    config = bert_tf.BertConfig.from_json_file(str(fixture_path("tiny_ckpt", "bert_config.json")))
    source = fixture_path("tiny_ckpt") / "bert_model.ckpt"
    cases = {
        "truncated": lambda data: data.write_bytes(data.read_bytes()[:1000]),
        "missing": lambda data: data.unlink(),
        "flipped": lambda data: data.write_bytes(
            data.read_bytes()[:5000] + bytes([data.read_bytes()[5000] ^ 0xFF])
            + data.read_bytes()[5001:]),
    }
    for name, damage in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        for path in source.parent.glob("bert_model.ckpt.*"):
            shutil.copy(path, folder / path.name)
            (folder / path.name).chmod(0o644)
        damage(folder / "bert_model.ckpt.data-00000-of-00001")
        model = bert_tf.BertModel(config)
        before = [v.numpy().copy() for v in model.weights]
        with pytest.raises(checkpoint_lib.CorruptCheckpointError,
                           match=r"cannot read its data .*missing, truncated or corrupt"):
            checkpoint_lib.load_checkpoint(model, str(folder / "bert_model.ckpt"))
        for old, variable in zip(before, model.weights, strict=True):  # nothing half-loaded
            np.testing.assert_array_equal(old, variable.numpy())


def test_truncated_latest_index_falls_back_and_pruning_keeps_exactly_the_newest(tmp_path):
    config = bert_tf.BertConfig(**TINY_CONFIG)
    model = bert_tf.BertPretrainer(config)
    optimizer = stages.make_optimizer(
        types.SimpleNamespace(learning_rate=1e-3, optimizer="adamw", mixed_precision=""), 10, 1)
    optimizer.build(model.trainable_variables)
    out = str(tmp_path)
    for step in (1, 2, 3):
        optimizer.iterations.assign(step)
        resume.save(model, optimizer, out, keep_checkpoint_max=2)
    assert sorted(checkpoint_lib.numbered_checkpoints(out)) == [2, 3]
    # A truncated newest index: the resume skips it with a warning for the intact one.
    index = tmp_path / "model.ckpt-3.index"
    index.write_bytes(index.read_bytes()[:20])
    optimizer.iterations.assign(0)
    assert resume.restore_or_initialize(model, optimizer, out, allowed_missing=()) == 2
    # A garbage state file, and a checkpoint written just before a kill (no state update),
    # and data whose index never came: the next save keeps exactly 2 complete ones.
    (tmp_path / "checkpoint").write_text("this is not a state file {")
    optimizer.iterations.assign(4)
    checkpoint_lib.save_checkpoint(model, f"{out}/model.ckpt-4",
                                   extra_variables=resume.training_state(model, optimizer))
    shutil.copy(tmp_path / "model.ckpt-2.data-00000-of-00001",
                tmp_path / "model.ckpt-1.data-00000-of-00001")
    optimizer.iterations.assign(5)
    resume.save(model, optimizer, out, keep_checkpoint_max=2)
    names = visible_files(tmp_path)
    assert [n for n in names if n.startswith("model.ckpt")] == [
        "model.ckpt-4.data-00000-of-00001", "model.ckpt-4.index",
        "model.ckpt-5.data-00000-of-00001", "model.ckpt-5.index"]
    assert tf.train.latest_checkpoint(out).endswith("model.ckpt-5")


def test_paths_that_do_not_train_refuse_a_checkpoint_missing_variables(tmp_path):
    tiny = fixture_path("tiny_ckpt")
    tensors = tiny_tensors()
    partial = save_tiny({k: v for k, v in tensors.items() if "layer_1/" not in k},
                        str(tmp_path / "partial" / "bert_model.ckpt"))
    (tmp_path / "in.txt").write_text("hello world\n")
    options = extract_features.ExtractOptions(
        input_file=str(tmp_path / "in.txt"), output_file=str(tmp_path / "out.jsonl"),
        bert_config_file=str(tiny / "bert_config.json"), init_checkpoint=partial,
        vocab_file=str(tiny / "vocab.txt"), layers="-1")
    with pytest.raises(checkpoint_lib.CheckpointError,
                       match=r"lacks 16 of the model's \d+ variables \(bert/encoder/layer_1/"):
        extract_features.run(options, tf.distribute.get_strategy())
    assert not (tmp_path / "out.jsonl").exists()
    # Evaluation of a classifier from a checkpoint without its head: random head refused.
    from bert_tf.jobs import run_classifier

    eval_only = run_classifier.ClassifierOptions(
        data_dir=str(data_path("glue", "MRPC")), bert_config_file=str(tiny / "bert_config.json"),
        task_name="mrpc", vocab_file=str(tiny / "vocab.txt"), output_dir=str(tmp_path / "c"),
        init_checkpoint=str(tiny / "bert_model.ckpt"), do_eval=True, max_seq_length=64)
    with pytest.raises(checkpoint_lib.CheckpointError, match=r"\(output_bias, output_weights\)"):
        run_classifier.run(eval_only, tf.distribute.get_strategy())
    eval_only.init_checkpoint = None
    with pytest.raises(checkpoint_lib.CheckpointError, match="holds no checkpoint and no"):
        run_classifier.run(eval_only, tf.distribute.get_strategy())
    # Export and HF conversion refuse it too.
    from bert_tf.interop import export

    with pytest.raises(checkpoint_lib.CheckpointError, match="lacks 16"):
        export.build_module(str(tiny / "bert_config.json"), str(tiny / "vocab.txt"), partial,
                            kind="embeddings", max_seq_length=64)
    shutil.copy(tiny / "bert_config.json", tmp_path / "partial" / "bert_config.json")
    with pytest.raises(checkpoint_lib.CheckpointError, match="lacks 16"):
        hf_conversion.google_to_hf(str(tmp_path / "partial"), str(tmp_path / "hf"))
    assert not (tmp_path / "hf" / "model.safetensors").exists()


def test_a_vocabulary_larger_than_vocab_size_is_refused_up_front(tmp_path):
    tiny = fixture_path("tiny_ckpt")
    config = json.loads((tiny / "bert_config.json").read_text())
    vocab = (tiny / "vocab.txt").read_text().splitlines()
    big = tmp_path / "vocab.txt"
    big.write_text("\n".join(vocab + ["extra1", "extra2"]) + "\n")
    with pytest.raises(VocabError, match=rf"vocab.txt: {len(vocab) + 2} tokens, but vocab_size"
                                         rf" in c.json is {config['vocab_size']}"):
        check_vocab_fits({t: i for i, t in enumerate(vocab + ["extra1", "extra2"])}, str(big),
                         config["vocab_size"], "c.json")
    result = script(["extract_features.py", f"--input_file={SAMPLE}",
                     f"--output_file={tmp_path / 'o.jsonl'}", f"--vocab_file={big}",
                     f"--bert_config_file={tiny / 'bert_config.json'}",
                     f"--init_checkpoint={tiny / 'bert_model.ckpt'}", "--layers=-1"])
    one_line_error(result, "extract_features.py:", f"{big}: {len(vocab) + 2} tokens")
    assert not (tmp_path / "o.jsonl").exists()


# --- records, files and formats ----------------------------------------------------------


def test_records_truncated_or_of_other_lengths_are_named(tmp_path):
    good = fixture_path("pretrain_public", "sample_text_seed12345.tfrecord")
    truncated = tmp_path / "b.tfrecord"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2 + 7])
    found = find_unreadable_record_file([str(good), str(truncated)])
    assert found.startswith(f"{truncated}: truncated record at "), found
    assert find_unreadable_record_file([str(good)]) is None
    # A later file made with another max_seq_length fails before any step, named.
    shutil.copy(good, tmp_path / "a.tfrecord")
    tokenizer = FullTokenizer(VOCAB)
    documents, _ = pd.read_documents([SAMPLE], tokenizer)
    options = pd.InstanceOptions(max_seq_length=64, max_predictions_per_seq=10, dupe_factor=1)
    instances = pd.make_instances(documents, list(tokenizer.vocab), options, random.Random(1))
    pd.write_instances(instances, tokenizer, 64, 10, [str(tmp_path / "c.tfrecord")])
    truncated.unlink()
    with pytest.raises(RecordFormatError, match=r"c.tfrecord: record 0: feature 'input_ids' "
                                                r"has 64 values but 128"):
        pretraining_dataset(str(tmp_path / "*.tfrecord"), 8, 128, 20, is_training=True)


def test_crafted_safetensors_are_refused_naming_the_tensor(tmp_path):
    def write(header, data=b"\0" * 16, length=None):
        encoded = json.dumps(header).encode()
        path = tmp_path / "x.safetensors"
        path.write_bytes(struct.pack("<Q", length or len(encoded)) + encoded + data)
        return str(path)

    entry = {"dtype": "F32", "shape": [2]}
    cases = [
        ({"a": {**entry, "data_offsets": [0, 8]}, "b": {**entry, "data_offsets": [4, 12]}},
         "tensors a and b overlap"),
        ({"a": {**entry, "data_offsets": [8, 24]}}, "tensor a: data_offsets [8, 24] run outside"),
        ({"a": {**entry, "data_offsets": [0, 4]}}, "tensor a: 4 bytes do not hold shape [2]"),
        ({"a": {"dtype": "F32", "data_offsets": [0, 8]}}, "tensor a: no 'shape'"),
        ([1, 2], "header is a JSON list, expected an object"),
    ]
    for header, message in cases:
        with pytest.raises(hf_conversion.ConversionError, match=message.replace("[", r"\[")):
            hf_conversion.read_safetensors(write(header))
    with pytest.raises(hf_conversion.ConversionError, match="header length 1099511627776 runs "
                                                            "past the end"):
        hf_conversion.read_safetensors(write({}, length=2**40))


def test_tsv_fields_keep_unicode_line_separators_as_the_original_reads_them(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes("a\u2028b\tc\x0cd\x85e\r\nsecond\trow\n".encode())
    assert glue.read_tsv(str(path)) == [["a\u2028b", "c\x0cd\x85e"], ["second", "row"]]
    path.write_bytes(b"ok\trow\nbad\rfield\tx\n")
    with pytest.raises(glue.GlueDataError, match=r"train.tsv:2: new-line character"):
        glue.read_tsv(str(path))


def test_squad_eval_command_reports_bad_files_on_one_line(tmp_path):
    from bert_tf.tasks import squad_eval

    data = data_path("squad", "v1_dev_normans.json")
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "other.json").write_text(json.dumps({"no-such-id": "x"}))
    for predictions, message in [(tmp_path / "missing.json", "cannot read"),
                                 (tmp_path / "bad.json", "is not a UTF-8 JSON file"),
                                 (tmp_path / "other.json", "none of the 1 ids")]:
        with pytest.raises(SystemExit) as exit_:
            squad_eval.main([str(data), str(predictions)])
        assert str(exit_.value.code).startswith("squad_eval: prediction_file:")
        assert message in str(exit_.value.code) and "\n" not in str(exit_.value.code)


def test_squad_version_mismatch_warns_and_an_empty_context_is_scored(tmp_path, caplog):
    from bert_tf.tasks import squad, squad_eval

    v2 = str(data_path("squad", "v2_dev_normans.json"))
    squad.read_squad_examples(v2, False, version_2_with_negative=False)
    assert "pass --version_2_with_negative=true" in caplog.text
    caplog.clear()
    squad.read_squad_examples(str(data_path("squad", "v1_dev_normans.json")), False, True)
    assert "--version_2_with_negative is true" in caplog.text
    # A question with an empty context has no window: the original's "empty" prediction,
    # and it counts in the total (scored 0).
    data = {"data": [{"title": "t", "paragraphs": [
        {"context": "", "qas": [{"id": "q1", "question": "who?",
                                 "answers": [{"text": "x", "answer_start": 0}]}]}]}]}
    (tmp_path / "d.json").write_text(json.dumps(data))
    examples, _ = squad.read_squad_examples(str(tmp_path / "d.json"), False)
    predictions, _, _ = squad.postprocess(examples, [], {}, 20, 30, do_lower_case=True)
    assert predictions == {"q1": "empty"}
    assert squad_eval.evaluate(data["data"], predictions) == {"exact_match": 0.0, "f1": 0.0}


def test_a_config_key_named_like_a_method_is_kept_not_called():
    config = bert_tf.BertConfig.from_dict({**TINY_CONFIG, "validate": 1, "to_dict": "x"})
    assert config.to_dict()["validate"] == 1 and config.to_dict()["to_dict"] == "x"
    assert bert_tf.BertConfig.from_dict(config.to_dict()) == config


def test_records_of_a_larger_vocabulary_name_vocab_size_not_a_gather_index(tmp_path):
    from bert_tf.jobs.run_pretraining import PretrainingOptions, run

    config = tmp_path / "bert_config.json"
    config.write_text(json.dumps({**TINY_CONFIG, "max_position_embeddings": 128}))
    options = PretrainingOptions(
        bert_config_file=str(config), input_file=str(fixture_path("optimizer", "first8.tfrecord")),
        output_dir=str(tmp_path / "out"), do_train=True, train_batch_size=8, num_train_steps=1,
        num_warmup_steps=0, save_checkpoints_steps=1, iterations_per_loop=1)
    with pytest.raises(loop.InputDataError, match=r"an input id is out of range .* larger "
                                                      r"vocabulary than bert_config's vocab_size"):
        run(options, tf.distribute.get_strategy())
    assert not list((tmp_path / "out").glob("model.ckpt-*"))


def test_a_truncated_record_file_met_in_training_is_named(tmp_path):
    from bert_tf.jobs.run_pretraining import PretrainingOptions, run

    tiny = fixture_path("tiny_ckpt")
    good = fixture_path("optimizer", "first8.tfrecord")
    shutil.copy(good, tmp_path / "a.tfrecord")
    (tmp_path / "b.tfrecord").write_bytes(good.read_bytes()[: good.stat().st_size // 2 + 7])
    options = PretrainingOptions(
        bert_config_file=str(tiny / "bert_config.json"),
        input_file=str(tmp_path / "*.tfrecord"), output_dir=str(tmp_path / "out"),
        do_train=True, train_batch_size=8, num_train_steps=4, num_warmup_steps=0,
        save_checkpoints_steps=100, iterations_per_loop=4, seed=0)  # (not `deterministic`:
    # that turns op determinism on for the rest of this process, and a TF1-graph test here
    # then fails; 4 steps of 8 read every record of both files whatever the order)
    with pytest.raises(RecordFormatError, match=r"input_file: .*b.tfrecord: truncated record "
                                                r"at \d+; the file is truncated or corrupt"):
        run(options, tf.distribute.get_strategy())


def test_resume_finds_the_seed_states_whatever_else_the_process_built(tmp_path):
    """Keras numbers dropout seed generators per process: a model built after others has
    other names. Resume names them by their place in the model, so a notebook (or this
    test) resumes; a checkpoint with an earlier version's names resumes with a warning."""
    config = bert_tf.BertConfig(**TINY_CONFIG)

    def model_and_optimizer():
        model = bert_tf.BertPretrainer(config)
        optimizer = stages.make_optimizer(
            types.SimpleNamespace(learning_rate=1e-3, optimizer="adamw", mixed_precision=""),
            10, 1)
        optimizer.build(model.trainable_variables)
        return model, optimizer

    model, optimizer = model_and_optimizer()
    states = resume.seed_states(model)
    for index, variable in enumerate(states.values()):
        variable.assign(np.full(variable.shape, 1000 + index, variable.dtype))
    optimizer.iterations.assign(3)
    resume.save(model, optimizer, str(tmp_path), keep_checkpoint_max=0)
    bert_tf.BertModel(config)  # more generators: the next model's Keras names differ
    again, again_optimizer = model_and_optimizer()
    assert [v.path for v in again.non_trainable_variables] != [
        v.path for v in model.non_trainable_variables]
    assert resume.restore_or_initialize(again, again_optimizer, str(tmp_path)) == 3
    for (name, old), new in zip(states.items(), resume.seed_states(again).values(), strict=True):
        np.testing.assert_array_equal(old.numpy(), new.numpy(), err_msg=name)
    # An earlier version named them as Keras did: resuming goes on, warning about it.
    reader = tf.train.load_checkpoint(str(tmp_path / "model.ckpt-3"))
    tensors = {name.replace("/seed_generator_0/", "/seed_generator_99/"): reader.get_tensor(name)
               for name in reader.get_variable_to_shape_map()}
    old = tmp_path / "old"
    old.mkdir()
    checkpoint_lib.save_tensors(str(old / "model.ckpt-3"), tensors)
    third, third_optimizer = model_and_optimizer()
    assert resume.restore_or_initialize(third, third_optimizer, str(old)) == 3
