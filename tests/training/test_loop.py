"""The training loop's steps (training/loop.py): they compile under XLA in a strategy."""

import numpy as np
import tensorflow as tf

from bert_tf.models.heads import BertPretrainer
from bert_tf.models.objectives import PretrainingObjective
from bert_tf.training import loop
from bert_tf.training.optimization import create_optimizer


def test_steps_compile_with_xla_under_a_strategy(tmp_path, tiny_config):
    """The TPU proxy: train, eval and predict steps XLA-compile (static shapes) in a
    strategy, and the jitted train steps run."""
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        model = BertPretrainer(tiny_config)
        optimizer = create_optimizer(1e-3, 10, 2)
        optimizer.build(model.trainable_variables)
    task = PretrainingObjective()
    rng = np.random.default_rng(0)
    batch = {
        "input_ids": rng.integers(0, 99, (4, 16)).astype("int32"),
        "input_mask": np.ones((4, 16), "int32"),
        "segment_ids": np.zeros((4, 16), "int32"),
        "masked_lm_positions": rng.integers(0, 16, (4, 3)).astype("int32"),
        "masked_lm_ids": rng.integers(0, 99, (4, 3)).astype("int32"),
        "masked_lm_weights": np.ones((4, 3), "float32"),
        "next_sentence_labels": rng.integers(0, 2, (4, 1)).astype("int32"),
    }
    config = loop.RunConfig(output_dir=str(tmp_path), jit_compile=True)
    train_steps, forward_backward = loop.make_train_function(
        strategy, model, optimizer, task, config
    )
    normalizers = task.normalizers(batch)
    assert "HloModule" in forward_backward.experimental_get_compiler_ir(batch, normalizers)(
        stage="hlo"
    )
    _, replica_metrics = loop.make_eval_function(strategy, model, task, jit_compile=True)
    assert "HloModule" in replica_metrics.experimental_get_compiler_ir(batch)(stage="hlo")
    _, replica_predict = loop.make_predict_function(
        strategy, model, lambda outputs, _: {"nsp": outputs["next_sentence_log_probs"]}, True
    )
    assert "HloModule" in replica_predict.experimental_get_compiler_ir(batch)(stage="hlo")

    dataset = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors(batch).repeat()
    )
    losses = [float(train_steps(iter(dataset), tf.constant(3))[0]) for _ in range(3)]
    assert int(optimizer.iterations.numpy()) == 9
    assert losses[-1] < losses[0]




