"""Resuming finds the seed generators' states whatever else the process built."""

import types

import numpy as np
import tensorflow as tf
from conftest import TINY_CONFIG

import bert_tf
from bert_tf.jobs import stages
from bert_tf.training import checkpoint as checkpoint_lib
from bert_tf.training import resume


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
