"""Every model of heads.py (and the bare encoder) keeps the model contract
(tests/model_contract.py): Google-layout paths, output shapes, checkpoint round trip."""

import numpy as np
from model_contract import check_model_contract, tiny_batch

from bert_tf.heads import BertClassifier, BertPretrainer, BertSpanModel, BertTokenClassifier
from bert_tf.modeling import BertModel


def test_bert_model(tiny_config, tmp_path):
    check_model_contract(lambda: BertModel(tiny_config), tiny_batch(tiny_config), {},
                         {"sequence_output": (2, 8, 32), "pooled_output": (2, 32)}, tmp_path)


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
        {"logits": (2, 3), "log_probs": (2, 3), "probabilities": (2, 3)}, tmp_path)


def test_regression_classifier_predicts_its_one_logit(tiny_config, tmp_path):
    check_model_contract(
        lambda: BertClassifier(tiny_config, 1), tiny_batch(tiny_config),
        {"output_weights": (1, 32), "output_bias": (1,)}, {"predictions": (2,)}, tmp_path)


def test_span_model(tiny_config, tmp_path):
    check_model_contract(
        lambda: BertSpanModel(tiny_config), tiny_batch(tiny_config),
        {"cls/squad/output_weights": (2, 32), "cls/squad/output_bias": (2,)},
        {"start_logits": (2, 8), "end_logits": (2, 8)}, tmp_path)


def test_token_classifier(tiny_config, tmp_path):
    check_model_contract(
        lambda: BertTokenClassifier(tiny_config, 5), tiny_batch(tiny_config),
        {"output_weights": (5, 32), "output_bias": (5,)},
        {"logits": (2, 8, 5), "log_probs": (2, 8, 5), "predictions": (2, 8)}, tmp_path)
