"""Every model of heads.py (and the bare encoder) keeps the model contract
(tests/model_contract.py): Google-layout paths, output shapes, checkpoint round trip."""

import keras
import numpy as np
import tensorflow as tf
from conftest import run_script
from model_contract import check_model_contract, tiny_batch

from bert_tf.config import BertConfig
from bert_tf.models.heads import BertClassifier, BertPretrainer, BertSpanModel, BertTokenClassifier
from bert_tf.models.modeling import BertModel
from bert_tf.models.objectives import ClassificationObjective
from bert_tf.training import loop
from bert_tf.training.optimization import create_optimizer


def test_bert_model(tiny_config, tmp_path):
    check_model_contract(lambda: BertModel(tiny_config), tiny_batch(tiny_config), {},
                         {"sequence_output": (2, 8, 32), "pooled_output": (2, 32),
                          "embedding_output": (2, 8, 32)}, tmp_path)


def test_pretrainer(tiny_config, tmp_path):
    inputs = tiny_batch(tiny_config, masked_lm_positions=np.array([[1, 2], [3, 4]]))
    check_model_contract(
        lambda: BertPretrainer(tiny_config), inputs,
        {"cls/predictions/transform/dense/kernel": (32, 32),
         "cls/predictions/transform/dense/bias": (32,),
         "cls/predictions/transform/LayerNorm/gamma": (32,),
         "cls/predictions/transform/LayerNorm/beta": (32,),
         "cls/predictions/output_bias": (99,),
         "cls/seq_relationship/output_weights": (2, 32),
         "cls/seq_relationship/output_bias": (2,)},
        {"masked_lm_log_probs": (2, 2, 99), "next_sentence_log_probs": (2, 2)}, tmp_path)


def test_classifier(tiny_config, tmp_path):
    check_model_contract(
        lambda: BertClassifier(tiny_config, 3), tiny_batch(tiny_config),
        {"output_weights": (3, 32), "output_bias": (3,)},
        {"logits": (2, 3)}, tmp_path)


def test_regression_classifier_has_one_logit(tiny_config, tmp_path):
    check_model_contract(
        lambda: BertClassifier(tiny_config, 1), tiny_batch(tiny_config),
        {"output_weights": (1, 32), "output_bias": (1,)}, {"logits": (2, 1)}, tmp_path)


def test_span_model(tiny_config, tmp_path):
    check_model_contract(
        lambda: BertSpanModel(tiny_config), tiny_batch(tiny_config),
        {"cls/squad/output_weights": (2, 32), "cls/squad/output_bias": (2,)},
        {"start_logits": (2, 8), "end_logits": (2, 8)}, tmp_path)


def test_token_classifier(tiny_config, tmp_path):
    check_model_contract(
        lambda: BertTokenClassifier(tiny_config, 5), tiny_batch(tiny_config),
        {"output_weights": (5, 32), "output_bias": (5,)},
        {"logits": (2, 8, 5)}, tmp_path)


def test_keras_fit_takes_the_drivers_steps(tiny_config, tmp_path):
    """`compile` with the obvious Keras loss and the original optimizer (AdamWeightDecay,
    warm-up then linear decay, global-norm clipping at 1.0), then `fit`: the same weights
    as the training driver (loop.train) after the same four steps, dropout off."""
    config = BertConfig.from_dict({**tiny_config.to_dict(), "hidden_dropout_prob": 0.0,
                                   "attention_probs_dropout_prob": 0.0})
    features = tiny_batch(config, batch=16, seed=3)
    labels = np.random.default_rng(3).integers(0, 3, 16)
    by_driver, by_fit = BertClassifier(config, 3), BertClassifier(config, 3)
    by_fit.set_weights(by_driver.get_weights())
    for model in (by_driver, by_fit):
        model.dropout.rate = 0.0
    initial = [variable.numpy() for variable in by_driver.weights]

    def dataset_fn(context, start_step):
        batches = tf.data.Dataset.from_tensor_slices({**features, "label_ids": labels})
        return batches.batch(4).skip(start_step)

    loop.train(tf.distribute.get_strategy(), by_driver,
                   create_optimizer(1e-3, num_train_steps=4, num_warmup_steps=1),
                   ClassificationObjective(), dataset_fn,
                   loop.RunConfig(output_dir=str(tmp_path), num_train_steps=4,
                                      steps_per_execution=4, save_checkpoints_steps=4))
    by_fit.compile(optimizer=create_optimizer(1e-3, 4, 1, global_clipnorm=1.0),
                   loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                   metrics=["accuracy"])
    history = by_fit.fit(features, labels, batch_size=4, epochs=1, shuffle=False, verbose=0)
    assert set(history.history) == {"loss", "accuracy"}
    moved = False
    for driven, fitted, start in zip(by_driver.weights, by_fit.weights, initial, strict=True):
        np.testing.assert_allclose(fitted.numpy(), driven.numpy(), atol=1e-6, err_msg=driven.path)
        moved |= not np.allclose(driven.numpy(), start)
    assert moved
    evaluated = by_fit.evaluate(features, labels, verbose=0, return_dict=True)
    assert 0.0 <= evaluated["accuracy"] <= 1.0
    assert by_fit.predict(features, verbose=0).shape == (16, 3)


MIRRORED_FIT = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, numpy as np
sys.path[:0] = ["tests", "tests/models"]
from conftest import TINY_CONFIG
from model_contract import tiny_batch
from bert_tf.config import BertConfig
from bert_tf.models.heads import BertClassifier
from bert_tf.training.optimization import AdamWeightDecay, WarmupLinearDecay
config = BertConfig(**{**TINY_CONFIG, "hidden_dropout_prob": 0.0,
                       "attention_probs_dropout_prob": 0.0})
data = tf.data.Dataset.from_tensor_slices(
    (tiny_batch(config, batch=16, seed=3), np.random.default_rng(3).integers(0, 3, 16)))
weights, fitted = None, []
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
for strategy in (tf.distribute.get_strategy(), mirrored):
    with strategy.scope():
        model = BertClassifier(config, 3)
        model.dropout.rate = 0.0
        weights = weights or model.get_weights()
        model.set_weights(weights)
        model.compile(optimizer=AdamWeightDecay(WarmupLinearDecay(1e-3, 4, 1), global_clipnorm=1.0),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(data.batch(4), epochs=1, verbose=0)
    fitted.append(model.get_weights())
def largest(a, b):
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))
print(strategy.num_replicas_in_sync, largest(fitted[0], fitted[1]), largest(fitted[0], weights))
"""


def test_keras_fit_under_mirrored_strategy_sums_the_replicas_gradients():
    """Two replicas, each half of every batch: the same weights as one device (the
    optimizer sums the replicas' gradients in fit; the training driver sums them itself)."""
    result = run_script(["-c", MIRRORED_FIT])
    replicas, difference, moved = (float(v) for v in result.stdout.split()[-3:])
    assert replicas == 2 and moved > 1e-3
    assert difference < 1e-6
