"""The end-to-end demo on shipped data: `python -m bert_tf.demo --output_dir=out/demo`.

Builds a tiny BERT, writes it as a Google-layout checkpoint (`bert_config.json`,
`vocab.txt`, `bert_model.ckpt.*`), reads it back into a fresh model, tokenizes text with
the exact and the fast tokenizer, encodes sentence pairs and runs the model eagerly and
compiled with XLA, then makes pretraining records from a shipped corpus exactly as the
original `create_pretraining_data.py` would and feeds them to the model. Every stage checks
its result and the run fails loudly if one is off.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf
from absl import app, flags

import bert_tf
from bert_tf import pretraining_data
from bert_tf.features import encode_text
from bert_tf.input_pipeline import pretraining_dataset
from bert_tf.tokenization import FastTokenizer, FullTokenizer

DEMO_DATA = Path(__file__).parent / "demo_data"
PAIRS = [
    ("The quick brown fox jumps over the lazy dog.", "A dog sleeps in the sun."),
    ("BERT reads text in both directions at once.", None),
    ("Héllo wörld: naïve café façade!", "Ünïcödé is lower-cased and accents are stripped."),
]

flags.DEFINE_string("output_dir", "out/demo", "Where the demo writes its checkpoint.")
flags.DEFINE_integer("max_seq_length", 32, "Sequence length of the encoded examples.")
FLAGS = flags.FLAGS


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"demo failed: {message}")
    print(f"  ok: {message}")


def main(_):
    tf.keras.utils.set_random_seed(12345)
    output_dir = Path(FLAGS.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    vocab_file = str(output_dir / "vocab.txt")
    shutil.copyfile(DEMO_DATA / "vocab.txt", vocab_file)

    print("1. A tiny BERT in Google's checkpoint layout")
    config = bert_tf.BertConfig(
        vocab_size=len(bert_tf.tokenization.load_vocab(vocab_file)), hidden_size=64,
        num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
        max_position_embeddings=128, type_vocab_size=2,
    )
    config.to_json_file(str(output_dir / "bert_config.json"))
    pretrainer = bert_tf.BertPretrainer(config)
    prefix = bert_tf.checkpoint.save_checkpoint(pretrainer, str(output_dir / "bert_model.ckpt"))
    names = bert_tf.checkpoint.list_variables(prefix)
    print(f"  wrote {prefix} with {len(names)} variables, e.g.")
    for name in sorted(names)[:3]:
        print(f"    {name} {names[name]}")

    print("2. Read it back into a fresh model")
    reloaded = bert_tf.BertPretrainer(bert_tf.BertConfig.from_json_file(
        str(output_dir / "bert_config.json")))
    report = bert_tf.checkpoint.load_checkpoint(reloaded, str(output_dir))
    check(len(report.loaded) == len(names) and not report.missing, "every variable loaded")

    print("3. Tokenize: exact (original rules) and fast (tensorflow-text) paths")
    exact, fast = FullTokenizer(vocab_file, True), FastTokenizer(vocab_file, True)
    texts = [t for pair in PAIRS for t in pair if t]
    fast_ids = fast.tokenize(texts).to_list()
    for text, ids in zip(texts, fast_ids, strict=True):
        tokens = exact.tokenize(text)
        print(f"  {text!r} -> {tokens}")
        check(exact.convert_tokens_to_ids(tokens) == ids, "fast ids equal exact ids")

    print("4. Encode pairs as [CLS] a [SEP] b [SEP] and run the model")
    encoded = [encode_text(exact, a, b, FLAGS.max_seq_length) for a, b in PAIRS]
    inputs = {
        "input_ids": np.array([e.input_ids for e in encoded]),
        "input_mask": np.array([e.input_mask for e in encoded]),
        "segment_ids": np.array([e.segment_ids for e in encoded]),
        "masked_lm_positions": np.array([[1, 2, 3]] * len(encoded)),
    }
    eager = pretrainer(inputs)
    again = reloaded(inputs)
    compiled = tf.function(lambda x: reloaded(x), jit_compile=True)(inputs)
    for key in ("sequence_output", "pooled_output", "masked_lm_log_probs",
                "next_sentence_log_probs"):
        print(f"  {key}: shape {tuple(eager[key].shape)}")
    check(np.array_equal(eager["sequence_output"], again["sequence_output"]),
          "reloaded model gives identical outputs")
    diff = float(np.abs(np.asarray(compiled["sequence_output"]) - eager["sequence_output"]).max())
    check(diff < 1e-4, f"XLA-compiled forward agrees with eager (max diff {diff:.1e})")

    print("5. Pretraining records from the shipped corpus (create_pretraining_data.py rules)")
    documents, _ = pretraining_data.read_documents([str(DEMO_DATA / "corpus.txt")], exact)
    max_predictions = 5
    instances = pretraining_data.create_training_instances(
        documents, list(exact.vocab.keys()), FLAGS.max_seq_length, 3, 0.1, 0.15,
        max_predictions, random.Random(12345),
    )
    record_file = str(output_dir / "pretraining.tfrecord")
    counts = pretraining_data.write_instances(
        instances, exact, FLAGS.max_seq_length, max_predictions, [record_file]
    )
    print(f"  {len(documents)} documents -> {counts[0]} instances in {record_file}")
    first = instances[0]
    print(f"  e.g. {' '.join(first.tokens)}")
    print(f"       masked {first.masked_lm_labels} at {first.masked_lm_positions}, "
          f"random next: {first.is_random_next}")
    batch = next(iter(pretraining_dataset(record_file, 4, FLAGS.max_seq_length,
                                          max_predictions, is_training=True, seed=1)))
    out = reloaded(batch)
    picked = tf.gather(out["masked_lm_log_probs"], batch["masked_lm_ids"], batch_dims=2)
    weights = batch["masked_lm_weights"]
    loss = float(-tf.reduce_sum(picked * weights) / tf.reduce_sum(weights))
    check(abs(loss - np.log(config.vocab_size)) < 1.0,
          f"untrained masked-LM loss {loss:.2f} is near log(vocab) {np.log(config.vocab_size):.2f}")
    print(f"Demo finished; checkpoint, config, vocab and records are in "
          f"{os.path.abspath(output_dir)}")


if __name__ == "__main__":
    app.run(main)
