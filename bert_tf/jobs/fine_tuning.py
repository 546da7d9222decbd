"""The fine-tuning driver: run_classifier.py, run_ner.py and run_squad.py tell one story.

    config    = stages.prepare(...)                  # flags, config, batch sizes, seeds
    task      = task_class(options, tokenizer)       # reads labels and training data
    records   = task.write_training_records(train.tf_record)
    model     = task.make_model(config, dtype)       # with the optimizer, in the strategy
    stages.train_or_restore(...)                     # train (resuming), or load a checkpoint
    results   = task.evaluate(predictor)             # -> eval_results.txt (do_eval)
    written   = task.predict(predictor)              # -> the task's prediction files

What differs between tasks is a `FineTuningTask`: how its files become feature records,
its model and objective, and how predicted outputs become metrics and files. A task's
record layout (`records.RecordLayout`, TF-free) is declared once in its `tasks/` module:
the writer serializes with it and the `tf.data` reader parses with it. The recipe for a
new task is in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import ClassVar, Protocol

import keras
import numpy as np
import tensorflow as tf

from bert_tf.config import BertConfig
from bert_tf.data.records import RecordLayout
from bert_tf.jobs import stages
from bert_tf.options import FineTuningOptions
from bert_tf.training import loop


@dataclasses.dataclass
class Predictor:
    """The trained model over a feature-record file: what a task's `evaluate` and
    `predict` call. Batches are bucketed as `--bucketing` says."""

    options: FineTuningOptions
    strategy: tf.distribute.Strategy
    model: keras.Model
    objective: loop.Objective

    @property
    def chief(self) -> bool:
        """Whether this worker writes the prediction files."""
        return self.strategy.extended.should_checkpoint

    def outputs(self, path: str, layout: RecordLayout, batch_size: int) -> dict[str, np.ndarray]:
        """The objective's predictions for every record, in file order (per-position
        outputs [records, max_seq_length, ...])."""
        return stages.predict(self.strategy, self.model, self.objective.predict,
                              self.batches_fn(path, layout, batch_size), self.options)

    def batches(self, path: str, layout: RecordLayout, batch_size: int) -> Iterator[dict]:
        """The objective's predictions batch by batch, as computed (bucketed batches keep
        their width)."""
        return loop.predict(self.strategy, self.model, self.objective.predict,
                            self.batches_fn(path, layout, batch_size), self.options.jit_compile)

    def batches_fn(self, path: str, layout: RecordLayout, batch_size: int) -> loop.DatasetFn:
        """The loop's dataset function over the record file (stages.record_batches)."""
        return stages.record_batches(self.options, path, layout, batch_size, False)


class FineTuningTask(Protocol):
    """What the driver asks of a task; `task_class(options, tokenizer)` makes one (reading
    its labels and training examples, checking its flags)."""

    stages: ClassVar[tuple[str, ...]]  # the script's do_* flags, e.g. do_train, do_predict
    batch_flags: ClassVar[tuple[str, ...]]  # its *_batch_size flags
    layout: RecordLayout  # of the training records
    objective: loop.Objective

    def write_training_records(self, path: str) -> int:
        """Writes the training records; returns the count `num_train_steps` is based on
        (the original's: examples, or windows where examples are cut into them)."""

    def make_model(self, config: BertConfig, dtype_policy: str) -> keras.Model:
        """The model (the encoder and the task's head)."""

    def evaluate(self, predictor: Predictor) -> dict[str, float]:
        """do_eval: the metrics of eval_results.txt (and the task's dev prediction files)."""

    def predict(self, predictor: Predictor) -> dict:
        """do_predict: writes the prediction files; returns what `run` reports of them."""


def run(options: FineTuningOptions, strategy: tf.distribute.Strategy,
        task_class: type[FineTuningTask]) -> dict:
    """Trains, evaluates and predicts as the `do_*` flags ask; returns {"eval": results}
    and what `task.predict` returned, as done."""
    config = stages.prepare(options, strategy, task_class.stages, task_class.batch_flags)
    tokenizer = stages.checked_tokenizer(options, config)
    task = task_class(options, tokenizer)
    train_file = os.path.join(options.output_dir, "train.tf_record")
    train_count = task.write_training_records(train_file) if options.do_train else 0
    num_train_steps = int(train_count / options.train_batch_size * options.num_train_epochs)
    model, optimizer = stages.build(
        options, strategy, lambda dtype: task.make_model(config, dtype),
        num_train_steps, int(num_train_steps * options.warmup_proportion),
    )
    global_step = stages.train_or_restore(
        options, strategy, model, optimizer, objective=task.objective,
        dataset_fn=stages.record_batches(options, train_file, task.layout,
                                         options.train_batch_size, True),
        num_train_steps=num_train_steps,
    )
    predictor = Predictor(options, strategy, model, task.objective)
    result: dict = {}
    if "do_eval" in task_class.stages and options.do_eval:  # SQuAD has no do_eval
        result["eval"] = stages.report(strategy, options.output_dir,
                                       {**task.evaluate(predictor), "global_step": global_step})
    if options.do_predict:
        result.update(task.predict(predictor))
    return result
