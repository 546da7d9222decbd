"""TF-Hub-style preprocessor + encoder SavedModels, driven in a fresh process (TensorFlow
and tensorflow-text only) with the calling pattern of TensorFlow's BERT tutorials."""

import json
import subprocess
import sys

import numpy as np
from conftest import fixture_path, run_script

from bert_tf.config import BertConfig
from bert_tf.data.features import encode_text
from bert_tf.data.tokenization import FullTokenizer
from bert_tf.models.modeling import BertModel
from bert_tf.training import checkpoint

TUTORIAL = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the tokenizer ops
preprocessor = tf.saved_model.load(sys.argv[1] + "/preprocessor")
encoder = tf.saved_model.load(sys.argv[1] + "/encoder")
single = preprocessor(tf.constant(["this is such an amazing movie!", "Hello, world"]))
outputs = encoder(single)
tokenized = [preprocessor.tokenize(tf.constant([text])) for text in sys.argv[2:4]]
pair = preprocessor.bert_pack_inputs(tokenized, seq_length=tf.constant(16))
trained = encoder(pair, training=True)["pooled_output"]
served = encoder.signatures["serving_default"](**single)
assert "bert_tf" not in sys.modules
print(json.dumps({
    "single": {k: v.numpy().tolist() for k, v in single.items()},
    "dtypes": sorted(f"{k}:{v.dtype.name}" for k, v in {**single, **outputs}.items()
                     if k != "encoder_outputs"),
    "pooled_output": outputs["pooled_output"].numpy().tolist(),
    "default": outputs["default"].numpy().tolist(),
    "sequence_output": outputs["sequence_output"].numpy().tolist(),
    "layers": len(outputs["encoder_outputs"]),
    "tokenized_rank": tokenized[0].shape.rank,
    "pair": {k: v.numpy().tolist() for k, v in pair.items()},
    "pair_pooled": encoder(pair)["pooled_output"].numpy().tolist(),
    "trained_differs": bool(abs(trained - encoder(pair)["pooled_output"]).numpy().max() > 0),
    "served": sorted(served),
    "variables": [len(encoder.variables), len(encoder.trainable_variables)],
}))
"""


def test_tutorial_pattern_on_the_exported_pair(tmp_path):
    tiny = fixture_path("tiny_ckpt")
    run_script(["export_model.py", "--format=hub", f"--bert_config_file={tiny}/bert_config.json",
                f"--vocab_file={tiny}/vocab.txt", f"--init_checkpoint={tiny}/bert_model.ckpt",
                "--max_seq_length=32", f"--export_dir={tmp_path}/hub"])
    text_a, text_b = "The cat sat on the mat.", "It was very happy there!"
    result = subprocess.run([sys.executable, "-c", TUTORIAL, f"{tmp_path}/hub", text_a, text_b],
                            capture_output=True, text=True, check=True, cwd="/")
    got = json.loads(result.stdout.strip().splitlines()[-1])

    config = BertConfig.from_json_file(str(tiny / "bert_config.json"))
    model = BertModel(config)
    checkpoint.require_complete(checkpoint.load_checkpoint(model, str(tiny / "bert_model.ckpt")))
    tokenizer = FullTokenizer(str(tiny / "vocab.txt"), True)
    single = [encode_text(tokenizer, text, None, 32)
              for text in ("this is such an amazing movie!", "Hello, world")]
    assert got["single"]["input_word_ids"] == [e.input_ids for e in single]
    assert got["single"]["input_mask"] == [e.input_mask for e in single]
    assert got["single"]["input_type_ids"] == [e.segment_ids for e in single]
    assert got["dtypes"] == ["default:float32", "input_mask:int32", "input_type_ids:int32",
                             "input_word_ids:int32", "pooled_output:float32",
                             "sequence_output:float32"]
    want = model({"input_ids": np.array([e.input_ids for e in single]),
                  "input_mask": np.array([e.input_mask for e in single]),
                  "segment_ids": np.array([e.segment_ids for e in single])})
    np.testing.assert_allclose(got["pooled_output"], want["pooled_output"], atol=1e-5)
    np.testing.assert_allclose(got["default"], want["pooled_output"], atol=1e-5)
    np.testing.assert_allclose(got["sequence_output"], want["sequence_output"], atol=1e-5)
    assert got["layers"] == config.num_hidden_layers and got["tokenized_rank"] == 3

    pair = encode_text(tokenizer, text_a, text_b, 16)
    assert got["pair"]["input_word_ids"] == [pair.input_ids]
    assert got["pair"]["input_type_ids"] == [pair.segment_ids]
    want_pair = model({"input_ids": np.array([pair.input_ids]),
                       "input_mask": np.array([pair.input_mask]),
                       "segment_ids": np.array([pair.segment_ids])})
    np.testing.assert_allclose(got["pair_pooled"], want_pair["pooled_output"], atol=1e-5)
    assert got["trained_differs"]  # training=True applies dropout
    assert got["served"] == sorted(["default", "pooled_output", "sequence_output"] + [
        f"encoder_outputs_{i}" for i in range(config.num_hidden_layers)])
    assert got["variables"] == [len(model.variables), len(model.trainable_variables)]
