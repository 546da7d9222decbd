"""extract_features.py: the original's JSON structure and layer values."""

import json

import numpy as np
import pytest
import tensorflow as tf
from conftest import fixture_path

import bert_tf
from bert_tf.data.tokenization import FullTokenizer
from bert_tf.jobs import extract_features


def test_extract_features_writes_the_original_structure(tmp_path):
    minilm = fixture_path("minilm_ckpt")
    source = tmp_path / "input.txt"
    source.write_text("Who was Jim Henson ? ||| Jim Henson was a puppeteer\nHello world.\n")
    options = extract_features.ExtractOptions(
        input_file=str(source), output_file=str(tmp_path / "out.jsonl"),
        bert_config_file=str(minilm / "bert_config.json"),
        init_checkpoint=str(minilm / "bert_model.ckpt"), vocab_file=str(minilm / "vocab.txt"),
        layers="-1,0", batch_size=4,
    )
    assert extract_features.run(options, tf.distribute.get_strategy()) == 2
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [line["linex_index"] for line in lines] == [0, 1]
    assert [f["token"] for f in lines[1]["features"]] == ["[CLS]", "hello", "world", ".", "[SEP]"]
    first = lines[0]["features"][0]
    assert list(first) == ["token", "layers"] and [x["index"] for x in first["layers"]] == [-1, 0]
    # The values are the model's, rounded to 6 decimals.
    config = bert_tf.BertConfig.from_json_file(str(minilm / "bert_config.json"))
    model = bert_tf.BertModel(config)
    bert_tf.checkpoint.load_checkpoint(model, str(minilm / "bert_model.ckpt"))
    ids = FullTokenizer(str(minilm / "vocab.txt"), True).convert_tokens_to_ids(
        [f["token"] for f in lines[1]["features"]])
    outputs = model({"input_ids": np.array([ids + [0] * 123]),
                     "input_mask": np.array([[1] * 5 + [0] * 123])})
    np.testing.assert_allclose(
        [f["layers"][0]["values"] for f in lines[1]["features"]],
        np.asarray(outputs["sequence_output"])[0, :5], atol=2e-5,
    )
    with pytest.raises(ValueError, match="layers: 6 is out of range for a model with 6 layers"):
        extract_features.parse_layers("6", 6)


def test_extract_features_values_equal_the_original_layers():
    """The fixture's 8 inputs (masks applied) through extract's JSON path: every printed
    value equals the original's all_encoder_layers to the hidden-state tolerance."""
    from bert_tf.data.features import EncodedInput

    minilm = fixture_path("minilm_ckpt")
    reference = np.load(fixture_path("reference_public.npz"))
    config = bert_tf.BertConfig.from_json_file(str(minilm / "bert_config.json"))
    model = bert_tf.BertModel(config)
    bert_tf.checkpoint.load_checkpoint(model, str(minilm / "bert_model.ckpt"))
    inverse = {i: t for t, i in FullTokenizer(str(minilm / "vocab.txt"), True).vocab.items()}
    encoded = []
    for ids, mask, segments in zip(reference["input_ids"], reference["input_mask"],
                                   reference["segment_ids"], strict=True):
        tokens = [inverse[int(i)] for i, m in zip(ids, mask, strict=True) if m]
        encoded.append(EncodedInput(tokens, list(ids), list(mask), list(segments)))
    layers = [-1, -2, 0]
    lines = [json.loads(line) for line in extract_features.json_lines(
        tf.distribute.get_strategy(), model, encoded, layers, batch_size=4)]
    assert [line["linex_index"] for line in lines] == list(range(8))
    worst = 0.0
    for example, line in enumerate(lines):
        for position, feature in enumerate(line["features"]):
            for entry in feature["layers"]:
                expected = reference["all_encoder_layers"][entry["index"], example, position]
                worst = max(worst, float(np.abs(np.array(entry["values"]) - expected).max()))
    assert worst < 1e-4, worst
