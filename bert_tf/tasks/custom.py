"""Your own data for run_classifier.py (`--task_name=custom`): CSV, TSV or JSON-lines files,
single-label, multi-label or regression, with no code.

Files: `train.*`, `dev.*` and `test.*` in `--data_dir`, the format from the extension:
- `.csv`: RFC 4180 (quoted fields may hold commas, quotes and newlines), a header row;
- `.tsv`: tab-separated, no quoting (as GLUE's files), a header row unless `--no_header`,
  then columns are named by their 0-based index (`--text_a_column=1`);
- `.jsonl`: one JSON object a line (blank lines skipped).
Columns by name: the text (`--text_a_column`, default `text`), an optional second text
(`--text_b_column`) and the label (`--label_column`, default `label`); the test file may
lack the label. Labels are strings; multi-label examples (`--multi_label`) hold zero or
more, as a JSON list or one field split on `--label_separator`; `--regression` reads a
float. The label order is `--labels` when given, else the sorted labels of the training
file; run_classifier.py writes it to `label_list.txt` in its output_dir and reads it back
for evaluation and prediction alone.

Every error names the file, the line and the column. Metrics and output files: see
`compute_metrics` and jobs/run_classifier.py. This module imports no TensorFlow.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os

import numpy as np

from bert_tf import file_io
from bert_tf.data.features import encode_tokens
from bert_tf.data.tokenization import FullTokenizer
from bert_tf.tasks.glue import GlueDataError, InputExample, InputFeatures, LabelledTask
from bert_tf.tasks.squad import doc_spans

FORMATS = ("csv", "tsv", "jsonl")


@dataclasses.dataclass(frozen=True)
class CustomTask(LabelledTask):
    """A task read from the user's files; the same interface as glue.Task for the job."""

    labels: tuple[str, ...] | None  # None: regression
    text_a_column: str = "text"
    text_b_column: str | None = None
    label_column: str = "label"
    multi_label: bool = False
    label_separator: str = "|"
    threshold: float = 0.5
    header: bool = True
    name: str = "custom"
    dev_splits: tuple[str, ...] = ("dev",)

    def label_id(self, label) -> int | float | list[float]:
        """As a GLUE task's; multi-label: a multi-hot [L] list (zeros when unlabeled)."""
        if self.multi_label:
            chosen = set(label or ())
            return [1.0 if name in chosen else 0.0 for name in self.labels]
        return super().label_id(label)


def split_file(data_dir: str, split: str) -> str:
    """The one `<split>.csv|tsv|jsonl` of `data_dir`."""
    found = [os.path.join(data_dir, f"{split}.{ext}") for ext in FORMATS
             if file_io.exists(os.path.join(data_dir, f"{split}.{ext}"))]
    if len(found) != 1:
        raise GlueDataError(
            f"data_dir: expected one {split} file in {data_dir} ({split}.csv, {split}.tsv or "
            f"{split}.jsonl), found {', '.join(os.path.basename(f) for f in found) or 'none'}")
    return found[0]


def read_rows(path: str, header: bool = True) -> list[tuple[int, dict]]:
    """(line number, {column: value}) per record of a CSV, TSV or JSON-lines file."""
    try:
        text = file_io.read_bytes(path).decode("utf-8")
    except FileNotFoundError:
        raise GlueDataError(f"{path}: no such file") from None
    except UnicodeDecodeError as error:
        line = error.object[: error.start].count(b"\n") + 1
        raise GlueDataError(f"{path}:{line}: not valid UTF-8 ({error.reason})") from None
    if path.endswith(".jsonl"):
        return _json_rows(path, text)
    if path.endswith(".csv"):
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    else:
        lines = text.split("\n")  # lines end at "\n" only, as GLUE's reader
        reader = csv.reader(lines[:-1] if lines[-1] == "" else lines, delimiter="\t",
                            quoting=csv.QUOTE_NONE)
    rows, names, start = [], None, 1
    try:
        for row in reader:
            if names is None and header:
                names = row
                start = reader.line_num + 1
                continue
            if not row:  # a blank line
                start = reader.line_num + 1
                continue
            keys = names or [str(index) for index in range(len(row))]
            if len(row) != len(keys):
                raise GlueDataError(f"{path}:{start}: {len(row)} fields, but the header has "
                                    f"{len(keys)} ({', '.join(keys)})")
            rows.append((start, dict(zip(keys, row, strict=True))))
            start = reader.line_num + 1
    except csv.Error as error:
        raise GlueDataError(f"{path}:{start}: not valid CSV ({error}); quote a field that "
                            f"holds commas, quotes or line breaks, and close its quotes") from None
    return rows


def _json_rows(path: str, text: str) -> list[tuple[int, dict]]:
    rows = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise GlueDataError(f"{path}:{number}: not valid JSON (column {error.colno}: "
                                f"{error.msg})") from None
        if not isinstance(row, dict):
            raise GlueDataError(f"{path}:{number}: expected a JSON object, found "
                                f"{type(row).__name__}")
        rows.append((number, row))
    return rows


def read_examples(task: CustomTask, data_dir: str, split: str) -> list[InputExample]:
    """The examples of `split`. Labels are read when the file has the label column (the
    test file may lack it; other splits must have it). A single-label example's label is a
    string, a multi-label one's a list, a regression one's a float; each is checked
    against `task.labels` when those are known."""
    path = split_file(data_dir, split)
    rows = read_rows(path, task.header)
    if not rows:
        raise GlueDataError(f"{path}: no examples in the {split} split")
    labeled = split != "test" or task.label_column in rows[0][1]
    examples = []
    for number, row in rows:
        where = f"{path}:{number}"
        text_a = _text(row, task.text_a_column, where, "text_a_column")
        text_b = (_text(row, task.text_b_column, where, "text_b_column")
                  if task.text_b_column else None)
        label = _label(row, task, where) if labeled else None
        examples.append(InputExample(f"{split}-{len(examples)}", text_a, text_b, label))
    return examples


def _column(row: dict, column: str, where: str, flag: str):
    if column not in row:
        raise GlueDataError(f"{where}: no column {column!r} (found: {', '.join(map(str, row))});"
                            f" --{flag} names it")
    return row[column]


def _text(row: dict, column: str, where: str, flag: str) -> str:
    value = _column(row, column, where, flag)
    if not isinstance(value, str):
        raise GlueDataError(f"{where}: column {column!r} holds {json.dumps(value)}, expected "
                            f"a text")
    if not value.strip():
        raise GlueDataError(f"{where}: column {column!r} is empty; every example needs a text")
    return value


def _label(row: dict, task: CustomTask, where: str) -> str | float | list[str]:
    value = _column(row, task.label_column, where, "label_column")
    column = repr(task.label_column)
    if task.is_regression:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise GlueDataError(f"{where}: column {column} holds {value!r}, expected a number "
                                f"(--regression)")
        return number
    if task.multi_label:
        if isinstance(value, str):
            labels = [part.strip() for part in value.split(task.label_separator)]
            labels = [label for label in labels if label]
        elif isinstance(value, list) and all(isinstance(v, str | int) for v in value):
            labels = [str(v) for v in value]
        else:
            raise GlueDataError(f"{where}: column {column} holds {json.dumps(value)}, expected "
                                f"a list of labels or a {task.label_separator!r}-separated text")
        for label in labels:
            _check_known(label, task, where, column)
        return sorted(set(labels))
    if isinstance(value, list) or (
            isinstance(value, str) and task.label_separator in value):
        raise GlueDataError(f"{where}: column {column} holds several labels ({value!r}) in a "
                            f"single-label task; pass --multi_label for multi-label data")
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value).strip() == "":
        raise GlueDataError(f"{where}: column {column} holds {json.dumps(value)}, expected a "
                            f"label")
    label = str(value).strip()
    _check_known(label, task, where, column)
    return label


def _check_known(label: str, task: CustomTask, where: str, column: str) -> None:
    if task.labels is not None and task.labels and label not in task.labels:
        shown = ", ".join(task.labels[:20]) + (" ..." if len(task.labels) > 20 else "")
        raise GlueDataError(f"{where}: label {label!r} in column {column} is not one of the "
                            f"task's labels ({shown}); see --labels")


def labels_of(examples: list[InputExample]) -> tuple[str, ...]:
    """The sorted labels the examples use (multi-label: their union)."""
    found: set[str] = set()
    for example in examples:
        found.update(example.label if isinstance(example.label, list) else [example.label])
    return tuple(sorted(found))


def window_features(examples: list[InputExample], task: CustomTask, max_seq_length: int,
                    tokenizer: FullTokenizer, doc_stride: int
                    ) -> tuple[list[InputFeatures], list[int]]:
    """`--long_text=windows`: each single-text example as windows of `max_seq_length - 2`
    word pieces, `doc_stride` apart (as run_squad.py's), each with the example's label.
    Returns the features and, per feature, the index of its example."""
    features, owners = [], []
    for index, example in enumerate(examples):
        if example.text_b is not None:
            raise GlueDataError("long_text=windows: windows cut one text; a pair task "
                                "(--text_b_column) is truncated, --long_text=truncate")
        pieces = tokenizer.tokenize(example.text_a)
        for start, length in doc_spans(max(len(pieces), 1), max_seq_length - 2, doc_stride):
            encoded = encode_tokens(tokenizer, pieces[start:start + length], None,
                                    max_seq_length)
            features.append(InputFeatures(encoded.input_ids, encoded.input_mask,
                                          encoded.segment_ids, task.label_id(example.label)))
            owners.append(index)
    return features, owners


def average_windows(task: CustomTask, outputs: dict[str, np.ndarray], owners: list[int],
                    num_examples: int) -> dict[str, np.ndarray]:
    """Per-window outputs (`logits` [W, L], padding windows after the real ones) -> per
    example: the mean of its windows' logits, then the probabilities (softmax, or a sigmoid
    per label), the loss on them, and its label; all examples real."""
    owners_array = np.asarray(owners)
    logits = outputs["logits"][: len(owners)].astype(np.float64)
    counts = np.bincount(owners_array, minlength=num_examples)[:, None]
    mean = np.zeros((num_examples, logits.shape[1]))
    np.add.at(mean, owners_array, logits)
    mean /= counts
    first = np.searchsorted(owners_array, np.arange(num_examples))
    labels = outputs["label_ids"][: len(owners)][first]
    if task.multi_label:
        probabilities = 1 / (1 + np.exp(-mean))
        targets = labels.astype(np.float64)
        loss = np.mean(np.logaddexp(0, mean) - targets * mean, axis=1)
    else:
        shifted = mean - mean.max(axis=1, keepdims=True)
        log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        probabilities = np.exp(log_probabilities)
        loss = -log_probabilities[np.arange(num_examples), labels.astype(int)]
    return {"probabilities": probabilities, "per_example_loss": loss, "label_ids": labels,
            "is_real_example": np.ones(num_examples, np.int64)}


def predicted_labels(task: CustomTask, probabilities: np.ndarray) -> list[list[str]]:
    """Per example, the predicted label names: the arg-max, or (multi-label) every label
    with probability >= `task.threshold`."""
    if task.multi_label:
        return [[task.labels[i] for i in np.flatnonzero(row >= task.threshold)]
                for row in probabilities]
    return [[task.labels[i]] for i in probabilities.argmax(-1)]


def compute_metrics(task: CustomTask, outputs: dict[str, np.ndarray]) -> dict:
    """eval_results values beyond the losses, for the real examples: single-label
    `eval_accuracy`, `macro_f1` and `f1_<label>`; multi-label `micro_f1`, `macro_f1`,
    `subset_accuracy` (the exact label set) and `f1_<label>`."""
    real = outputs["is_real_example"].astype(bool)
    probabilities = outputs["probabilities"][real]
    size = len(task.labels)
    if task.multi_label:
        truth = outputs["label_ids"][real] > 0.5
        chosen = probabilities >= task.threshold
        results = {"subset_accuracy": float(np.mean(np.all(truth == chosen, axis=1)))}
    else:
        labels = outputs["label_ids"][real].astype(int)
        predicted = probabilities.argmax(-1)
        truth, chosen = np.eye(size, dtype=bool)[labels], np.eye(size, dtype=bool)[predicted]
        results = {"eval_accuracy": float(np.mean(labels == predicted))}
    tp = np.sum(truth & chosen, axis=0).astype(np.float64)
    fp = np.sum(~truth & chosen, axis=0)
    fn = np.sum(truth & ~chosen, axis=0)
    per_label = [_f1(t, p, n) for t, p, n in zip(tp, fp, fn, strict=True)]
    results["macro_f1"] = float(np.mean(per_label))
    if task.multi_label:
        results["micro_f1"] = _f1(tp.sum(), fp.sum(), fn.sum())
    results.update({f"f1_{name}": score for name, score in zip(task.labels, per_label,
                                                               strict=True)})
    return results


def _f1(tp: float, fp: float, fn: float) -> float:
    return float(2 * tp / (2 * tp + fp + fn)) if tp else 0.0


TASK_FILE = "custom_task.json"  # beside label_list.txt: how the outputs read as labels
SAVED_FIELDS = ("labels", "multi_label", "label_separator", "threshold")


def write_task_file(task: CustomTask, path: str) -> None:
    """Keeps what an export needs to name a model's predictions (labels, multi-label,
    separator, threshold) as JSON at `path`, atomically."""
    fields = {name: getattr(task, name) for name in SAVED_FIELDS}
    file_io.write_atomically(path, json.dumps(fields, indent=2) + "\n")


def read_task_file(path: str) -> CustomTask:
    """The custom task `write_task_file` kept at `path`."""
    try:
        fields = json.loads(file_io.read_bytes(path))
        labels = fields["labels"]
        return CustomTask(labels=None if labels is None else tuple(labels),
                          **{name: fields[name] for name in SAVED_FIELDS[1:]})
    except (ValueError, KeyError, TypeError) as error:
        raise GlueDataError(f"{path}: not a custom task file ({error!r}); run_classifier.py "
                            f"--task_name=custom --do_train writes it") from None
