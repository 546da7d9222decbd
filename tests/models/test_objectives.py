"""The losses' per-label log-probabilities, and what the training step costs to compute them
(issue 17): the masked LM's gradient must not scatter into a [B, P, V] buffer."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import tensorflow as tf
from conftest import REPO

from bert_tf.models.objectives import label_log_probs


def test_label_log_probs_is_the_log_probability_of_each_label():
    rng = np.random.default_rng(0)
    log_probs = tf.nn.log_softmax(rng.normal(size=(3, 5, 997)).astype("float32"))
    labels = rng.integers(0, 997, (3, 5))
    expected = np.take_along_axis(log_probs.numpy(), labels[..., None], -1)[..., 0]
    np.testing.assert_array_equal(label_log_probs(log_probs, labels).numpy(), expected)


def test_masked_lm_loss_gradient_is_dense_not_a_scatter():
    """A gather's gradient is an UnsortedSegmentSum into a zeroed [B*P*V] buffer: 0.44 s of a
    1 s tiny pretraining step on 2 cores, where the original's one-hot product costs a
    multiply."""
    labels = tf.constant([[1, 7], [3, 0]])

    @tf.function
    def gradient(logits):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            loss = -tf.reduce_sum(label_log_probs(tf.nn.log_softmax(logits), labels))
        return tape.gradient(loss, logits)

    graph = gradient.get_concrete_function(tf.TensorSpec((2, 2, 30522))).graph
    op_types = {op.type for op in graph.get_operations()}
    assert not op_types & {"UnsortedSegmentSum", "ScatterNd", "TensorScatterAdd"}, op_types


def test_importing_bert_tf_pools_host_memory_unless_told_not_to():
    """bert_tf turns on TensorFlow's BFC allocator for host memory (its stats exist only
    then); an explicit TF_CPU_ALLOCATOR_USE_BFC=false is kept."""
    program = ("import bert_tf, tensorflow as tf\n"
               "tf.ones([256, 256]) @ tf.ones([256, 256])\n"
               "try:\n"
               "    print('pooled', tf.config.experimental.get_memory_info('CPU:0')['peak'])\n"
               "except ValueError:\n"
               "    print('not pooled')\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPU_ALLOCATOR_USE_BFC"}
    outputs = []
    for setting in (None, "false"):
        run_env = env if setting is None else {**env, "TF_CPU_ALLOCATOR_USE_BFC": setting}
        done = subprocess.run([sys.executable, "-c", program], cwd=REPO, env=run_env,
                              capture_output=True, text=True, timeout=300, check=True)
        outputs.append(done.stdout.split()[:2])
    assert outputs[0][0] == "pooled" and int(outputs[0][1]) >= 256 * 256 * 4
    assert outputs[1] == ["not", "pooled"]
