"""The one training driver: train, evaluate and predict under any tf.distribute strategy.

What is trained is an `Objective` (`objectives.py`): its loss on the model's outputs, with
the normalizers that make replicas' shares add up to the one-device loss; evaluation
also takes its `Metrics`. One train step: forward/backward per replica (XLA-compiled with
`jit_compile`), gradients summed over replicas, clipped to global norm 1.0 (as one device
would), then the optimizer. `steps_per_execution` steps (the original
`iterations_per_loop`) run inside one `tf.function` call; after each call the loop logs,
checks the loss is finite and saves when due (`resume.save`: `output_dir/model.ckpt-N` in
the original layout). A run restarts from the latest checkpoint (`resume`).
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Iterator
from typing import Protocol

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from bert_tf.errors import BertTfError, UsageError
from bert_tf.progress import Progress
from bert_tf.training import resume
from bert_tf.training.optimization import clip_by_global_norm

# dataset_fn(input_context, start_step) -> a tf.data.Dataset of per-replica batches.
DatasetFn = Callable[[tf.distribute.InputContext, int], tf.data.Dataset]


class Objective(Protocol):
    """What the driver trains: a loss on the model's outputs for one replica's batch."""

    def normalizers(self, batch: dict) -> dict:
        """Counts that normalize the loss on this replica's batch (e.g. examples, the sum
        of masked-LM weights); the driver sums them over replicas."""

    def loss(self, outputs, batch: dict, normalizers: dict):
        """This replica's share of the global-batch loss (scalar) on `outputs`, what the
        model returns (a tensor or a dict of them): local sums divided by the *global*
        normalizers, so the shares add up to the one-device loss."""


class Metrics(Protocol):
    """What `evaluate` reports: per-batch sums, then the reported values."""

    def metrics(self, outputs, batch: dict) -> dict:
        """{name: scalar sum over this replica's batch}; the driver adds replicas."""

    def finalize_metrics(self, batches: list[dict]) -> dict:
        """The per-batch sums of every eval batch -> the reported values."""


@dataclasses.dataclass
class RunConfig:
    """How to train: where checkpoints go, how many steps, how often to save and log."""

    output_dir: str
    num_train_steps: int = 0
    global_batch_size: int = 0  # for the examples/s figure
    # Weights to start from when output_dir holds no checkpoint; only the model's head
    # (`model.HEAD_VARIABLES`) may be missing from it.
    init_checkpoint: str | None = None
    save_checkpoints_steps: int = 1000
    steps_per_execution: int = 1000  # the original iterations_per_loop
    keep_checkpoint_max: int = 5
    clip_norm: float = 1.0
    jit_compile: bool = False
    # Split each replica's batch into this many slices, one forward/backward each, and
    # apply their summed gradient: large batches on small memory, the same update.
    gradient_accumulation_steps: int = 1


class NonFiniteLossError(BertTfError, FloatingPointError):
    """The training loss became NaN or infinite."""


def _replica_sum(values):
    """Sums a (nest of) tensors over the replicas; the identity with one replica."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return values
    return context.all_reduce(tf.distribute.ReduceOp.SUM, values)


def _first_replica(strategy: tf.distribute.Strategy, value):
    """One replica's copy of a value that is identical on every replica."""
    return strategy.experimental_local_results(value)[0]


def make_train_function(strategy, model, optimizer, objective: Objective, run_config: RunConfig):
    """Returns `train_steps(iterator, num_steps) -> (loss, learning_rate)` of the last step."""
    variables = model.trainable_variables
    # This driver sums (and clips) the replicas' gradients; the optimizer must not again.
    getattr(optimizer, "inner_optimizer", optimizer).sums_replica_gradients = False

    @tf.function(jit_compile=run_config.jit_compile)
    def forward_backward(batch, normalizers):
        with tf.GradientTape() as tape:
            outputs = model(batch, training=True)
            loss = objective.loss(outputs, batch, normalizers)
            scaled_loss = optimizer.scale_loss(loss)
        return loss, tape.gradient(scaled_loss, variables)

    def accumulated_gradients(batch, normalizers):
        """forward_backward over `gradient_accumulation_steps` slices of the batch, summed.
        The losses are local sums over global normalizers, so the sum over slices is
        exactly the whole batch's loss and gradient, with one slice's activations."""
        # Variables the loss does not use (the pooler, for SQuAD) get no gradient and no
        # update, as in the original. Gathers give IndexedSlices; the original's one-hot
        # lookups give dense gradients and a dense global norm: densify before summing.
        slices = run_config.gradient_accumulation_steps
        size = tf.shape(batch["input_ids"])[0] // slices

        def part(index):
            return {name: value[index * size:(index + 1) * size] for name, value in batch.items()}

        loss, gradients = forward_backward(part(0) if slices > 1 else batch, normalizers)
        used = [i for i, g in enumerate(gradients) if g is not None]
        gradients = [tf.convert_to_tensor(gradients[i]) for i in used]
        if slices > 1:
            for index in tf.range(1, slices):
                slice_loss, slice_gradients = forward_backward(part(index), normalizers)
                loss += slice_loss
                gradients = [g + tf.convert_to_tensor(slice_gradients[i])
                             for g, i in zip(gradients, used, strict=True)]
        return loss, gradients, [variables[i] for i in used]

    def replica_step(batch):
        normalizers = _replica_sum(objective.normalizers(batch))
        loss, gradients, used = accumulated_gradients(batch, normalizers)
        gradients = _replica_sum(gradients)
        # Loss scaling scales the gradients: clip at the scaled norm (the optimizer unscales).
        clip_norm = run_config.clip_norm * getattr(optimizer, "dynamic_scale", 1.0)
        gradients, _ = clip_by_global_norm(gradients, clip_norm)
        learning_rate = optimizer.learning_rate
        optimizer.apply(gradients, used)
        return _replica_sum(loss), learning_rate

    @tf.function
    def train_steps(iterator, num_steps):
        loss = tf.constant(0.0)
        learning_rate = tf.constant(0.0)
        for _ in tf.range(num_steps):
            step_loss, step_rate = strategy.run(replica_step, args=(next(iterator),))
            loss = _first_replica(strategy, step_loss)
            learning_rate = _first_replica(strategy, step_rate)
        return loss, learning_rate

    return train_steps, forward_backward


def train(
    strategy: tf.distribute.Strategy,
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    objective: Objective,
    dataset_fn: DatasetFn,
    run_config: RunConfig,
) -> list[tuple[int, float]]:
    """Trains to `run_config.num_train_steps`, saving and resuming in `output_dir`.

    `model` and `optimizer` must have been created under `strategy.scope()`. Returns the
    (global step, loss) after each `steps_per_execution` loop of this run.
    """
    output_dir, total = run_config.output_dir, run_config.num_train_steps
    tf.io.gfile.makedirs(output_dir)
    with strategy.scope():
        optimizer.build(model.trainable_variables)
    start_step = resume.restore_or_initialize(model, optimizer, output_dir,
                                              run_config.init_checkpoint,
                                              getattr(model, "HEAD_VARIABLES", ()))
    if start_step >= total:
        logging.info("Global step %d already reaches num_train_steps=%d", start_step, total)
        return []
    iterator = iter(strategy.distribute_datasets_from_function(
        lambda context: dataset_fn(context, start_step)
    ))
    train_steps, _ = make_train_function(strategy, model, optimizer, objective, run_config)
    log = _ProgressLog(strategy, run_config, start_step)
    history, step = [], start_step
    while step < total:
        num_steps, loop_start = _steps_to_next_stop(step, run_config), time.time()
        try:
            loss, learning_rate = train_steps(iterator, tf.constant(num_steps))
        except tf.errors.InvalidArgumentError as error:
            raise _input_error(error, step) from None
        except (tf.errors.UnavailableError, tf.errors.AbortedError,
                tf.errors.DeadlineExceededError, tf.errors.CancelledError) as error:
            if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
                raise _lost_worker(error, step, output_dir) from None
            raise
        loss, step = float(loss), int(optimizer.iterations.numpy())
        history.append((step, loss))
        log.write(step, num_steps, loss, float(learning_rate), time.time() - loop_start)
        if not np.isfinite(loss):
            raise NonFiniteLossError(
                f"loss is {loss} at global step {step}; lower --learning_rate, or check the "
                f"input records (the last checkpoint is {resume.latest_checkpoint(output_dir)})"
            )
        if log.is_chief and (step % run_config.save_checkpoints_steps == 0 or step == total):
            logging.info("Saved %s", resume.save(model, optimizer, output_dir,
                                                 run_config.keep_checkpoint_max))
    log.close()
    return history


def _lost_worker(error: tf.errors.OpError, step: int, output_dir: str) -> BertTfError:
    """A collective that failed because a peer worker died or stopped answering (TF's
    connection reset, or the strategy's health check aborting collectives)."""
    found = re.search(r"aborted by: ([^\n]*)", error.message or "")
    reason = found.group(1).strip() if found else type(error).__name__
    return BertTfError(
        f"multi_worker: another worker stopped answering after global step {step} "
        f"({reason}); restart every worker with the same command: "
        f"they resume from the last checkpoint ({resume.latest_checkpoint(output_dir)})")


def _steps_to_next_stop(step: int, run_config: RunConfig) -> int:
    """Steps in the next `train_steps` call: up to steps_per_execution, stopping at the
    next checkpoint and at the end."""
    to_save = run_config.save_checkpoints_steps - step % run_config.save_checkpoints_steps
    return min(run_config.steps_per_execution, run_config.num_train_steps - step, to_save)


class _ProgressLog:
    """The progress line after each loop (step, loss, learning rate, examples/s, time
    left) and, on the chief, the same as TensorBoard summaries in output_dir."""

    def __init__(self, strategy: tf.distribute.Strategy, run_config: RunConfig,
                 start_step: int):
        self.run_config, self.start_step = run_config, start_step
        self.is_chief = strategy.extended.should_checkpoint
        self.writer = (tf.summary.create_file_writer(run_config.output_dir)
                       if self.is_chief else None)
        self.started = time.time()

    def write(self, step: int, num_steps: int, loss: float, learning_rate: float,
              seconds: float) -> None:
        total = self.run_config.num_train_steps
        examples_per_second = num_steps * self.run_config.global_batch_size / seconds
        remaining = (time.time() - self.started) / (step - self.start_step) * (total - step)
        logging.info(
            "step %d/%d  loss %.6f  lr %.3e  %.1f examples/s  eta %s",
            step, total, loss, learning_rate, examples_per_second, _duration(remaining),
        )
        if self.writer:
            with self.writer.as_default(step=step):
                tf.summary.scalar("loss", loss)
                tf.summary.scalar("learning_rate", learning_rate)
                tf.summary.scalar("examples_per_second", examples_per_second)

    def close(self) -> None:
        if self.writer:
            self.writer.flush()


class InputDataError(BertTfError, ValueError):
    """Records whose values do not fit the model (e.g. token ids past vocab_size)."""


def _input_error(error: tf.errors.InvalidArgumentError, step: int) -> Exception:
    """An out-of-range lookup in a train step -> what the user can do about it. Whichever
    op meets the id first reports it: the embedding gather (`indices[..] = N is not in
    [0, V)`) or its gradient's segment sum (`segment_ids[..] = N is out of range [0, V)`)."""
    found = re.search(r"(indices\[[\d,]*\] = -?\d+ is not in \[0, \d+\))|"
                      r"(segment_ids\[[\d,]*\] = -?\d+ is out of range \[0, \d+\))",
                      error.message)
    if found:
        return InputDataError(
            f"an input id is out of range after global step {step} ({found.group(0)}): the records "
            f"hold token ids of a larger vocabulary than bert_config's vocab_size (or segment "
            f"ids past type_vocab_size); make them with the model's vocab.txt"
        )
    return error


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


def make_eval_function(strategy, model, metrics: Metrics, jit_compile: bool = False):
    """Returns `eval_step(iterator) -> {name: sum over the global batch}`."""

    @tf.function(jit_compile=jit_compile)
    def replica_metrics(batch):
        return metrics.metrics(model(batch, training=False), batch)

    @tf.function
    def eval_step(iterator):
        sums = strategy.run(replica_metrics, args=(next(iterator),))
        return {
            name: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
            for name, value in sums.items()
        }

    return eval_step, replica_metrics


def evaluate(
    strategy: tf.distribute.Strategy,
    model: keras.Model,
    metrics: Metrics,
    dataset_fn: DatasetFn,
    num_steps: int | None,
    jit_compile: bool = False,
) -> dict[str, float]:
    """Runs `num_steps` eval batches (None: until the dataset ends) and returns
    `metrics.finalize_metrics` of the per-batch metric sums."""
    dataset = strategy.distribute_datasets_from_function(lambda context: dataset_fn(context, 0))
    eval_step, _ = make_eval_function(strategy, model, metrics, jit_compile)
    iterator = iter(dataset)
    batches: list[dict[str, float]] = []
    progress = Progress("eval", num_steps, "steps", log_every=100)
    for index in _steps(num_steps):
        try:
            batch_sums = eval_step(iterator)
        except (StopIteration, tf.errors.OutOfRangeError):
            break
        batches.append({name: float(value) for name, value in batch_sums.items()})
        progress.update(index + 1)
    progress.finish()
    if not batches:
        raise UsageError("evaluation read no batch: the eval data is empty")
    return metrics.finalize_metrics(batches)


def _steps(num_steps: int | None) -> Iterator[int]:
    step = 0
    while num_steps is None or step < num_steps:
        yield step
        step += 1


def make_predict_function(strategy, model, predict_fn, jit_compile: bool = False):
    """Returns `predict_step(iterator) -> per-replica predict_fn(model outputs, batch)`."""

    @tf.function(jit_compile=jit_compile)
    def replica_predict(batch):
        return predict_fn(model(batch, training=False), batch)

    @tf.function
    def predict_step(iterator):
        return strategy.run(replica_predict, args=(next(iterator),))

    return predict_step, replica_predict


def _num_workers(strategy: tf.distribute.Strategy) -> int:
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 1
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    return max(1, len(cluster.get("chief", [])) + len(cluster.get("worker", [])))


def predict(
    strategy: tf.distribute.Strategy,
    model: keras.Model,
    predict_fn: Callable[[dict, dict], dict],
    dataset_fn: DatasetFn,
    jit_compile: bool = False,
) -> Iterator[dict[str, np.ndarray]]:
    """Yields `predict_fn(model outputs, batch)` per global batch as numpy arrays (replicas'
    rows concatenated in replica order), until the dataset ends. Streams: nothing is held
    beyond one batch."""
    if _num_workers(strategy) > 1:
        raise UsageError(
            "prediction and GLUE/SQuAD evaluation gather every replica's rows on this process, "
            "so they need all replicas on one machine (one_device, mirrored or tpu); run them "
            "without multi_worker"
        )
    predict_step, _ = make_predict_function(strategy, model, predict_fn, jit_compile)
    dataset = strategy.distribute_datasets_from_function(lambda context: dataset_fn(context, 0))
    iterator = iter(dataset)
    progress = Progress("predict", None, "batches", log_every=100)
    for index in _steps(None):
        try:
            outputs = predict_step(iterator)
        except (StopIteration, tf.errors.OutOfRangeError):
            progress.finish()
            return
        progress.update(index + 1)
        yield {
            name: np.concatenate(
                [np.asarray(part) for part in strategy.experimental_local_results(value)]
            )
            for name, value in outputs.items()
        }


