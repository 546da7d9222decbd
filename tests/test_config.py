import json

import pytest
from conftest import TINY_CONFIG, fixture_path

import bert_tf
from bert_tf import BertConfig, BertConfigError


def write(tmp_path, content, name="bert_config.json"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


def test_original_defaults():
    config = BertConfig(vocab_size=100)
    assert config.to_dict() == {
        "vocab_size": 100,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 512,
        "type_vocab_size": 16,
        "initializer_range": 0.02,
    }


def test_published_config_keeps_extra_fields():
    path = fixture_path("published_layout", "bert_config.json")
    config = BertConfig.from_json_file(str(path))
    assert config.vocab_size == 21128 and config.hidden_size == 768
    assert config.directionality == "bidi"
    assert config.pooler_type == "first_token_transform"
    assert json.loads(config.to_json_string()) == json.loads(path.read_text())


def test_missing_fields_take_defaults_and_json_round_trips(tmp_path):
    config = BertConfig.from_json_file(write(tmp_path, '{"vocab_size": 50, "hidden_size": 96}'))
    assert config.num_attention_heads == 12 and config.type_vocab_size == 16
    out = str(tmp_path / "out.json")
    config.to_json_file(out)
    assert BertConfig.from_json_file(out) == config


@pytest.mark.parametrize(
    "content, field",
    [
        ('{"hidden_size": 64, "num_attention_heads": 4}', "vocab_size"),
        ('{"vocab_size": 10, "hidden_size": 100, "num_attention_heads": 12}', "hidden_size"),
        ('{"vocab_size": 10, "hidden_act": "swish"}', "hidden_act"),
        ('{"vocab_size": "30522"}', "vocab_size"),
        ('{"vocab_size": 10, "num_hidden_layers": 2.5}', "num_hidden_layers"),
        ('{"vocab_size": 10, "hidden_dropout_prob": 1.5}', "hidden_dropout_prob"),
        ('{"vocab_size": 10, "initializer_range": -1}', "initializer_range"),
        ('{"vocab_size": true}', "vocab_size"),
    ],
)
def test_bad_field_names_file_and_field(tmp_path, content, field):
    path = write(tmp_path, content)
    with pytest.raises(BertConfigError, match=rf"{path}: field '{field}'"):
        BertConfig.from_json_file(path)


def test_not_json(tmp_path):
    path = write(tmp_path, "vocab_size = 10\n")
    with pytest.raises(BertConfigError, match=rf"{path}: not valid JSON \(line 1"):
        BertConfig.from_json_file(path)


def test_json_but_not_an_object(tmp_path):
    path = write(tmp_path, "[1, 2]")
    with pytest.raises(BertConfigError, match=rf"{path}: expected a JSON object.*list"):
        BertConfig.from_json_file(path)


def test_not_utf8(tmp_path):
    path = write(tmp_path, b'{"vocab_size": 10, "x": "\xff"}')
    with pytest.raises(BertConfigError, match=rf"{path}: not valid UTF-8"):
        BertConfig.from_json_file(path)


def test_missing_file(tmp_path):
    with pytest.raises(BertConfigError, match="nope.json: config file not found"):
        BertConfig.from_json_file(str(tmp_path / "nope.json"))


def test_activation_is_case_insensitive_like_the_original():
    assert BertConfig(vocab_size=10, hidden_act="GELU").hidden_act == "GELU"
    BertConfig(vocab_size=10, hidden_act="")  # the original treats "" as linear


def test_a_config_key_named_like_a_method_is_kept_not_called():
    config = bert_tf.BertConfig.from_dict({**TINY_CONFIG, "validate": 1, "to_dict": "x"})
    assert config.to_dict()["validate"] == 1 and config.to_dict()["to_dict"] == "x"
    assert bert_tf.BertConfig.from_dict(config.to_dict()) == config
