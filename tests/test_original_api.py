"""The original release's module API: its own test suites' cases, run against bert_tf with
only the imports changed (tokenization_test.py and modeling_test.py, cases restated)."""

import json
import random

import numpy as np
import pytest

from bert_tf.data import tokenization
from bert_tf.errors import UsageError
from bert_tf.models import modeling

VOCAB = ["[UNK]", "[CLS]", "[SEP]", "want", "##want", "##ed", "wa", "un", "runn", "##ing"]


def test_full_tokenizer_and_its_ids(tmp_path):
    vocab_file = tmp_path / "vocab.txt"
    vocab_file.write_text("".join(token + "\n" for token in [*VOCAB, ","]))
    tokenizer = tokenization.FullTokenizer(str(vocab_file))
    tokens = tokenizer.tokenize("UNwant\u00e9d,running")
    assert tokens == ["un", "##want", "##ed", ",", "runn", "##ing"]
    assert tokenizer.convert_tokens_to_ids(tokens) == [7, 4, 5, 10, 8, 9]
    assert tokenizer.convert_ids_to_tokens([7, 4, 5, 10, 8, 9]) == tokens


def test_basic_tokenizer_cases():
    assert tokenization.BasicTokenizer().tokenize("ah\u535a\u63a8zz") == [
        "ah", "\u535a", "\u63a8", "zz"]
    text = " \tHeLLo!how  \n Are yoU?  "
    assert tokenization.BasicTokenizer(do_lower_case=True).tokenize(text) == [
        "hello", "!", "how", "are", "you", "?"]
    assert tokenization.BasicTokenizer(do_lower_case=True).tokenize("H\u00e9llo") == ["hello"]
    assert tokenization.BasicTokenizer(do_lower_case=False).tokenize(text) == [
        "HeLLo", "!", "how", "Are", "yoU", "?"]


def test_wordpiece_tokenizer_cases():
    tokenizer = tokenization.WordpieceTokenizer(vocab={t: i for i, t in enumerate(VOCAB)})
    assert tokenizer.tokenize("") == []
    assert tokenizer.tokenize("unwanted running") == ["un", "##want", "##ed", "runn", "##ing"]
    assert tokenizer.tokenize("unwantedX running") == ["[UNK]", "runn", "##ing"]


def test_module_level_conversions():
    vocab = {token: index for index, token in enumerate(VOCAB)}
    inv_vocab = {index: token for token, index in vocab.items()}
    tokens = ["un", "##want", "##ed", "runn", "##ing"]
    assert tokenization.convert_tokens_to_ids(vocab, tokens) == [7, 4, 5, 8, 9]
    assert tokenization.convert_ids_to_tokens(inv_vocab, [7, 4, 5, 8, 9]) == tokens


def test_character_classes():
    assert all(tokenization._is_whitespace(c) for c in " \t\r\n\u00a0")
    assert not any(tokenization._is_whitespace(c) for c in "A-")
    assert tokenization._is_control("\u0005")
    assert not any(tokenization._is_control(c) for c in "A \t\r")
    assert all(tokenization._is_punctuation(c) for c in "-$`.")
    assert not any(tokenization._is_punctuation(c) for c in "A ")


def random_ids(shape, vocab_size, rng):
    return np.array([rng.randint(0, vocab_size - 1) for _ in range(int(np.prod(shape)))],
                    "int32").reshape(shape)


def test_bert_model_in_the_original_one_call_form():
    """modeling_test.py's default tester: batch 13, length 7, 5 layers of width 32."""
    rng = random.Random(0)
    config = modeling.BertConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=5, num_attention_heads=4,
        intermediate_size=37, hidden_act="gelu", hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=16,
        initializer_range=0.02)
    model = modeling.BertModel(
        config=config, is_training=True, input_ids=random_ids([13, 7], 99, rng),
        input_mask=random_ids([13, 7], 2, rng), token_type_ids=random_ids([13, 7], 16, rng),
        scope=None)
    assert tuple(model.get_embedding_output().shape) == (13, 7, 32)
    assert tuple(model.get_sequence_output().shape) == (13, 7, 32)
    assert tuple(model.get_pooled_output().shape) == (13, 32)
    assert len(model.get_all_encoder_layers()) == 5
    assert tuple(model.get_embedding_table().shape) == (99, 32)
    assert model.weights[0].path.startswith("bert/")
    with pytest.raises(UsageError, match="one-call form"):
        modeling.BertModel(config).get_pooled_output()


def test_config_to_json_string():
    # The original's case used hidden_size=37 with the default 12 heads, a config that
    # cannot build a model; here the constructor refuses it (tests/test_config.py).
    config = json.loads(modeling.BertConfig(vocab_size=99, hidden_size=36).to_json_string())
    assert (config["vocab_size"], config["hidden_size"]) == (99, 36)


def test_shape_and_mask_helpers():
    x = np.zeros((2, 3, 4), "float32")
    assert modeling.get_shape_list(x, expected_rank=3) == [2, 3, 4]
    with pytest.raises(UsageError, match="rank 3"):
        modeling.assert_rank(x, [2, 4])
    matrix = modeling.reshape_to_matrix(x)
    assert tuple(matrix.shape) == (6, 4)
    assert tuple(modeling.reshape_from_matrix(matrix, [2, 3, 4]).shape) == (2, 3, 4)
    mask = modeling.create_attention_mask_from_input_mask(x, np.array([[1, 1, 0], [1, 0, 0]]))
    np.testing.assert_array_equal(mask[1], [[1, 0, 0]] * 3)
    assert modeling.dropout(x, 0.0) is x


def test_assignment_map_names_what_the_checkpoint_holds(tiny_config, tmp_path):
    from bert_tf.training import checkpoint

    model = modeling.BertModel(tiny_config)
    checkpoint.save_checkpoint(model, str(tmp_path / "model.ckpt"))
    other = modeling.BertModel(modeling.BertConfig.from_dict(
        {**tiny_config.to_dict(), "num_hidden_layers": tiny_config.num_hidden_layers + 1}))
    assignment, initialized = modeling.get_assignment_map_from_checkpoint(
        other.weights, str(tmp_path / "model.ckpt"))
    assert "bert/encoder/layer_0/attention/self/query/kernel" in assignment
    extra = f"bert/encoder/layer_{tiny_config.num_hidden_layers}/output/dense/kernel"
    assert extra not in assignment and extra + ":0" not in initialized
    assert len(assignment) == len(model.weights)
