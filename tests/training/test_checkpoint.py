import shutil
import types

import numpy as np
import pytest
import tensorflow as tf
from conftest import (
    TINY_CONFIG,
    data_path,
    fixture_path,
    one_line_error,
    script,
    staged_files,
    tiny_pretraining_flags,
    visible_files,
)

import bert_tf
from bert_tf.interop import hf_conversion
from bert_tf.jobs import extract_features, stages
from bert_tf.training import checkpoint as checkpoint_lib
from bert_tf.training import resume
from bert_tf.training.checkpoint import (
    CheckpointError,
    list_variables,
    load_checkpoint,
    save_checkpoint,
)


def tiny_fixture_config():
    return bert_tf.BertConfig.from_json_file(str(fixture_path("tiny_ckpt", "bert_config.json")))


def inputs_for(config, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, config.vocab_size, size=(2, 12))
    return {
        "input_ids": ids,
        "input_mask": np.ones_like(ids),
        "segment_ids": np.zeros_like(ids),
        "masked_lm_positions": np.array([[1, 3], [2, 5]]),
    }


def test_loads_tiny_checkpoint_by_prefix_and_by_directory():
    config = tiny_fixture_config()
    by_prefix, by_dir = bert_tf.BertPretrainer(config), bert_tf.BertPretrainer(config)
    report = load_checkpoint(by_prefix, str(fixture_path("tiny_ckpt") / "bert_model.ckpt"))
    assert not report.missing and not report.unexpected and not report.ignored
    load_checkpoint(by_dir, str(fixture_path("tiny_ckpt")))
    reader = tf.train.load_checkpoint(str(fixture_path("tiny_ckpt") / "bert_model.ckpt"))
    for variable in by_dir.weights:
        np.testing.assert_array_equal(variable.numpy(), reader.get_tensor(variable.path))


def test_checkpoint_with_optimizer_slots_and_global_step():
    path = str(fixture_path("optimizer", "model_ckpt_step8") / "model.ckpt-8")
    model = bert_tf.BertPretrainer(tiny_fixture_config())
    report = load_checkpoint(model, path)
    assert not report.missing and not report.unexpected
    assert "global_step" in report.ignored
    assert "bert/pooler/dense/kernel/adam_m" in report.ignored
    assert len(report.ignored) == 1 + 2 * len(model.weights)

    step = tf.Variable(0, dtype=tf.int64)
    slot = tf.Variable(tf.zeros((2, 64)))
    report = load_checkpoint(
        model, path, {"global_step": step, "cls/seq_relationship/output_weights/adam_v": slot}
    )
    assert int(step.numpy()) == 8 and np.abs(slot.numpy()).sum() > 0


def test_fine_tuning_and_feature_extraction_directions():
    config = tiny_fixture_config()
    bert_only = bert_tf.BertModel(config)
    report = load_checkpoint(bert_only, str(fixture_path("tiny_ckpt")))
    assert report.unexpected == sorted(
        n for n in list_variables(str(fixture_path("tiny_ckpt"))) if n.startswith("cls/")
    )
    assert not report.missing


def test_shape_mismatch_names_variable_and_both_shapes_and_changes_nothing():
    minilm = bert_tf.BertConfig.from_json_file(
        str(fixture_path("minilm_ckpt", "bert_config.json"))
    )
    model = bert_tf.BertModel(minilm)
    before = [v.numpy().copy() for v in model.weights]
    with pytest.raises(CheckpointError, match=r"bert/.* has shape \[.*\] in the checkpoint but "):
        load_checkpoint(model, str(fixture_path("tiny_ckpt")))
    for old, variable in zip(before, model.weights, strict=True):
        np.testing.assert_array_equal(old, variable.numpy())


def test_missing_and_foreign_checkpoints(tmp_path, tiny_config):
    model = bert_tf.BertModel(tiny_config)
    with pytest.raises(CheckpointError, match=r"nothing\.ckpt: no checkpoint there"):
        load_checkpoint(model, str(tmp_path / "nothing.ckpt"))
    with pytest.raises(CheckpointError, match="directory holds no checkpoint"):
        load_checkpoint(model, str(tmp_path))
    foreign = str(tmp_path / "other.ckpt")
    tf.raw_ops.SaveV2(prefix=foreign, tensor_names=["w"], shape_and_slices=[""],
                      tensors=[tf.zeros(3)])
    with pytest.raises(CheckpointError, match="none of the model's variables"):
        load_checkpoint(model, foreign)


def test_save_then_load_round_trip_is_exact(tmp_path, tiny_config):
    model = bert_tf.BertPretrainer(tiny_config)
    prefix = save_checkpoint(model, str(tmp_path / "out" / "model.ckpt"), global_step=7)
    assert sorted(tmp_path.joinpath("out").iterdir()) == [
        tmp_path / "out" / "model.ckpt.data-00000-of-00001",
        tmp_path / "out" / "model.ckpt.index",
    ]
    names = list_variables(prefix)
    assert names.pop("global_step") == []
    assert names == {v.path: list(v.shape) for v in model.weights}

    clone = bert_tf.BertPretrainer(tiny_config)
    load_checkpoint(clone, prefix)
    for a, b in zip(model.weights, clone.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    inputs = inputs_for(tiny_config)
    np.testing.assert_array_equal(
        model(inputs)["masked_lm_log_probs"], clone(inputs)["masked_lm_log_probs"]
    )


def test_save_with_slots(tmp_path, tiny_config):
    model = bert_tf.BertModel(tiny_config)
    slots = {f"{v.path}/adam_m": np.ones(v.shape, "float32") for v in model.weights}
    slots["bert/pooler/dense/bias/adam_v"] = tf.Variable(tf.fill([tiny_config.hidden_size], 2.0))
    prefix = save_checkpoint(model, str(tmp_path / "model.ckpt-3"), 3, slots)
    reader = tf.train.load_checkpoint(prefix)
    assert reader.get_tensor("global_step") == 3
    assert reader.get_tensor("bert/pooler/dense/bias/adam_m").sum() == tiny_config.hidden_size
    assert reader.get_tensor("bert/pooler/dense/bias/adam_v").sum() == 2 * tiny_config.hidden_size


def test_tf1_init_from_checkpoint_and_saver_read_our_checkpoints(tmp_path):
    """What the original code does with an init_checkpoint, on a checkpoint we wrote."""
    config = tiny_fixture_config()
    model = bert_tf.BertPretrainer(config)
    load_checkpoint(model, str(fixture_path("tiny_ckpt")))
    prefix = save_checkpoint(model, str(tmp_path / "bert_model.ckpt"))
    graph = tf.Graph()
    with graph.as_default():
        variables = {
            v.path: tf.compat.v1.get_variable(v.path, shape=v.shape, dtype=tf.float32)
            for v in model.weights
        }
        tf.compat.v1.train.init_from_checkpoint(prefix, {"bert/": "bert/", "cls/": "cls/"})
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            values = session.run(variables)
            tf.compat.v1.train.Saver().restore(session, prefix)
    for v in model.weights:
        np.testing.assert_array_equal(values[v.path], v.numpy())










def test_full_disk_at_a_checkpoint_leaves_no_staged_file(tmp_path):
    out = tmp_path / "out"
    result = script(tiny_pretraining_flags(out), limit_file_bytes=2_000_000)
    one_line_error(result, f"{out}/model.ckpt-1: cannot write the checkpoint:",
                   "File too large")
    assert staged_files(out) == [] and not list(out.glob("model.ckpt-*"))


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
