"""ALBERT's ideas as config options of the same model: factorized embeddings
(`embedding_size`), cross-layer sharing (`num_hidden_groups`), the google-research/albert
checkpoint layout, and a tiny ALBERT that pretrains with sentence-order prediction."""

import subprocess
import sys

import numpy as np
from conftest import REPO, event_scalars, fixture_path

import bert_tf

TINY_ALBERT = dict(vocab_size=99, hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
                   intermediate_size=37, max_position_embeddings=64, type_vocab_size=2,
                   embedding_size=16, num_hidden_groups=1, inner_group_num=1)


def albert_parameters(V, E, H, L, I, P, T, groups=1, inner=1):  # noqa: E741
    """The ALBERT paper's count: E-dim embeddings, an E->H projection, and the
    groups * inner distinct transformer layers (shared by all L), plus the pooler."""
    embeddings = (V + P + T) * E + 2 * E
    projection = E * H + H if E != H else 0
    layer = 4 * (H * H + H) + 2 * H + (H * I + I) + (I * H + H) + 2 * H
    return embeddings + projection + groups * inner * layer + H * H + H


def test_parameter_counts_follow_the_albert_formula():
    base = dict(vocab_size=30000, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2)
    albert = bert_tf.BertModel(bert_tf.BertConfig(**base, embedding_size=128,
                                                  num_hidden_groups=1))
    count = albert.count_params()
    assert count == albert_parameters(30000, 128, 768, 12, 3072, 512, 2) == 11_683_584
    two_groups = bert_tf.BertModel(bert_tf.BertConfig(**{**TINY_ALBERT, "num_hidden_groups": 2}))
    assert two_groups.count_params() == albert_parameters(99, 16, 32, 4, 37, 64, 2, groups=2)
    # Factorized embeddings alone keep BERT's per-layer names and L distinct layers.
    factorized = bert_tf.BertModel(bert_tf.BertConfig(**{
        k: v for k, v in TINY_ALBERT.items() if k not in ("num_hidden_groups", "inner_group_num")
    }))
    names = {v.path for v in factorized.weights}
    assert "bert/encoder/layer_3/output/LayerNorm/gamma" in names
    assert "bert/encoder/embedding_hidden_mapping_in/kernel" in names


def test_google_research_albert_layout_and_round_trip(tmp_path):
    config = bert_tf.BertConfig(**TINY_ALBERT)
    model = bert_tf.BertPretrainer(config)
    shapes = {v.path: tuple(v.shape) for v in model.weights}
    prefix = "bert/encoder/transformer/group_0/inner_group_0/"
    expected = {
        "bert/embeddings/word_embeddings": (99, 16),
        "bert/embeddings/LayerNorm/gamma": (16,),
        "bert/encoder/embedding_hidden_mapping_in/kernel": (16, 32),
        prefix + "attention_1/self/query/kernel": (32, 32),
        prefix + "attention_1/output/dense/kernel": (32, 32),
        prefix + "LayerNorm/gamma": (32,),
        prefix + "ffn_1/intermediate/dense/kernel": (32, 37),
        prefix + "ffn_1/intermediate/output/dense/kernel": (37, 32),
        prefix + "LayerNorm_1/beta": (32,),
        "cls/predictions/transform/dense/kernel": (32, 16),
        "cls/predictions/transform/LayerNorm/gamma": (16,),
        "cls/seq_relationship/output_weights": (2, 32),
    }
    for name, shape in expected.items():
        assert shapes[name] == shape, name
    assert not any("layer_" in name for name in shapes)  # one shared layer, no per-layer copies
    saved = bert_tf.checkpoint.save_checkpoint(model, str(tmp_path / "albert.ckpt"))
    again = bert_tf.BertPretrainer(config)
    report = bert_tf.checkpoint.load_checkpoint(again, saved)
    assert not report.missing and not report.unexpected
    inputs = {"input_ids": np.arange(16, dtype="int32").reshape(2, 8),
              "masked_lm_positions": np.ones((2, 2), "int32")}
    np.testing.assert_array_equal(model(inputs)["masked_lm_log_probs"],
                                  again(inputs)["masked_lm_log_probs"])


def test_tiny_albert_pretrains_with_sentence_order_prediction(tmp_path):
    config = bert_tf.BertConfig(**{**TINY_ALBERT, "vocab_size": 30522,
                                   "max_position_embeddings": 128})
    config.to_json_file(str(tmp_path / "albert_config.json"))
    vocab = fixture_path("tiny_ckpt", "vocab.txt")
    records = tmp_path / "sop.tfrecord"
    subprocess.run([sys.executable, str(REPO / "create_pretraining_data.py"),
                    f"--input_file={fixture_path('pretrain_public', 'sample_text.txt')}",
                    f"--output_file={records}", f"--vocab_file={vocab}", "--max_seq_length=64",
                    "--max_predictions_per_seq=10", "--dupe_factor=4",
                    "--sentence_order_prediction"], check=True, capture_output=True)
    out = tmp_path / "out"
    subprocess.run([sys.executable, str(REPO / "run_pretraining.py"), "--do_train", "--do_eval",
                    f"--bert_config_file={tmp_path / 'albert_config.json'}",
                    f"--input_file={records}", f"--output_dir={out}", "--max_seq_length=64",
                    "--max_predictions_per_seq=10", "--train_batch_size=16",
                    "--num_train_steps=40", "--num_warmup_steps=4", "--learning_rate=3e-3",
                    "--iterations_per_loop=10", "--save_checkpoints_steps=40", "--seed=1",
                    "--max_eval_steps=2"], check=True, capture_output=True)
    losses = event_scalars(out)
    assert len(losses) == 4 and losses[-1] < losses[0] - 1.0, losses
    names = bert_tf.checkpoint.list_variables(str(out / "model.ckpt-40"))
    assert "bert/encoder/transformer/group_0/inner_group_0/LayerNorm_1/gamma" in names
