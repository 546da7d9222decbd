"""run_ner.py's job: fine-tune, evaluate and predict named-entity recognition.

Reads `train.txt`, `dev.txt` and `test.txt` from `data_dir` (CoNLL-style, tasks/ner.py).
Writes, beside the checkpoints: `label_list.txt` (the labels, one per line, from the
training file; evaluation and prediction reuse it), `train.tf_record` / `eval.tf_record` /
`predict.tf_record`, `eval_results.txt` (conlleval's precision, recall and F1 as fractions,
overall and per type, token accuracy, eval_loss, global_step), and `dev_predictions.txt` /
`test_predictions.txt` (`word gold predicted`, which `python -m bert_tf.tasks.ner_eval`
scores with conlleval's report).
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf
from absl import logging

from bert_tf import file_io
from bert_tf.data.tokenization import FullTokenizer
from bert_tf.errors import UsageError
from bert_tf.jobs import stages
from bert_tf.models.heads import BertTokenClassifier
from bert_tf.models.objectives import TokenClassificationObjective
from bert_tf.options import FineTuningOptions, option
from bert_tf.tasks import ner, ner_eval
from bert_tf.training.input_pipeline import ner_features


@dataclasses.dataclass(kw_only=True)
class NerOptions(FineTuningOptions):
    """The flags of run_ner.py: run_classifier.py's, and the windows' stride and context."""

    data_dir: str = option(help="The input data dir, with train.txt, dev.txt and test.txt.",
                           required=True)
    do_eval: bool = option(False, "Whether to run eval on the dev set.")
    do_predict: bool = option(False, "Whether to run the model on the test set.")
    eval_batch_size: int = option(8, "Total batch size for eval.")
    doc_stride: int = option(64, "A sentence longer than max_seq_length - 2 word pieces is "
                                 "cut into windows this many pieces apart (overlapping "
                                 "when smaller than that).")
    document_context: bool = option(False, "Fill each window with the neighbouring sentences "
                                           "of the same document (labels only on its own).")


def run(options: NerOptions, strategy: tf.distribute.Strategy) -> dict:
    """Runs the requested stages; returns {"eval": results, "predict": path} as done."""
    config = stages.prepare(options, strategy, ["do_train", "do_eval", "do_predict"],
                            ["train_batch_size", "eval_batch_size", "predict_batch_size"])
    if options.doc_stride < 1:
        raise UsageError(f"doc_stride must be at least 1, found {options.doc_stride}")
    window = options.max_seq_length - 2  # the pieces of a window, between [CLS] and [SEP]
    if options.doc_stride >= window:
        logging.warning("doc_stride=%d is not below the window of max_seq_length - 2 = %d "
                        "pieces: the windows of a long sentence will not overlap",
                        options.doc_stride, window)
    tokenizer = stages.load_tokenizer(options, config)
    train = read(options, "train") if options.do_train else []
    labels = label_list(options, train)
    train_file = os.path.join(options.output_dir, "train.tf_record")
    train_windows = 0
    if options.do_train:
        train_windows = len(ner.write_features(
            ner.convert_sentences(train, tokenizer, labels, options.max_seq_length,
                                  options.doc_stride, document_context=options.document_context),
            train_file, options.max_seq_length))
    num_train_steps = int(train_windows / options.train_batch_size * options.num_train_epochs)
    model, optimizer = stages.build(
        options, strategy, lambda dtype: BertTokenClassifier(config, len(labels), dtype=dtype),
        num_train_steps, int(num_train_steps * options.warmup_proportion),
    )
    global_step = stages.train_or_restore(
        options, strategy, model, optimizer, objective=TokenClassificationObjective(),
        dataset_fn=stages.record_batches(options, train_file, ner_features(
            options.max_seq_length), options.train_batch_size, True),
        num_train_steps=num_train_steps,
    )
    result: dict = {}
    if options.do_eval:
        counts = predict(options, strategy, model, tokenizer, labels, split="dev",
                         batch_size=options.eval_batch_size)
        result["eval"] = stages.report(strategy, options.output_dir,
                                       {**eval_results(counts), "global_step": global_step})
    if options.do_predict:
        predict(options, strategy, model, tokenizer, labels, split="test",
                batch_size=options.predict_batch_size)
        result["predict"] = os.path.join(options.output_dir, "test_predictions.txt")
    return result


def read(options: NerOptions, split: str) -> list[ner.Sentence]:
    """The sentences of `<data_dir>/<split>.txt`."""
    return ner.read_sentences(os.path.join(options.data_dir, f"{split}.txt"))


def label_list(options: NerOptions, train: list[ner.Sentence]) -> list[str]:
    """Training: the training file's labels, written to output_dir/label_list.txt; else
    that file's labels (the model's)."""
    path = os.path.join(options.output_dir, ner.LABEL_FILE)
    if options.do_train:
        labels = ner.label_list(train)
        ner.write_label_list(labels, path)
        return labels
    try:
        return ner.read_label_list(path)
    except FileNotFoundError:
        raise UsageError(f"output_dir: {path} is missing: it holds the labels of the model "
                         f"that was trained there; train first (--do_train)") from None


def predict(options: NerOptions, strategy: tf.distribute.Strategy, model: BertTokenClassifier,
            tokenizer: FullTokenizer, labels: list[str], *, split: str,
            batch_size: int) -> dict:
    """Predicts a split's words; writes `<dev|test>_predictions.txt` on the chief; returns
    {"conlleval": its counts, "loss": the mean loss over labelled pieces}."""
    sentences = read(options, split)
    path = os.path.join(options.data_dir, f"{split}.txt")
    ner.check_labels(sentences, labels, path)
    record_file = os.path.join(options.output_dir,
                               "eval.tf_record" if split == "dev" else "predict.tf_record")
    features = ner.write_features(
        ner.convert_sentences(sentences, tokenizer, labels, options.max_seq_length,
                              options.doc_stride, document_context=options.document_context),
        record_file, options.max_seq_length, pad_to_multiple=batch_size)
    logging.info("%s: %d sentences in %d windows", split, len(sentences), len(features))
    outputs = stages.predict(
        strategy, model, TokenClassificationObjective().predict,
        stages.record_batches(options, record_file, ner_features(options.max_seq_length),
                              batch_size, False), options)
    predicted = ner.word_predictions(sentences, features, outputs["predictions"], labels)
    lines = ner.prediction_lines(sentences, predicted)
    if strategy.extended.should_checkpoint:
        file_io.write_atomically(os.path.join(options.output_dir, f"{split}_predictions.txt"),
                                 "".join(lines))
    weights = outputs["label_weights"].astype(bool)
    counts = ner_eval.count(ner_eval.read_rows(lines))
    return {"conlleval": counts, "loss": float(outputs["per_token_loss"][weights].mean())}


def eval_results(counts: dict) -> dict:
    """eval_results.txt values: conlleval's overall and per-type precision, recall and F1
    (fractions), its token accuracy, and the mean loss over labelled pieces."""
    conlleval = counts["conlleval"]
    results = {"eval_loss": counts["loss"],
               "eval_accuracy": conlleval.correct_tags / max(conlleval.tokens, 1)}
    for kind in [None, *conlleval.types]:
        suffix = "" if kind is None else f"_{kind}"
        precision, recall, f1 = (value / 100 for value in conlleval.scores(kind))
        results.update({f"eval_precision{suffix}": precision, f"eval_recall{suffix}": recall,
                        f"eval_f1{suffix}": f1})
    return results
