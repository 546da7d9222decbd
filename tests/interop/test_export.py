"""Serving export: SavedModels with tokenization in the graph, loaded in a fresh process
that imports only TensorFlow and tensorflow-text, against the Python path."""

import json
import subprocess
import sys

import keras
import numpy as np
from conftest import data_path, fixture_path

from bert_tf.data.features import encode_text
from bert_tf.data.tokenization import FullTokenizer
from bert_tf.interop import export
from bert_tf.tasks import glue

SERVE = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the tokenizer ops
model = tf.saved_model.load(sys.argv[1])
request = json.loads(sys.argv[3])
outputs = model.signatures[sys.argv[2]](**{k: tf.constant(v) for k, v in request.items()})
assert "bert_tf" not in sys.modules
print(json.dumps({k: v.numpy().tolist() for k, v in outputs.items()}))
"""


def serve(export_dir, signature: str, request: dict) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", SERVE, str(export_dir), signature, json.dumps(request)],
        capture_output=True, text=True, check=True, cwd="/",
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_exported_classifier_matches_the_python_path(tmp_path):
    tiny = fixture_path("tiny_ckpt")
    checkpoint = str(fixture_path("mrpc", "tiny_mrpc_ckpt") / "model.ckpt")
    module = export.build_module(str(tiny / "bert_config.json"), str(tiny / "vocab.txt"),
                                 checkpoint, max_seq_length=64, bucketed=True)
    assert module.kind == "classifier"
    (tmp_path / "mrpc" / "variables").mkdir(parents=True)
    (tmp_path / "mrpc" / "variables" / "an_earlier_export.index").write_text("old")
    export.export(module, str(tmp_path / "mrpc"))
    # Swapped in as a whole: the earlier export is gone, no staging folder is left.
    assert not (tmp_path / "mrpc" / "variables" / "an_earlier_export.index").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["mrpc"]

    task = glue.get_task("mrpc")
    examples = glue.read_examples(task, str(data_path("glue", "MRPC")), "dev")[:12]
    served = serve(tmp_path / "mrpc", "pair", {"text_a": [e.text_a for e in examples],
                                               "text_b": [e.text_b for e in examples]})
    tokenizer = FullTokenizer(str(tiny / "vocab.txt"), True)
    features = [glue.convert_example(e, task, 64, tokenizer) for e in examples]
    logits = module.model({name: np.array([getattr(f, name) for f in features])
                           for name in ("input_ids", "input_mask", "segment_ids")})
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))
    np.testing.assert_allclose(served["probabilities"], probabilities, atol=1e-5)
    assert served["predictions"] == list(np.argmax(probabilities, -1))


def test_exported_encoder_and_span_model(tmp_path):
    minilm = fixture_path("minilm_ckpt")
    module = export.build_module(str(minilm / "bert_config.json"), str(minilm / "vocab.txt"),
                                 str(minilm / "bert_model.ckpt"), max_seq_length=32,
                                 kind="embeddings", bucketed=True)
    export.export(module, str(tmp_path / "embed"))
    texts = ["Héllo wörld: naïve café!", "BERT reads text in both directions."]
    served = serve(tmp_path / "embed", "serving_default", {"text": texts})
    tokenizer = FullTokenizer(str(minilm / "vocab.txt"), True)
    encoded = [encode_text(tokenizer, t, None, 32) for t in texts]
    python = module.model({"input_ids": np.array([e.input_ids for e in encoded]),
                           "input_mask": np.array([e.input_mask for e in encoded])})
    # Both rows fit the first bucket (16 of 32 positions): the rest is zeros.
    assert served["input_mask"] == [e.input_mask for e in encoded]
    assert max(sum(e.input_mask) for e in encoded) <= 16
    np.testing.assert_allclose(served["pooled_output"], python["pooled_output"], atol=1e-5)
    mask = np.array(served["input_mask"], bool)
    sequence = np.array(served["sequence_output"])
    np.testing.assert_allclose(sequence[mask], np.asarray(python["sequence_output"])[mask],
                               atol=1e-5)
    assert sequence.shape == (2, 32, 384) and not sequence[:, 16:].any()

    tiny = fixture_path("tiny_ckpt")
    squad = export.build_module(str(tiny / "bert_config.json"), str(tiny / "vocab.txt"),
                                str(fixture_path("squad", "tiny_squad_ckpt") / "model.ckpt"),
                                max_seq_length=64, bucketed=True)
    assert squad.kind == "squad"
    export.export(squad, str(tmp_path / "squad"))
    served = serve(tmp_path / "squad", "pair", {
        "text_a": ["In what country is Normandy located?"],
        "text_b": ["The Normans gave their name to Normandy, a region in France."]})
    start, end = served["start"][0], served["end"][0]
    ids = served["input_ids"][0]
    first_context = ids.index(tokenizer_sep(tiny)) + 1
    assert first_context <= start <= end < first_context + 30


def tokenizer_sep(vocab_dir) -> int:
    return FullTokenizer(str(vocab_dir / "vocab.txt"), True).vocab["[SEP]"]
