"""run_classifier.py's job: fine-tune, evaluate and predict a GLUE/XNLI task.

As the original: features cached as `train.tf_record` / `eval.tf_record` /
`predict.tf_record` in `output_dir`; `num_train_steps = int(examples / batch * epochs)`,
warmup `int(steps * warmup_proportion)`; `eval_results.txt` with `eval_accuracy`,
`eval_loss`, `global_step`, `loss` (plus the task's GLUE metric); `test_results.tsv` with
one line of class probabilities per test example. Also `<TASK>.tsv`, a GLUE submission
file (`index<TAB>prediction`, label names).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf
from absl import logging

from bert_tf import file_io
from bert_tf.config import BertConfig
from bert_tf.data.tokenization import FullTokenizer
from bert_tf.errors import UsageError
from bert_tf.jobs import fine_tuning, stages
from bert_tf.models.heads import BertClassifier
from bert_tf.models.objectives import ClassificationObjective
from bert_tf.options import FineTuningOptions, option
from bert_tf.tasks import custom, glue, ner

# The file names the GLUE leaderboard expects (MNLI's test here is the matched set).
SUBMISSION_NAMES = {"cola": "CoLA", "sst-2": "SST-2", "sts-b": "STS-B", "mnli": "MNLI-m"}


@dataclasses.dataclass(kw_only=True)
class ClassifierOptions(FineTuningOptions):
    """The flags of run_classifier.py: the fine-tuning flags and the original's own."""

    data_dir: str = option(help="The input data dir. Should contain the .tsv files.",
                           required=True)
    task_name: str = option(help="The name of the task to train.", required=True)
    do_eval: bool = option(False, "Whether to run eval on the dev set.")
    do_predict: bool = option(False, "Whether to run the model on the test set.")
    eval_batch_size: int = option(8, "Total batch size for eval.")
    xnli_language: str = option("zh", "XNLI: the language of the dev/test examples kept.")
    # --task_name=custom: your own files (tasks/custom.py).
    text_a_column: str = option("text", "custom: the column of the (first) text.")
    text_b_column: str | None = option(None, "custom: the column of the second text of a "
                                             "pair (none: single texts).")
    label_column: str = option("label", "custom: the column of the label(s).")
    labels: str | None = option(None, "custom: the labels, comma-separated, in the order of "
                                      "the model's outputs (default: the sorted labels of the "
                                      "training file, kept in output_dir/label_list.txt).")
    multi_label: bool = option(False, "custom: zero or more labels per example (a JSON list, "
                                      "or one field split on --label_separator); a sigmoid "
                                      "per label.")
    label_separator: str = option("|", "custom, --multi_label: what separates the labels of "
                                       "a CSV/TSV field (and of the predictions written).")
    threshold: float = option(0.5, "custom, --multi_label: a label is predicted when its "
                                   "probability is at least this.")
    regression: bool = option(False, "custom: float labels (a score, as STS-B).")
    no_header: bool = option(False, "custom: the TSV files have no header row; columns are "
                                    "then 0-based indexes.")
    long_text: str = option("truncate", "custom: a text longer than max_seq_length is cut to "
                                        "it (truncate, the original) or read as windows "
                                        "doc_stride pieces apart (windows: training sees every "
                                        "window, evaluation and prediction average the "
                                        "windows' logits).", choices=("truncate", "windows"))
    doc_stride: int = option(128, "custom, --long_text=windows: pieces between the starts "
                                  "of two windows.")


def run(options: ClassifierOptions, strategy: tf.distribute.Strategy) -> dict:
    """Runs the requested stages (jobs/fine_tuning.py); returns {"eval": results,
    "predict": path} as done."""
    return fine_tuning.run(options, strategy, ClassifierTask)


class ClassifierTask:
    """A GLUE/XNLI task, or your own files (`--task_name=custom`), for the driver."""

    stages = ("do_train", "do_eval", "do_predict")
    batch_flags = ("train_batch_size", "eval_batch_size", "predict_batch_size")

    def __init__(self, options: ClassifierOptions, tokenizer: FullTokenizer):
        self.options, self.tokenizer = options, tokenizer
        self.custom = options.task_name.lower() == custom.CustomTask.name
        if self.custom:
            self.task, self.train_examples = custom_task(options)
        else:
            self.task = glue.get_task(options.task_name, options.xnli_language)
            self.train_examples = (glue.read_examples(self.task, options.data_dir, "train")
                                   if options.do_train else [])
        check_pairs_fit(self.train_examples, options)
        self.layout = glue.task_layout(self.task, options.max_seq_length)
        self.objective = ClassificationObjective(self.task.is_regression, self.task.multi_label)

    def write_training_records(self, path: str) -> int:
        return write_examples(self.options, self.task, self.tokenizer, self.train_examples,
                              path)[0]

    def make_model(self, config: BertConfig, dtype_policy: str) -> BertClassifier:
        return BertClassifier(config, self.task.num_labels, dtype=dtype_policy)

    def split_outputs(self, predictor: fine_tuning.Predictor, split: str, name: str,
                      batch_size: int) -> dict[str, np.ndarray]:
        """The predicted outputs of a split's examples (windows averaged per example)."""
        read = custom.read_examples if self.custom else glue.read_examples
        examples = read(self.task, self.options.data_dir, split)
        check_pairs_fit(examples, self.options)
        path = os.path.join(self.options.output_dir, f"{name}.tf_record")
        _, owners = write_examples(self.options, self.task, self.tokenizer, examples, path,
                                   batch_size)
        logging.info("%s: %d examples", split, len(examples))
        outputs = predictor.outputs(path, self.layout, batch_size)
        if owners is None:
            return outputs
        return custom.average_windows(self.task, outputs, owners, len(examples))

    def evaluate(self, predictor: fine_tuning.Predictor) -> dict[str, float]:
        """eval_results.txt's values (MNLI: both dev sets); a custom task also writes
        dev_predictions.tsv."""
        results, batch_size = {}, self.options.eval_batch_size
        for split, suffix in zip(self.task.dev_splits, ("", "_mismatched"), strict=False):
            outputs = self.split_outputs(predictor, split, "eval", batch_size)
            if self.custom and not self.task.is_regression:
                metrics = {**glue.loss_metrics(outputs, batch_size),
                           **custom.compute_metrics(self.task, outputs)}
            else:
                metrics = glue.compute_metrics(self.task, outputs, batch_size)
            if self.custom and predictor.chief:
                write_label_names(self.task, outputs, self.options.output_dir,
                                  "dev_predictions.tsv")
            results.update({f"{key}{suffix}": value for key, value in metrics.items()})
        return results

    def predict(self, predictor: fine_tuning.Predictor) -> dict:
        """The test files (`write_predictions`), written by the chief."""
        outputs = self.split_outputs(predictor, "test", "predict",
                                     self.options.predict_batch_size)
        if not predictor.chief:
            return {}
        return {"predict": write_predictions(self.task, outputs, self.options.output_dir)}


def write_examples(options: ClassifierOptions, task, tokenizer, examples: list, path: str,
                   pad_to_multiple: int = 1) -> tuple[int, list[int] | None]:
    """Writes the examples' feature records at `path`; returns how many (padding not
    counted) and, under `--long_text=windows` (one record per window), each record's
    example index (else None)."""
    if options.long_text == "truncate":
        glue.write_features(examples, task, options.max_seq_length, tokenizer, path,
                            pad_to_multiple=pad_to_multiple)
        return len(examples), None
    if not isinstance(task, custom.CustomTask) or task.is_regression:
        raise UsageError("long_text=windows: for custom classification tasks "
                         "(--task_name=custom, not --regression)")
    if options.doc_stride < 1:
        raise UsageError(f"doc_stride must be at least 1, found {options.doc_stride}")
    features, owners = custom.window_features(examples, task, options.max_seq_length,
                                              tokenizer, options.doc_stride)
    glue.write_feature_records(features, task, options.max_seq_length, path, pad_to_multiple)
    logging.info("%d examples in %d windows", len(examples), len(features))
    return len(features), owners


def write_predictions(task: glue.Task, outputs: dict, output_dir: str) -> str:
    """`test_results.tsv` (the original's: probabilities, or the score for regression) and
    the GLUE submission file `<TASK>.tsv`, both atomically, for the real (not padding)
    examples of `outputs`. Returns the first's path."""
    real = outputs["is_real_example"].astype(bool)
    if task.is_regression:
        scores = outputs["predictions"][real]
        lines = [f"{np.float32(score)}\n" for score in scores]
        names = [f"{score:.3f}" for score in scores]
    else:
        probabilities = outputs["probabilities"][real]
        lines = ["\t".join(str(p) for p in row) + "\n" for row in probabilities]
        names = [task.labels[i] for i in probabilities.argmax(-1)]
    path = os.path.join(output_dir, "test_results.tsv")
    file_io.write_atomically(path, "".join(lines))
    if isinstance(task, custom.CustomTask):
        write_label_names(task, outputs, output_dir, "test_predictions.tsv")
        return path
    submission = ["index\tprediction\n"] + [f"{i}\t{name}\n" for i, name in enumerate(names)]
    name = SUBMISSION_NAMES.get(task.name, task.name.upper())
    file_io.write_atomically(os.path.join(output_dir, f"{name}.tsv"), "".join(submission))
    return path


def write_label_names(task: custom.CustomTask, outputs: dict, output_dir: str,
                      name: str) -> None:
    """`index<TAB>prediction` per real example: the predicted label name(s) (multi-label:
    joined by the separator, empty for none), or the score."""
    real = outputs["is_real_example"].astype(bool)
    if task.is_regression:
        names = [f"{np.float32(score)}" for score in outputs["predictions"][real]]
    else:
        names = [task.label_separator.join(labels) for labels in
                 custom.predicted_labels(task, outputs["probabilities"][real])]
    lines = ["index\tprediction\n"] + [f"{i}\t{name}\n" for i, name in enumerate(names)]
    file_io.write_atomically(os.path.join(output_dir, name), "".join(lines))


def custom_task(options: ClassifierOptions) -> tuple[custom.CustomTask, list]:
    """The custom task the flags describe, its labels from `--labels`, the training file
    (then kept in output_dir/label_list.txt) or, without training, that file; and the
    training examples (none without `do_train`)."""
    task = custom.CustomTask(
        labels=None if options.regression else (), text_a_column=options.text_a_column,
        text_b_column=options.text_b_column, label_column=options.label_column,
        multi_label=options.multi_label, label_separator=options.label_separator,
        threshold=options.threshold, header=not options.no_header)
    if options.regression and options.multi_label:
        raise UsageError("regression and multi_label: a task is one or the other")
    label_file = os.path.join(options.output_dir, ner.LABEL_FILE)  # the same file as NER's
    if not options.regression:
        if options.labels:
            labels = tuple(label.strip() for label in options.labels.split(",") if label.strip())
            task = dataclasses.replace(task, labels=labels)
        elif not options.do_train:
            if not file_io.exists(label_file):
                raise UsageError(f"{label_file}: missing; evaluating or predicting a custom "
                                 f"task without training needs the labels: pass --labels or "
                                 f"the training run's output_dir")
            task = dataclasses.replace(task, labels=tuple(ner.read_label_list(label_file)))
    train = custom.read_examples(task, options.data_dir, "train") if options.do_train else []
    if task.labels == ():
        task = dataclasses.replace(task, labels=custom.labels_of(train))
    if not options.regression and len(task.labels) < (1 if task.multi_label else 2):
        raise UsageError(f"labels: a classifier needs at least two labels (one for "
                         f"--multi_label), found {list(task.labels)}")
    if (task.multi_label and len(task.labels) == options.max_seq_length
            and stages.bucketing_rule(options).buckets(is_training=False)):
        # bucketing cuts [S]-wide features
        raise UsageError(f"multi_label with {len(task.labels)} labels = max_seq_length: "
                         f"bucketing would cut the labels as positions; pass --bucketing=none")
    if options.do_train:
        if task.labels is not None:
            ner.write_label_list(task.labels, label_file)
        custom.write_task_file(task, os.path.join(options.output_dir, custom.TASK_FILE))
    return task, train


def check_pairs_fit(examples: list, options: ClassifierOptions) -> None:
    """Sentence pairs need max_seq_length >= 5: truncating a pair to less would drop both
    texts and classify `[CLS] [SEP] [SEP]`."""
    if any(example.text_b is not None for example in examples):
        stages.check_sequence_length(options.max_seq_length, None, options.bert_config_file,
                                     stages.SHORTEST_PAIR)
