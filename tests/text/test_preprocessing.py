"""BertPreprocessor: strings in a Keras model give the ids FullTokenizer + encode_text give,
`fit` on strings trains as `fit` on those ids, and a `.keras` file predicts from strings."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import data_path, fixture_path

import bert_tf
from bert_tf.data.features import encode_text
from bert_tf.data.tokenization import FullTokenizer
from bert_tf.models.heads import BertClassifier
from bert_tf.tasks import glue
from bert_tf.text.preprocessing import INPUT_NAMES, BertPreprocessor


def reference(tokenizer, texts_a, texts_b, seq_length) -> dict[str, np.ndarray]:
    encoded = [encode_text(tokenizer, a, b, seq_length)
               for a, b in zip(texts_a, texts_b or [None] * len(texts_a), strict=True)]
    return {name: np.array([getattr(e, name) for e in encoded], np.int32)
            for name in INPUT_NAMES}


@pytest.mark.parametrize("seq_length", [12, 48])
def test_ids_equal_the_original_layout_on_real_pairs_and_edge_cases(seq_length):
    vocab = str(fixture_path("minilm_ckpt", "vocab.txt"))
    tokenizer = FullTokenizer(vocab, True)
    examples = glue.read_examples(glue.get_task("mrpc"), str(data_path("glue", "MRPC")),
                                  "dev")[:64]
    texts_a = [e.text_a for e in examples] + ["tie tie", "a", "", "Hello", "x " * 40]
    texts_b = [e.text_b for e in examples] + ["tie tie", "b " * 30, "only b", "", "\u200b"]
    layer = BertPreprocessor(vocab, seq_length)
    pairs = {k: np.asarray(v) for k, v in layer((np.array(texts_a), np.array(texts_b))).items()}
    expected = reference(tokenizer, texts_a, texts_b, seq_length)
    for name in INPUT_NAMES:
        np.testing.assert_array_equal(pairs[name], expected[name], name)
    singles = {k: np.asarray(v) for k, v in layer(np.array(texts_a)).items()}
    expected = reference(tokenizer, texts_a, None, seq_length)
    for name in INPUT_NAMES:
        np.testing.assert_array_equal(singles[name], expected[name], name)


def test_fit_on_strings_trains_as_fit_on_ids_and_a_keras_file_predicts_from_strings(tmp_path):
    tiny = fixture_path("tiny_ckpt")
    vocab = str(tiny / "vocab.txt")
    config = bert_tf.BertConfig.from_json_file(str(tiny / "bert_config_nodropout.json"))
    examples = glue.read_examples(glue.get_task("sst-2"), str(data_path("glue", "SST-2")),
                                  "dev")[:32]
    # Keras' data adapters take strings as an object array or a tf.string tensor (not a
    # Python list, which Keras reads as several inputs, nor numpy's fixed-width '<U' dtype).
    texts = np.array([e.text_a for e in examples], dtype=object)
    labels = np.array([int(e.label) for e in examples])
    keras.utils.set_random_seed(1)
    classifier = BertClassifier(config, 2)  # one model, so both fits draw the same dropout
    text = keras.Input(shape=(), dtype="string")
    on_strings = keras.Model(text, classifier(BertPreprocessor(vocab, 32)(text)))
    initial = [variable.numpy() for variable in classifier.variables]  # seed states too
    ids = reference(FullTokenizer(vocab, True), list(texts), None, 32)

    def fit(model, inputs):
        for variable, value in zip(classifier.variables, initial, strict=True):
            variable.assign(value)
        model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False,
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model.fit(inputs, labels, batch_size=8, epochs=2, shuffle=False,
                         verbose=0).history["loss"]

    from_strings, from_ids = fit(on_strings, texts), fit(classifier, ids)
    np.testing.assert_allclose(from_strings, from_ids, rtol=0, atol=1e-6)
    assert from_strings[-1] < from_strings[0]
    # A .keras file holds the vocabulary and predicts from strings after load_model.
    expected = on_strings.predict(texts[:5], verbose=0)
    on_strings.save(tmp_path / "sst2.keras")
    loaded = keras.models.load_model(tmp_path / "sst2.keras")
    np.testing.assert_allclose(loaded.predict(texts[:5], verbose=0), expected, atol=1e-6)
    np.testing.assert_allclose(loaded.predict(tf.constant(list(texts[:1])), verbose=0),
                               expected[:1], atol=1e-6)
