"""The end-to-end demo on shipped data: `python -m bert_tf.demo --output_dir=out/demo`.

Builds a tiny BERT, writes it as a Google-layout checkpoint (`bert_config.json`,
`vocab.txt`, `bert_model.ckpt.*`), reads it back into a fresh model, tokenizes text with
the exact and the fast tokenizer, encodes sentence pairs and runs the model eagerly and
compiled with XLA, then makes pretraining records from a shipped corpus exactly as the
original `create_pretraining_data.py` would, pretrains on them with the training driver
(`run_pretraining.py`'s job, checkpoints `model.ckpt-N` in the original layout), and
fine-tunes a sentence-pair classifier (`run_classifier.py`'s job) on a small MRPC-format
task it makes from the same corpus, and a tagger (`run_ner.py`'s job) on a small
CoNLL-style task made from it too. Every stage checks its result and the run fails loudly
if one is off.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf
from absl import app, flags

import bert_tf
from bert_tf.data import pretraining_data
from bert_tf.data.features import encode_text
from bert_tf.data.tokenization import FullTokenizer
from bert_tf.jobs import run_classifier, run_ner, run_pretraining
from bert_tf.text.fast_tokenization import FastTokenizer
from bert_tf.training.input_pipeline import pretraining_dataset

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
    config, pretrainer, names = write_tiny_checkpoint(output_dir, vocab_file)
    reloaded = read_it_back(output_dir, names)
    exact = compare_tokenizers(vocab_file)
    run_the_model(exact, pretrainer, reloaded)
    record_file, max_predictions, loss = make_pretraining_records(output_dir, exact, config,
                                                                  reloaded)
    pretrain_dir = pretrain(output_dir, record_file, max_predictions, loss)
    fine_tune(output_dir, vocab_file, pretrain_dir)
    tag_noun_phrases(output_dir, vocab_file, pretrain_dir)
    print(f"Demo finished; checkpoints, config, vocab, records and results are in "
          f"{os.path.abspath(output_dir)}")


def write_tiny_checkpoint(output_dir: Path, vocab_file: str):
    """Step 1: -> (config, model, {variable name: shape} of its checkpoint)."""
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

    return config, pretrainer, names


def read_it_back(output_dir: Path, names: dict) -> bert_tf.BertPretrainer:
    """Step 2: a fresh model from the config and checkpoint files."""
    print("2. Read it back into a fresh model")
    reloaded = bert_tf.BertPretrainer(bert_tf.BertConfig.from_json_file(
        str(output_dir / "bert_config.json")))
    report = bert_tf.checkpoint.load_checkpoint(reloaded, str(output_dir))
    check(len(report.loaded) == len(names) and not report.missing, "every variable loaded")

    return reloaded


def compare_tokenizers(vocab_file: str) -> FullTokenizer:
    """Step 3: the exact and fast tokenizers give the same ids."""
    print("3. Tokenize: exact (original rules) and fast (tensorflow-text) paths")
    exact, fast = FullTokenizer(vocab_file, True), FastTokenizer(vocab_file, True)
    texts = [t for pair in PAIRS for t in pair if t]
    fast_ids = fast.tokenize(texts).to_list()
    for text, ids in zip(texts, fast_ids, strict=True):
        tokens = exact.tokenize(text)
        print(f"  {text!r} -> {tokens}")
        check(exact.convert_tokens_to_ids(tokens) == ids, "fast ids equal exact ids")

    return exact


def run_the_model(exact: FullTokenizer, pretrainer, reloaded) -> None:
    """Step 4: eager, reloaded and XLA-compiled outputs agree."""
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
    for key in ("masked_lm_log_probs", "next_sentence_log_probs"):
        print(f"  {key}: shape {tuple(eager[key].shape)}")
    check(np.array_equal(eager["masked_lm_log_probs"], again["masked_lm_log_probs"]),
          "reloaded model gives identical outputs")
    diff = float(np.abs(np.asarray(compiled["masked_lm_log_probs"])
                        - eager["masked_lm_log_probs"]).max())
    check(diff < 1e-4, f"XLA-compiled forward agrees with eager (max diff {diff:.1e})")


def make_pretraining_records(output_dir: Path, exact: FullTokenizer, config, reloaded):
    """Step 5: -> (record file, max predictions per sequence, untrained masked-LM loss)."""
    print("5. Pretraining records from the shipped corpus (create_pretraining_data.py rules)")
    documents, _ = pretraining_data.read_documents([str(DEMO_DATA / "corpus.txt")], exact)
    max_predictions = 5
    instances = pretraining_data.create_training_instances(
        documents, list(exact.vocab.keys()), pretraining_data.InstanceOptions(
            max_seq_length=FLAGS.max_seq_length, max_predictions_per_seq=max_predictions,
            dupe_factor=3),
        random.Random(12345),
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
    return record_file, max_predictions, loss


def pretrain(output_dir: Path, record_file: str, max_predictions: int, loss: float) -> Path:
    """Step 6: run_pretraining.py's job; -> its output folder."""
    print("6. Pretrain on those records (run_pretraining.py's job)")
    pretrain_dir = output_dir / "pretraining"
    shutil.rmtree(pretrain_dir, ignore_errors=True)
    results = run_pretraining.run(run_pretraining.PretrainingOptions(
        bert_config_file=str(output_dir / "bert_config.json"), input_file=record_file,
        output_dir=str(pretrain_dir), init_checkpoint=str(output_dir / "bert_model.ckpt"),
        max_seq_length=FLAGS.max_seq_length, max_predictions_per_seq=max_predictions,
        do_train=True, do_eval=True, train_batch_size=8, eval_batch_size=8,
        learning_rate=2e-3, num_train_steps=40, num_warmup_steps=4,
        save_checkpoints_steps=20, iterations_per_loop=10, max_eval_steps=4, seed=1,
    ), tf.distribute.get_strategy())
    print(f"  {pretrain_dir / 'eval_results.txt'}:")
    for key in sorted(results):
        print(f"    {key} = {results[key]}")
    check((pretrain_dir / "model.ckpt-40.index").exists(), "checkpoint model.ckpt-40 written")
    check(results["masked_lm_loss"] < loss - 2.0,
          f"masked-LM loss fell from {loss:.2f} to {results['masked_lm_loss']:.2f}")

    return pretrain_dir


def fine_tune(output_dir: Path, vocab_file: str, pretrain_dir: Path) -> None:
    """Step 7: run_classifier.py's job on a pair task made from the corpus."""
    print("7. Fine-tune a sentence-pair classifier (run_classifier.py's job)")
    glue_dir = output_dir / "pair_task"
    counts = write_pair_task(DEMO_DATA / "corpus.txt", glue_dir)
    print(f"  MRPC-format task in {glue_dir}: {counts} (label 1: the second sentence follows "
          f"the first)")
    classifier_dir = output_dir / "classifier"
    shutil.rmtree(classifier_dir, ignore_errors=True)
    outcome = run_classifier.run(run_classifier.ClassifierOptions(
        data_dir=str(glue_dir), bert_config_file=str(output_dir / "bert_config.json"),
        task_name="MRPC", vocab_file=vocab_file, output_dir=str(classifier_dir),
        init_checkpoint=str(pretrain_dir / "model.ckpt-40"), max_seq_length=FLAGS.max_seq_length,
        do_train=True, do_eval=True, do_predict=True, train_batch_size=8,
        learning_rate=1e-3, num_train_epochs=8.0, seed=1,
    ), tf.distribute.get_strategy())
    for key in sorted(outcome["eval"]):
        print(f"    {key} = {outcome['eval'][key]}")
    predictions = (classifier_dir / "test_results.tsv").read_text().splitlines()
    check(len(predictions) == counts["test"], f"{len(predictions)} lines of class probabilities "
          f"in test_results.tsv")
    check(outcome["eval"]["eval_loss"] < np.log(2) + 0.1, "dev loss is not worse than chance")


def tag_noun_phrases(output_dir: Path, vocab_file: str, pretrain_dir: Path) -> None:
    """Step 8: run_ner.py's job on a CoNLL-style task made from the corpus."""
    print("8. Tag definite noun phrases, NER style (run_ner.py's job)")
    task_dir = output_dir / "ner_task"
    counts = write_ner_task(DEMO_DATA / "corpus.txt", task_dir)
    print(f"  CoNLL-style task in {task_dir}: {counts} sentences ('the' + the next word is "
          f"an entity: B-NP I-NP)")
    ner_dir = output_dir / "ner"
    shutil.rmtree(ner_dir, ignore_errors=True)
    outcome = run_ner.run(run_ner.NerOptions(
        data_dir=str(task_dir), bert_config_file=str(output_dir / "bert_config.json"),
        vocab_file=vocab_file, output_dir=str(ner_dir),
        init_checkpoint=str(pretrain_dir / "model.ckpt-40"), max_seq_length=FLAGS.max_seq_length,
        doc_stride=16, do_train=True, do_eval=True, train_batch_size=8, learning_rate=3e-3,
        num_train_epochs=60.0, seed=1,
    ), tf.distribute.get_strategy())
    for key in ("eval_f1", "eval_precision", "eval_recall", "eval_accuracy"):
        print(f"    {key} = {outcome['eval'][key]}")
    check((ner_dir / "dev_predictions.txt").exists(), "dev_predictions.txt written "
          "(score it with python -m bert_tf.tasks.ner_eval)")
    # Five held-out sentences, eight entities: a small, noisy score (0.57 here); tagging
    # everything O scores 0.
    check(outcome["eval"]["eval_f1"] > 0.25, "entity F1 well above 0 on held-out sentences")


def write_ner_task(corpus: Path, directory: Path) -> dict[str, int]:
    """CoNLL-style NER files (`word tag` lines) from a one-sentence-per-line corpus: every
    `the` and the word after it form an entity (B-NP I-NP), the rest is O; a quarter of
    the sentences are held out for dev (and test)."""
    sentences = [re.findall(r"\w+|[^\w\s]", line)
                 for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(7).shuffle(sentences)
    blocks = []
    for words in sentences:
        tags = ["O"] * len(words)
        for index, word in enumerate(words[:-1]):
            if word.lower() == "the" and words[index + 1].isalpha():
                tags[index], tags[index + 1] = "B-NP", "I-NP"
        blocks.append("".join(f"{w} {t}\n" for w, t in zip(words, tags, strict=True)))
    held_out = len(blocks) // 4
    splits = {"train": blocks[held_out:], "dev": blocks[:held_out], "test": blocks[:held_out]}
    directory.mkdir(parents=True, exist_ok=True)
    for name, split in splits.items():
        (directory / f"{name}.txt").write_text("\n".join(split), encoding="utf-8")
    return {name: len(split) for name, split in splits.items()}


def write_pair_task(corpus: Path, directory: Path) -> dict[str, int]:
    """An MRPC-format task from a one-sentence-per-line corpus: (sentence, next sentence)
    pairs labelled 1 and (sentence, a sentence from elsewhere) pairs labelled 0."""
    lines = [line.strip() for line in corpus.read_text(encoding="utf-8").splitlines()]
    sentences = [line for line in lines if line]
    rng = random.Random(7)
    rows = []
    for index in range(len(sentences) - 1):
        rows.append(("1", sentences[index], sentences[index + 1]))
        other = rng.choice([s for s in sentences if s not in sentences[index:index + 2]])
        rows.append(("0", sentences[index], other))
    rng.shuffle(rows)
    splits = {"train": rows[: len(rows) * 3 // 4], "dev": rows[len(rows) * 3 // 4:]}
    splits["test"] = splits["dev"]
    directory.mkdir(parents=True, exist_ok=True)
    header = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    for name, split in splits.items():
        body = "".join(
            f"{label if name != 'test' else i}\t{i}\t{i}\t{a}\t{b}\n"
            for i, (label, a, b) in enumerate(split)
        )
        (directory / f"{name}.tsv").write_text(
            (header if name != "test" else "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n")
            + body, encoding="utf-8")
    return {name: len(split) for name, split in splits.items()}


if __name__ == "__main__":
    app.run(main)
