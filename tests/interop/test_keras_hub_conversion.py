"""keras-hub BertBackbone presets <-> Google's layout: exact tensors both ways, and the two
implementations' outputs side by side."""

import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub", reason="keras-hub (the test extra) not installed")

from bert_tf.config import BertConfig  # noqa: E402
from bert_tf.interop import keras_hub_conversion  # noqa: E402
from bert_tf.models.modeling import BertModel  # noqa: E402
from bert_tf.training import checkpoint  # noqa: E402

VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"word{i}" for i in range(94)]


def random_preset(folder) -> keras_hub.models.BertBackbone:
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(VOCABULARY), num_layers=2, num_heads=2, hidden_dim=32,
        intermediate_dim=37, max_sequence_length=64)
    rng = np.random.default_rng(0)
    for variable in backbone.weights:  # not the initializers' zeros and ones
        variable.assign(rng.normal(0, 0.2, variable.shape).astype("float32"))
    backbone.save_to_preset(str(folder))
    keras_hub.models.BertTokenizer(vocabulary=VOCABULARY).save_to_preset(str(folder))
    return backbone


def test_preset_to_google_and_back_is_exact_and_computes_the_same(tmp_path):
    backbone = random_preset(tmp_path / "preset")
    prefix = keras_hub_conversion.keras_hub_to_google(str(tmp_path / "preset"),
                                                      str(tmp_path / "google"))
    assert (tmp_path / "google" / "vocab.txt").read_text().split("\n")[:-1] == VOCABULARY
    config = BertConfig.from_json_file(str(tmp_path / "google" / "bert_config.json"))
    assert (config.hidden_size, config.num_hidden_layers, config.type_vocab_size) == (32, 2, 2)
    model = BertModel(config)
    checkpoint.require_complete(checkpoint.load_checkpoint(model, prefix))

    rng = np.random.default_rng(1)
    ids = rng.integers(0, len(VOCABULARY), (3, 12)).astype("int32")
    mask = np.ones((3, 12), "int32")
    mask[0, 7:] = 0
    segments = np.zeros((3, 12), "int32")
    segments[:, 6:] = 1
    theirs = backbone({"token_ids": ids, "segment_ids": segments, "padding_mask": mask})
    ours = model({"input_ids": ids, "input_mask": mask, "segment_ids": segments})
    real = mask.astype(bool)  # keras-hub leaves padded positions' outputs unspecified too
    for name in ("sequence_output", "pooled_output"):
        want, got = np.asarray(theirs[name]), np.asarray(ours[name])
        if name == "sequence_output":
            want, got = want[real], got[real]
        np.testing.assert_allclose(got, want, atol=2e-5, err_msg=name)

    keras_hub_conversion.google_to_keras_hub(str(tmp_path / "google"), str(tmp_path / "again"))
    again = keras_hub.models.BertBackbone.from_preset(str(tmp_path / "again"))
    for before, after in zip(backbone.weights, again.weights, strict=True):
        assert before.path == after.path
        np.testing.assert_array_equal(np.asarray(before), np.asarray(after))
    tokenizer = keras_hub.models.BertTokenizer.from_preset(str(tmp_path / "again"))
    assert tokenizer.get_vocabulary() == VOCABULARY


def test_a_config_keras_hub_cannot_hold_is_refused(tmp_path, tiny_config):
    relu = BertConfig.from_dict({**tiny_config.to_dict(), "hidden_act": "relu"})
    with pytest.raises(keras_hub_conversion.ConversionError, match="hidden_act 'relu'"):
        keras_hub_conversion.backbone_arguments(relu, "bert_config.json")
