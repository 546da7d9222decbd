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
from bert_tf.config import BertConfig
from bert_tf.data.tokenization import FullTokenizer
from bert_tf.errors import UsageError
from bert_tf.jobs import fine_tuning
from bert_tf.models.heads import BertTokenClassifier
from bert_tf.models.objectives import TokenClassificationObjective
from bert_tf.options import FineTuningOptions, option
from bert_tf.tasks import ner, ner_eval


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
    """Runs the requested stages (jobs/fine_tuning.py); returns {"eval": results,
    "predict": path} as done."""
    return fine_tuning.run(options, strategy, NerTask)


class NerTask:
    """CoNLL-style named-entity recognition for the driver: windows of word pieces, a label
    on each word's first piece."""

    stages = ("do_train", "do_eval", "do_predict")
    batch_flags = ("train_batch_size", "eval_batch_size", "predict_batch_size")

    def __init__(self, options: NerOptions, tokenizer: FullTokenizer):
        if options.doc_stride < 1:
            raise UsageError(f"doc_stride must be at least 1, found {options.doc_stride}")
        window = options.max_seq_length - 2  # the pieces of a window, between [CLS] and [SEP]
        if options.doc_stride >= window:
            logging.warning("doc_stride=%d is not below the window of max_seq_length - 2 = %d "
                            "pieces: the windows of a long sentence will not overlap",
                            options.doc_stride, window)
        self.options, self.tokenizer = options, tokenizer
        self.train = read(options, "train") if options.do_train else []
        self.labels = label_list(options, self.train)
        self.layout = ner.ner_layout(options.max_seq_length)
        self.objective = TokenClassificationObjective()

    def windows(self, sentences: list[ner.Sentence]):
        """The sentences' windows (ner.convert_sentences)."""
        return ner.convert_sentences(sentences, self.tokenizer, self.labels,
                                     self.options.max_seq_length, self.options.doc_stride,
                                     document_context=self.options.document_context)

    def write_training_records(self, path: str) -> int:
        return len(ner.write_features(self.windows(self.train), path,
                                      self.options.max_seq_length))

    def make_model(self, config: BertConfig, dtype_policy: str) -> BertTokenClassifier:
        return BertTokenClassifier(config, len(self.labels), dtype=dtype_policy)

    def evaluate(self, predictor: fine_tuning.Predictor) -> dict[str, float]:
        return eval_results(self.predict_split(predictor, "dev", self.options.eval_batch_size))

    def predict(self, predictor: fine_tuning.Predictor) -> dict:
        self.predict_split(predictor, "test", self.options.predict_batch_size)
        return {"predict": os.path.join(self.options.output_dir, "test_predictions.txt")}

    def predict_split(self, predictor: fine_tuning.Predictor, split: str,
                      batch_size: int) -> dict:
        """Predicts a split's words; writes `<dev|test>_predictions.txt` on the chief;
        returns {"conlleval": its counts, "loss": the mean loss over labelled pieces}."""
        options = self.options
        sentences = read(options, split)
        ner.check_labels(sentences, self.labels, os.path.join(options.data_dir, f"{split}.txt"))
        record_file = os.path.join(options.output_dir,
                                   "eval.tf_record" if split == "dev" else "predict.tf_record")
        features = ner.write_features(self.windows(sentences), record_file,
                                      options.max_seq_length, pad_to_multiple=batch_size)
        logging.info("%s: %d sentences in %d windows", split, len(sentences), len(features))
        outputs = predictor.outputs(record_file, self.layout, batch_size)
        predicted = ner.word_predictions(sentences, features, outputs["predictions"],
                                         self.labels)
        lines = ner.prediction_lines(sentences, predicted)
        if predictor.chief:
            file_io.write_atomically(os.path.join(options.output_dir, f"{split}_predictions.txt"),
                                     "".join(lines))
        weights = outputs["label_weights"].astype(bool)
        counts = ner_eval.count(ner_eval.read_rows(lines))
        return {"conlleval": counts, "loss": float(outputs["per_token_loss"][weights].mean())}


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
