"""GLUE (and XNLI) for run_classifier.py: reading the task files, features and the task
metrics (the model is heads.BertClassifier, its loss objectives.ClassificationObjective).

File formats are those of the standard GLUE download, read as the original reads them
(tab-separated, no quoting, UTF-8; a header line skipped where the file has one; MRPC's
header starts with a BOM). Features are the original `convert_single_example`:
`[CLS] a [SEP] (b [SEP])`, pairs truncated longest-first, zero padding. Eval and predict
sets are padded to a whole number of batches with all-zero `is_real_example=0` examples (the
original's TPU path, here on every device so every step has a static shape); padding never
reaches a metric or an output file.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import math
import os

import numpy as np

from bert_tf import file_io
from bert_tf.data import records
from bert_tf.data.features import encode_text
from bert_tf.data.tokenization import FullTokenizer
from bert_tf.errors import BertTfError
from bert_tf.progress import Progress


class GlueDataError(BertTfError, ValueError):
    """A task file that is missing, unreadable or not in the task's format."""


@dataclasses.dataclass
class InputExample:
    """One example: `text_b` is None for single-sentence tasks; `label` is a label name (a
    float for STS-B), or None for unlabeled test examples."""

    guid: str
    text_a: str
    text_b: str | None = None
    label: str | float | None = None


@dataclasses.dataclass
class InputFeatures:
    input_ids: list[int]
    input_mask: list[int]
    segment_ids: list[int]
    label_id: int | float | list[float]  # a class, a score, or multi-hot (custom tasks)
    is_real_example: bool = True


@dataclasses.dataclass(frozen=True)
class TsvColumns:
    """Where a file keeps its fields: column indices (negative counts from the end)."""

    text_a: int
    text_b: int | None
    label: int | None  # None: unlabeled (test files)
    header: bool = True


class LabelledTask:
    """What the classifier job asks of a task's labels (a GLUE Task, a custom.CustomTask):
    `labels` in the model's output order, None for regression."""

    labels: tuple[str, ...] | None
    multi_label = False

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_labels(self) -> int:
        return 1 if self.labels is None else len(self.labels)

    def label_id(self, label: str | float | None) -> int | float:
        """An example's label as the model's target (the first label, or 0.0, for an
        unlabeled test example, as the original)."""
        if self.is_regression:
            return float(label) if label is not None else 0.0
        return self.labels.index(label) if label is not None else 0


@dataclasses.dataclass(frozen=True)
class Task(LabelledTask):
    """A GLUE-style task: its labels (None: regression), files and columns per split."""

    name: str
    labels: tuple[str, ...] | None
    train: tuple[str, TsvColumns]
    dev: tuple[tuple[str, TsvColumns], ...]
    test: tuple[str, TsvColumns]
    metric: str = "accuracy"  # the task's GLUE metric besides accuracy: f1, mcc, corr
    language: str | None = None  # XNLI: the dev/test language kept

    @property
    def dev_splits(self) -> tuple[str, ...]:
        """The splits evaluation reads: "dev", and MNLI's "dev_mismatched"."""
        return ("dev", "dev_mismatched")[: len(self.dev)]


_PAIR = TsvColumns(text_a=1, text_b=2, label=3)
_PAIR_TEST = TsvColumns(text_a=1, text_b=2, label=None)
_NLI = ("contradiction", "entailment", "neutral")
_ENTAIL = ("entailment", "not_entailment")
_MNLI = TsvColumns(text_a=8, text_b=9, label=-1)

TASKS: dict[str, Task] = {
    task.name: task
    for task in [
        Task("cola", ("0", "1"), ("train.tsv", TsvColumns(3, None, 1, header=False)),
             (("dev.tsv", TsvColumns(3, None, 1, header=False)),),
             ("test.tsv", TsvColumns(1, None, None)), metric="mcc"),
        Task("sst-2", ("0", "1"), ("train.tsv", TsvColumns(0, None, 1)),
             (("dev.tsv", TsvColumns(0, None, 1)),), ("test.tsv", TsvColumns(1, None, None))),
        Task("mrpc", ("0", "1"), ("train.tsv", TsvColumns(3, 4, 0)),
             (("dev.tsv", TsvColumns(3, 4, 0)),), ("test.tsv", TsvColumns(3, 4, None)),
             metric="f1"),
        Task("sts-b", None, ("train.tsv", TsvColumns(7, 8, -1)),
             (("dev.tsv", TsvColumns(7, 8, -1)),), ("test.tsv", TsvColumns(7, 8, None)),
             metric="corr"),
        Task("qqp", ("0", "1"), ("train.tsv", TsvColumns(3, 4, 5)),
             (("dev.tsv", TsvColumns(3, 4, 5)),), ("test.tsv", _PAIR_TEST), metric="f1"),
        Task("mnli", _NLI, ("train.tsv", _MNLI),
             (("dev_matched.tsv", _MNLI), ("dev_mismatched.tsv", _MNLI)),
             ("test_matched.tsv", TsvColumns(8, 9, None))),
        Task("qnli", _ENTAIL, ("train.tsv", _PAIR), (("dev.tsv", _PAIR),),
             ("test.tsv", _PAIR_TEST)),
        Task("rte", _ENTAIL, ("train.tsv", _PAIR), (("dev.tsv", _PAIR),),
             ("test.tsv", _PAIR_TEST)),
        Task("wnli", ("0", "1"), ("train.tsv", _PAIR), (("dev.tsv", _PAIR),),
             ("test.tsv", _PAIR_TEST)),
        # XNLI as the original: train from MultiNLI's machine translation, dev/test filtered
        # by language (column 0); "contradictory" in the train file means "contradiction".
        Task("xnli", _NLI, ("multinli/multinli.train.{language}.tsv", TsvColumns(0, 1, 2)),
             (("xnli.dev.tsv", TsvColumns(6, 7, 1)),), ("xnli.test.tsv", TsvColumns(6, 7, 1)),
             language="zh"),
    ]
}


def get_task(task_name: str, language: str | None = None) -> Task:
    """The task for a `--task_name` (case-insensitive). Raises GlueDataError listing the
    known names."""
    task = TASKS.get(task_name.lower())
    if task is None:
        raise GlueDataError(
            f"task_name: unknown task {task_name!r}; known tasks: {', '.join(sorted(TASKS))}"
        )
    if language and task.language:
        task = dataclasses.replace(task, language=language)
    return task


def read_tsv(path: str) -> list[list[str]]:
    """Tab-separated rows of a UTF-8 file, no quoting (quotes are text), as the original."""
    try:
        data = file_io.read_bytes(path)
    except FileNotFoundError:
        raise GlueDataError(f"{path}: no such file") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise GlueDataError(f"{path}:{line}: not valid UTF-8 ({error.reason})") from None
    # Lines end at "\n" only, as the original's file reader splits them: U+2028, \x0c or
    # \x85 inside a field are text (str.splitlines() would cut the row there).
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    reader = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    try:
        return list(reader)
    except csv.Error as error:
        raise GlueDataError(f"{path}:{reader.line_num}: {error}") from None


def read_examples(task: Task, data_dir: str, split: str) -> list[InputExample]:
    """The examples of `split` ("train", "dev" or "test"); for MNLI "dev" is matched and
    "dev_mismatched" the mismatched set."""
    if split == "train":
        file_name, columns = task.train
    elif split == "test":
        file_name, columns = task.test
    else:
        files = dict(task.dev)
        key = "dev_mismatched.tsv" if split == "dev_mismatched" else task.dev[0][0]
        if key not in files:
            raise GlueDataError(f"task {task.name} has no split {split!r}")
        file_name, columns = key, files[key]
    path = os.path.join(data_dir, file_name.format(language=task.language))
    rows = read_tsv(path)
    labeled = columns.label is not None
    needed = 1 + max(c for c in (columns.text_a, columns.text_b, columns.label) if c is not None
                     and c >= 0)
    examples = []
    for index, row in enumerate(rows):
        if columns.header and index == 0:
            continue
        if task.language and split != "train" and row and row[0] != task.language:
            continue
        where = f"{path}:{index + 1}"
        if len(row) < needed:
            raise GlueDataError(
                f"{where}: expected at least {needed} tab-separated columns for task "
                f"{task.name}, found {len(row)}"
            )
        label = row[columns.label] if labeled else None
        if label is not None:
            label = _check_label(task, label, where)
        text_b = row[columns.text_b] if columns.text_b is not None else None
        examples.append(InputExample(f"{split}-{index}", row[columns.text_a], text_b, label))
    if not examples:
        raise GlueDataError(f"{path}: no examples in the {split} split")
    return examples


def _check_label(task: Task, label: str, where: str) -> str | float:
    if task.is_regression:
        try:
            return float(label)
        except ValueError:
            raise GlueDataError(f"{where}: label {label!r} is not a number") from None
    if task.name == "xnli" and label == "contradictory":
        label = "contradiction"
    if label not in task.labels:
        raise GlueDataError(
            f"{where}: label {label!r} is not one of the {task.name} labels {list(task.labels)}"
        )
    return label


def convert_example(
    example: InputExample, task: Task, max_seq_length: int, tokenizer: FullTokenizer
) -> InputFeatures:
    """The original `convert_single_example` (labels of test examples become the first)."""
    encoded = encode_text(tokenizer, example.text_a, example.text_b, max_seq_length)
    return InputFeatures(encoded.input_ids, encoded.input_mask, encoded.segment_ids,
                         task.label_id(example.label))


def padding_features(max_seq_length: int, task: Task) -> InputFeatures:
    zeros = [0] * max_seq_length
    return InputFeatures(zeros, zeros, zeros, task.label_id(None), False)


def write_features(
    examples: list[InputExample], task: Task, max_seq_length: int, tokenizer: FullTokenizer,
    path: str, pad_to_multiple: int = 1,
) -> int:
    """Writes the examples' features as TFRecord at `path` (atomically), padded with
    `is_real_example=0` features to a multiple of `pad_to_multiple`. Returns the number of
    records written."""
    progress = Progress("features", len(examples), "examples")
    features = [convert_example(e, task, max_seq_length, tokenizer)
                for e in progress.counting(examples)]
    progress.finish()
    return write_feature_records(features, task, max_seq_length, path, pad_to_multiple)


def write_feature_records(features: list[InputFeatures], task: Task, max_seq_length: int,
                          path: str, pad_to_multiple: int = 1) -> int:
    """Writes `features` as TFRecord at `path` (atomically), padded with `is_real_example=0`
    features to a multiple of `pad_to_multiple`. Returns the number of records written."""
    features = list(features)
    while len(features) % pad_to_multiple:
        features.append(padding_features(max_seq_length, task))
    return records.write_tfrecords(path, (record_bytes(feature, task) for feature in features))


@functools.cache
def classifier_layout(max_seq_length: int, is_regression: bool,
                      multi_label_width: int = 0) -> records.RecordLayout:
    """run_classifier.py's records, the original's: `label_ids` one int64 (a class), one
    float (regression) or `multi_label_width` floats (multi-hot, custom tasks)."""
    return records.RecordLayout(
        {"input_ids": max_seq_length, "input_mask": max_seq_length,
         "segment_ids": max_seq_length, "label_ids": multi_label_width, "is_real_example": 0},
        floats=frozenset({"label_ids"}) if is_regression or multi_label_width else frozenset())


def task_layout(task: Task, max_seq_length: int) -> records.RecordLayout:
    """The layout of `task`'s records."""
    return classifier_layout(max_seq_length, task.is_regression,
                             task.num_labels if task.multi_label else 0)


def record_bytes(feature: InputFeatures, task: Task) -> bytes:
    """One record of the original's classifier features (see `classifier_layout`)."""
    label = feature.label_id if task.multi_label else [feature.label_id]
    return task_layout(task, len(feature.input_ids)).serialize({
        "input_ids": feature.input_ids, "input_mask": feature.input_mask,
        "segment_ids": feature.segment_ids, "label_ids": label,
        "is_real_example": [int(feature.is_real_example)],
    })


def compute_metrics(task: Task, outputs: dict[str, np.ndarray], batch_size: int) -> dict:
    """eval_results values from per-example outputs (padding included, flagged by
    is_real_example): eval_accuracy (classification), eval_loss, loss (the mean over eval
    batches of the batch loss, as the original's Estimator reports it) and the GLUE metric."""
    real = outputs["is_real_example"].astype(bool)
    results = loss_metrics(outputs, batch_size)
    labels = outputs["label_ids"][real]
    if task.is_regression:
        predictions = outputs["predictions"][real].astype(np.float64)
        results["pearson"] = float(np.corrcoef(predictions, labels)[0, 1])
        results["spearman"] = float(np.corrcoef(_ranks(predictions), _ranks(labels))[0, 1])
        results["corr"] = (results["pearson"] + results["spearman"]) / 2
        return results
    predictions = outputs["probabilities"][real].argmax(-1)
    results["eval_accuracy"] = float((predictions == labels).mean())
    if task.metric == "f1":
        tp = float(np.sum((predictions == 1) & (labels == 1)))
        precision = tp / max(np.sum(predictions == 1), 1)
        recall = tp / max(np.sum(labels == 1), 1)
        results["f1"] = 2 * precision * recall / (precision + recall) if tp else 0.0
    elif task.metric == "mcc":
        tp = float(np.sum((predictions == 1) & (labels == 1)))
        tn = float(np.sum((predictions == 0) & (labels == 0)))
        fp = float(np.sum((predictions == 1) & (labels == 0)))
        fn = float(np.sum((predictions == 0) & (labels == 1)))
        denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        results["mcc"] = (tp * tn - fp * fn) / denominator if denominator else 0.0
    return results


def loss_metrics(outputs: dict[str, np.ndarray], batch_size: int) -> dict:
    """`eval_loss` (the mean over real examples) and `loss` (the mean over eval batches of
    the batch loss, as the original's Estimator reports it)."""
    real = outputs["is_real_example"].astype(bool)
    losses = outputs["per_example_loss"].astype(np.float64)
    batch_losses = [
        losses[start:start + batch_size][real[start:start + batch_size]].mean()
        for start in range(0, len(losses), batch_size)
        if real[start:start + batch_size].any()
    ]
    return {"eval_loss": float(losses[real].mean()), "loss": float(np.mean(batch_losses))}


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (for Spearman's correlation)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks
