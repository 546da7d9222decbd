"""The training jobs' stages: the pieces their `run` is told with.

run_pretraining.py's job and the fine-tuning driver (jobs/fine_tuning.py, which runs
run_classifier.py, run_ner.py and run_squad.py) read as one story:

    config = stages.prepare(options, strategy, ["do_train", "do_eval"], batch_flags)
    model, optimizer = stages.build(options, strategy, make_model, num_train_steps, warmup)
    stages.train_or_restore(options, strategy, model, optimizer, objective=...,
                            dataset_fn=..., num_train_steps=...)
    results = ... stages.predict(...) / loop.evaluate(...)
    stages.report(strategy, output_dir, results)

Every script's `__main__` is `script.main(name, options_class, run, hold_output_dir)`
(jobs/script.py): flags -> options -> strategy -> `run`, holding `output_dir`, with the
package's errors turned into a one-line exit.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable, Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from bert_tf import file_io
from bert_tf.config import BertConfig
from bert_tf.data.records import RecordLayout
from bert_tf.data.tokenization import (
    FullTokenizer,
    check_vocab_fits,
    validate_case_matches_checkpoint,
)
from bert_tf.errors import UsageError, describe_os_error
from bert_tf.options import FineTuningOptions, TrainingOptions
from bert_tf.training import bucketing, loop, resume
from bert_tf.training import checkpoint as checkpoint_lib
from bert_tf.training.input_pipeline import decode_record, feature_dataset, parsing_spec
from bert_tf.training.optimization import create_optimizer

MIXED_PRECISION = {"": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def prepare(options: TrainingOptions, strategy: tf.distribute.Strategy,
            stages: Sequence[str], batch_flags: Sequence[str]) -> BertConfig:
    """The checks of a training job before any work: one of `stages` (`do_*` flags) is
    asked for; the config loads and its positions fit `max_seq_length`; every batch flag
    splits over the replicas (the train batch also over the accumulation slices). Then
    seeds (`deterministic`, `seed`) and makes `output_dir`. Returns the model config."""
    if not any(getattr(options, stage) for stage in stages):
        names = [f"`{stage}`" for stage in stages]
        raise UsageError(f"At least one of {', '.join(names[:-1])} or {names[-1]} must be True.")
    check_run_flags(options)
    config = BertConfig.from_json_file(options.bert_config_file)
    check_sequence_length(options.max_seq_length, config, options.bert_config_file)
    if options.init_checkpoint:
        checkpoint_lib.check_config_fits(options.init_checkpoint, config,
                                         options.bert_config_file)
    for flag in batch_flags:
        slices = options.gradient_accumulation_steps if flag == "train_batch_size" else 1
        check_batch_size(flag, getattr(options, flag), strategy.num_replicas_in_sync * slices)
    set_determinism(options.deterministic, options.seed)
    tf.io.gfile.makedirs(options.output_dir)
    return config


def checked_tokenizer(options: FineTuningOptions, config: BertConfig) -> FullTokenizer:
    """The vocabulary's tokenizer, checked against the config and the checkpoint's case."""
    validate_case_matches_checkpoint(options.do_lower_case, options.init_checkpoint)
    tokenizer = FullTokenizer(options.vocab_file, options.do_lower_case)
    check_vocab_fits(tokenizer.vocab, options.vocab_file, config.vocab_size,
                     options.bert_config_file)
    return tokenizer


def build(options: TrainingOptions, strategy: tf.distribute.Strategy,
          make_model: Callable[[str], keras.Model], num_train_steps: int,
          num_warmup_steps: int) -> tuple[keras.Model, keras.optimizers.Optimizer]:
    """`make_model(dtype_policy)` and the optimizer the flags ask for, built in the
    strategy's scope; `gradient_checkpointing` set on its encoder."""
    with strategy.scope():
        model = make_model(dtype_policy(options.mixed_precision))
        getattr(model, "bert", model).gradient_checkpointing = options.gradient_checkpointing
        optimizer = make_optimizer(options, num_train_steps, num_warmup_steps)
        optimizer.build(model.trainable_variables)
    return model, optimizer


def train_or_restore(options: TrainingOptions, strategy: tf.distribute.Strategy,
                     model: keras.Model, optimizer: keras.optimizers.Optimizer, *,
                     objective: loop.Objective, dataset_fn: loop.DatasetFn,
                     num_train_steps: int) -> int:
    """With `do_train`: trains to `num_train_steps` (resuming from `output_dir`'s latest
    checkpoint); else restores that checkpoint, or `init_checkpoint`. Returns the global
    step reached."""
    if options.do_train:
        loop.train(strategy, model, optimizer, objective, dataset_fn,
                       run_config(options, num_train_steps))
    else:
        resume.restore_or_initialize(model, optimizer, options.output_dir,
                                     options.init_checkpoint)
    return int(optimizer.iterations.numpy())


def record_batches(options: FineTuningOptions, path: str, layout: RecordLayout,
                   batch_size: int, is_training: bool) -> loop.DatasetFn:
    """The driver's dataset_fn over a feature-record file of `layout`
    (`input_pipeline.feature_dataset`), length-bucketed as `--bucketing` says (evaluation
    and prediction batches then carry `example_index`: see `predict`)."""
    rule = bucketing_rule(options)
    spec = parsing_spec(layout)

    def make(context: tf.distribute.InputContext, start_step: int) -> tf.data.Dataset:
        if rule.buckets(is_training) and not is_training:
            arrays = bucketing.read_arrays(path, functools.partial(decode_record, features=spec))
            return bucketing.eval_batches(arrays, batch_size, context, rule.max_seq_length)
        return feature_dataset(
            path, spec, batch_size, is_training, shuffle=not options.deterministic,
            seed=options.seed, input_context=context, start_step=start_step, bucketing=rule,
        )

    return make


def bucketing_rule(options) -> bucketing.Bucketing:
    """`--bucketing` and `--max_seq_length` of a job's options, as one rule."""
    return bucketing.Bucketing(options.bucketing, options.max_seq_length)


def predict(strategy: tf.distribute.Strategy, model: keras.Model, predict_fn: Callable,
            dataset_fn: loop.DatasetFn, options: FineTuningOptions) -> dict[str, np.ndarray]:
    """`predict_fn(outputs, batch)` over the whole dataset (`record_batches`), rows
    concatenated in the file's order; per-position outputs [B, max_seq_length, ...]."""
    rule = bucketing_rule(options)
    bucketed = rule.buckets(is_training=False)
    if bucketed:
        predict_fn = bucketing.keeping_example_order(predict_fn, rule.max_seq_length)
    started = time.time()
    batches = list(loop.predict(strategy, model, predict_fn, dataset_fn,
                                    options.jit_compile))
    logging.info("Predicted %d batches in %.1f s", len(batches), time.time() - started)
    outputs = {key: np.concatenate([batch[key] for batch in batches]) for key in batches[0]}
    return bucketing.in_example_order(outputs) if bucketed else outputs


def report(strategy: tf.distribute.Strategy, output_dir: str, results: dict) -> dict:
    """Logs eval results and, on the chief, writes `output_dir/eval_results.txt` (the
    original's format). Returns `results`."""
    if strategy.extended.should_checkpoint:
        file_io.write_results(os.path.join(output_dir, "eval_results.txt"), results)
    for key in sorted(results):
        logging.info("  %s = %s", key, results[key])
    return results


def dtype_policy(mixed_precision: str) -> str:
    """`--mixed_precision` ("" | "bf16" | "fp16") -> a Keras dtype policy name."""
    if mixed_precision not in MIXED_PRECISION:
        raise UsageError(
            f"mixed_precision: expected one of {sorted(MIXED_PRECISION)}, got {mixed_precision!r}"
        )
    return MIXED_PRECISION[mixed_precision]


def make_optimizer(options: TrainingOptions, num_train_steps: int, num_warmup_steps: int):
    """The optimizer the shared flags ask for (`learning_rate`, `optimizer`,
    `mixed_precision`): the original schedule, wrapped for loss scaling under fp16."""
    optimizer = create_optimizer(options.learning_rate, max(num_train_steps, 1),
                                 num_warmup_steps, options.optimizer)
    if options.mixed_precision == "fp16":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def run_config(options: TrainingOptions, num_train_steps: int) -> loop.RunConfig:
    """RunConfig from the shared flags of the training scripts; refuses values with which
    training would divide by zero or take no step."""
    check_run_flags(options)
    if num_train_steps < 1:
        raise UsageError(
            f"training would take {num_train_steps} steps: num_train_steps (or num_train_epochs "
            f"x examples / train_batch_size) must give at least 1"
        )
    return loop.RunConfig(
        output_dir=options.output_dir, num_train_steps=num_train_steps,
        global_batch_size=options.train_batch_size, init_checkpoint=options.init_checkpoint,
        save_checkpoints_steps=options.save_checkpoints_steps,
        steps_per_execution=options.iterations_per_loop,
        keep_checkpoint_max=options.keep_checkpoint_max, jit_compile=options.jit_compile,
        gradient_accumulation_steps=options.gradient_accumulation_steps,
    )


def check_run_flags(options: TrainingOptions) -> None:
    """Refuses step and checkpoint counts with which training would divide by zero."""
    for flag in ("save_checkpoints_steps", "iterations_per_loop", "gradient_accumulation_steps"):
        if getattr(options, flag) < 1:
            raise UsageError(f"{flag} must be at least 1, found {getattr(options, flag)}")
    if options.keep_checkpoint_max < 0:
        raise UsageError(f"keep_checkpoint_max must be >= 0 (0 keeps all), found "
                         f"{options.keep_checkpoint_max}")


def set_determinism(deterministic: bool, seed: int | None) -> None:
    """Seeds Python, NumPy, TensorFlow and Keras (when `seed` is given, or 0 under
    `deterministic`) and, under `deterministic`, makes TensorFlow ops deterministic."""
    if deterministic:
        seed = 0 if seed is None else seed
        tf.config.experimental.enable_op_determinism()
    if seed is not None:
        keras.utils.set_random_seed(seed)


def check_batch_size(flag: str, batch_size: int, parts: int) -> None:
    """The global batch must split evenly over the replicas (times the accumulation
    slices, for training)."""
    if batch_size <= 0 or batch_size % parts:
        raise UsageError(
            f"{flag}={batch_size} must be a positive multiple of the number of replicas "
            f"times gradient_accumulation_steps ({parts})"
        )


# The shortest sequences: `[CLS] a [SEP]` and `[CLS] a [SEP] b [SEP]` with one piece each.
SHORTEST_SINGLE, SHORTEST_PAIR = 3, 5


def check_sequence_length(max_seq_length: int, config: BertConfig | None, config_file: str,
                          minimum: int = SHORTEST_SINGLE) -> None:
    """`max_seq_length` must hold the shortest input (`minimum`: [CLS], one piece and [SEP])
    and fit the model's position embeddings."""
    if max_seq_length < minimum:
        shape = "[CLS] a [SEP]" if minimum == SHORTEST_SINGLE else "[CLS] a [SEP] b [SEP]"
        raise UsageError(
            f"max_seq_length={max_seq_length} is too short: the shortest input, {shape} with "
            f"one word piece per text, takes {minimum}")
    if config is not None and max_seq_length > config.max_position_embeddings:
        raise UsageError(
            f"max_seq_length={max_seq_length} exceeds max_position_embeddings="
            f"{config.max_position_embeddings} of {config_file}"
        )


def hold_output_dir(options: TrainingOptions,
                    strategy: tf.distribute.Strategy) -> contextlib.AbstractContextManager:
    """A training script's output lock (script.main): its `output_dir`, held for the run."""
    return output_folder(strategy, options.output_dir)


@contextlib.contextmanager
def output_folder(strategy: tf.distribute.Strategy, output_dir: str) -> Iterator[None]:
    """Makes `output_dir` and, on the chief, holds its lock for the block (a second run into
    the same folder is refused, naming the holder) and removes what interrupted runs left
    staged there. Other workers of a multi-worker run write nothing there themselves."""
    try:
        tf.io.gfile.makedirs(output_dir)
    except (tf.errors.OpError, OSError) as error:
        raise file_io.OutputError(
            f"output_dir: cannot create {output_dir}: {describe_os_error(error)}"
        ) from None
    if not strategy.extended.should_checkpoint:
        yield
        return
    with file_io.holding_output(os.path.join(output_dir, ""), "output_dir"):
        file_io.check_writable([os.path.join(output_dir, "checkpoint")])
        yield
