import numpy as np
import pytest
import tensorflow as tf
from conftest import fixture_path

import bert_tf
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
