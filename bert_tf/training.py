"""The one training driver: train, evaluate and predict under any tf.distribute strategy.

A task tells the driver three things (see `tasks/pretraining.py`, `tasks/glue.py`):
- `normalizers(batch)`: counts that normalize the loss (e.g. number of examples, sum of
  masked-LM weights) on this replica's batch; the driver sums them over replicas;
- `loss(outputs, batch, normalizers)`: this replica's share of the global-batch loss, i.e.
  local sums divided by the *global* normalizers, so the replicas' shares add up to exactly
  the loss one device computes on the whole batch;
- `metrics(outputs, batch)`: sums for evaluation (`{name: scalar}`), added over replicas;
  `finalize_metrics(per-batch sums)` -> the reported values.

One train step: forward/backward per replica (XLA-compiled with `jit_compile`), gradients
summed over replicas, clipped to global norm 1.0 (as one device would), then the optimizer.
`steps_per_execution` steps (the original `iterations_per_loop`) run inside one
`tf.function` call. Checkpoints are written in the original layout, `output_dir/model.ckpt-N`
with `bert/*`, `cls/*`, `global_step` and `<var>/adam_m|adam_v` (plus the dropout seed
states, so a resumed run draws the same masks), and listed in the `checkpoint` state file;
a run restarts from the latest one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from bert_tf import checkpoint as checkpoint_lib
from bert_tf import file_io
from bert_tf.errors import BertTfError, UsageError, describe_os_error
from bert_tf.optimization import clip_by_global_norm, create_optimizer

CHECKPOINT_PREFIX = "model.ckpt"
# The files of one checkpoint: model.ckpt-<step>.index and .data-<shard>-of-<shards>.
_CHECKPOINT_FILE = re.compile(re.escape(CHECKPOINT_PREFIX) + r"-(\d+)\.(index|data-.*)")

# dataset_fn(input_context, start_step) -> a tf.data.Dataset of per-replica batches.
DatasetFn = Callable[[tf.distribute.InputContext, int], tf.data.Dataset]


@dataclasses.dataclass
class RunConfig:
    """How to run: where checkpoints go, how many steps, how often to save and log."""

    output_dir: str
    num_train_steps: int = 0
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


MIXED_PRECISION = {"": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def dtype_policy(mixed_precision: str) -> str:
    """`--mixed_precision` ("" | "bf16" | "fp16") -> a Keras dtype policy name."""
    if mixed_precision not in MIXED_PRECISION:
        raise UsageError(
            f"mixed_precision: expected one of {sorted(MIXED_PRECISION)}, got {mixed_precision!r}"
        )
    return MIXED_PRECISION[mixed_precision]


def make_optimizer(options, num_train_steps: int, num_warmup_steps: int):
    """The optimizer the shared flags ask for (`learning_rate`, `optimizer`,
    `mixed_precision`): the original schedule, wrapped for loss scaling under fp16."""
    optimizer = create_optimizer(options.learning_rate, max(num_train_steps, 1),
                                 num_warmup_steps, options.optimizer)
    if options.mixed_precision == "fp16":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def run_config(options, num_train_steps: int) -> RunConfig:
    """RunConfig from the shared flags of the training scripts; refuses values with which
    training would divide by zero or take no step."""
    for flag in ("save_checkpoints_steps", "iterations_per_loop", "gradient_accumulation_steps"):
        if getattr(options, flag) < 1:
            raise UsageError(f"{flag} must be at least 1, found {getattr(options, flag)}")
    if options.keep_checkpoint_max < 0:
        raise UsageError(f"keep_checkpoint_max must be >= 0 (0 keeps all), found "
                         f"{options.keep_checkpoint_max}")
    if num_train_steps < 1:
        raise UsageError(
            f"training would take {num_train_steps} steps: num_train_steps (or num_train_epochs "
            f"x examples / train_batch_size) must give at least 1"
        )
    return RunConfig(
        output_dir=options.output_dir, num_train_steps=num_train_steps,
        save_checkpoints_steps=options.save_checkpoints_steps,
        steps_per_execution=options.iterations_per_loop,
        keep_checkpoint_max=options.keep_checkpoint_max, jit_compile=options.jit_compile,
        gradient_accumulation_steps=options.gradient_accumulation_steps,
    )


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


def check_sequence_length(max_seq_length: int, config, config_file: str) -> None:
    """`max_seq_length` must fit the model's position embeddings."""
    if max_seq_length > config.max_position_embeddings:
        raise UsageError(
            f"max_seq_length={max_seq_length} exceeds max_position_embeddings="
            f"{config.max_position_embeddings} of {config_file}"
        )


def training_state(model: keras.Model, optimizer: keras.optimizers.Optimizer) -> dict:
    """Checkpoint name -> variable for what training adds to the model's own variables:
    `global_step`, optimizer slots and the dropout seed-generator states."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)  # unwrap LossScaleOptimizer
    state = {checkpoint_lib.GLOBAL_STEP: optimizer.iterations, **inner.slot_variables()}
    for variable in model.non_trainable_variables:
        if variable.path.endswith(checkpoint_lib.SEED_STATE_SUFFIX):
            state[variable.path] = variable
    return state


def complete_checkpoints(output_dir: str) -> dict[int, str]:
    """Step -> prefix of every complete `model.ckpt-N` in `output_dir` (its `.index`
    exists; the index is renamed into place after the data)."""
    steps = {}
    for index in tf.io.gfile.glob(os.path.join(output_dir, f"{CHECKPOINT_PREFIX}-*.index")):
        match = _CHECKPOINT_FILE.fullmatch(os.path.basename(index))
        if match and match.group(2) == "index":
            steps[int(match.group(1))] = index[: -len(".index")]
    return steps


def checkpoint_candidates(output_dir: str) -> list[str]:
    """Checkpoints to resume from, newest first: every complete `model.ckpt-N` found by a
    directory scan (so a run killed between writing a checkpoint and updating the state
    file still resumes from it), and the `checkpoint` state file's latest when it names
    another existing checkpoint. A garbage state file is ignored with a warning."""
    steps = complete_checkpoints(output_dir)
    try:
        from_state = tf.train.latest_checkpoint(output_dir)
    except (tf.errors.OpError, ValueError) as error:  # unparsable state file
        logging.warning("%s/checkpoint: ignored, not a checkpoint state file (%s)",
                        output_dir, describe_os_error(error))
        from_state = None
    if from_state and from_state not in steps.values():
        match = re.search(r"-(\d+)$", from_state)
        steps.setdefault(int(match.group(1)) if match else -1, from_state)
    return [steps[step] for step in sorted(steps, reverse=True)]


def latest_checkpoint(output_dir: str) -> str | None:
    """The newest complete checkpoint in `output_dir`, or None."""
    candidates = checkpoint_candidates(output_dir)
    return candidates[0] if candidates else None


def prune_checkpoints(output_dir: str, step: int, keep_checkpoint_max: int) -> list[str]:
    """Keeps the newest `keep_checkpoint_max` complete checkpoints up to `step` (0 keeps
    all) and removes the rest: older ones, ones past `step` (a resumed run fell back from
    them: unreadable, or written by an abandoned run) and data files whose index never
    came. Returns the names kept, oldest first."""
    complete = complete_checkpoints(output_dir)
    kept = sorted(n for n in complete if n <= step)
    if keep_checkpoint_max:
        kept = kept[-keep_checkpoint_max:]
    keep_names = {os.path.basename(complete[n]) for n in kept}
    pattern = os.path.join(output_dir, f"{CHECKPOINT_PREFIX}-*")
    for path in tf.io.gfile.glob(pattern):
        match = _CHECKPOINT_FILE.fullmatch(os.path.basename(path))
        if match and f"{CHECKPOINT_PREFIX}-{match.group(1)}" not in keep_names:
            tf.io.gfile.remove(path)
    return [os.path.basename(complete[n]) for n in kept]


def save(model, optimizer, output_dir: str, keep_checkpoint_max: int) -> str:
    """Writes `output_dir/model.ckpt-<global_step>`, prunes to the newest
    `keep_checkpoint_max` complete checkpoints (0 keeps all) by a directory scan, and
    rewrites the `checkpoint` state file (relative paths, as tf.train reads them)."""
    step = int(optimizer.iterations.numpy())
    prefix = os.path.join(output_dir, f"{CHECKPOINT_PREFIX}-{step}")
    checkpoint_lib.save_checkpoint(model, prefix, extra_variables=training_state(model, optimizer))
    names = prune_checkpoints(output_dir, step, keep_checkpoint_max)
    state_lines = [f'model_checkpoint_path: "{names[-1]}"']
    state_lines += [f'all_model_checkpoint_paths: "{name}"' for name in names]
    file_io.write_atomically(os.path.join(output_dir, "checkpoint"), "\n".join(state_lines) + "\n")
    return prefix


def restore_or_initialize(
    model, optimizer, output_dir: str, init_checkpoint: str | None = None,
    allowed_missing: Sequence[str] | None = None,
) -> int:
    """Resumes from the latest checkpoint in `output_dir` (weights, slots, global step, seed
    states); else loads `init_checkpoint` (model weights only). Returns the global step to
    start from. Raises CheckpointError before any step when a checkpoint does not fit the
    model.

    An unreadable latest checkpoint (truncated index or data) is skipped with a warning
    for the newest intact one. `allowed_missing`: variable-name prefixes `init_checkpoint`
    may lack (the head a fine-tuning job adds); None means this run only evaluates or
    predicts, so every variable must come from a checkpoint, and one must exist."""
    for candidate in checkpoint_candidates(output_dir):
        try:
            report = checkpoint_lib.load_checkpoint(
                model, candidate, extra_variables=training_state(model, optimizer)
            )
        except checkpoint_lib.CorruptCheckpointError as error:
            logging.warning("Skipping an unreadable checkpoint: %s", error)
            continue
        if report.missing:
            raise checkpoint_lib.CheckpointError(
                f"{candidate}: cannot resume, the checkpoint lacks {len(report.missing)} "
                f"variables of this model/optimizer, e.g. {report.missing[0]}; it was written "
                f"by another configuration (use a new output_dir)"
            )
        step = int(optimizer.iterations.numpy())
        logging.info("Resuming from %s at global step %d", candidate, step)
        return step
    if init_checkpoint:
        report = checkpoint_lib.load_checkpoint(model, init_checkpoint)
        checkpoint_lib.require_complete(report, allowed_missing or ())
        if report.missing:
            logging.warning("Initialized from %s; new (random) variables: %s",
                            report.checkpoint, ", ".join(report.missing))
        logging.info("Initialized from %s", report)
    elif allowed_missing is None:
        raise checkpoint_lib.CheckpointError(
            f"output_dir: {output_dir} holds no checkpoint and no --init_checkpoint was "
            f"given: evaluating or predicting would use random weights; train first "
            f"(--do_train) or pass the checkpoint to use"
        )
    return 0


def _replica_sum(values):
    """Sums a (nest of) tensors over the replicas; the identity with one replica."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return values
    return context.all_reduce(tf.distribute.ReduceOp.SUM, values)


def _first_replica(strategy: tf.distribute.Strategy, value):
    """One replica's copy of a value that is identical on every replica."""
    return strategy.experimental_local_results(value)[0]


def make_train_function(strategy, model, optimizer, task, run_config: RunConfig):
    """Returns `train_steps(iterator, num_steps) -> (loss, learning_rate)` of the last step."""
    variables = model.trainable_variables

    @tf.function(jit_compile=run_config.jit_compile)
    def forward_backward(batch, normalizers):
        with tf.GradientTape() as tape:
            outputs = model(batch, training=True)
            loss = task.loss(outputs, batch, normalizers)
            scaled_loss = optimizer.scale_loss(loss)
        return loss, tape.gradient(scaled_loss, variables)

    def accumulated_gradients(batch, normalizers):
        """forward_backward over `gradient_accumulation_steps` slices of the batch, summed.
        The losses are local sums over global normalizers, so the sum over slices is
        exactly the whole batch's loss and gradient, with one slice's activations."""
        # Variables the loss does not use (the pooler, for SQuAD) get no gradient and no
        # update, as in the original. Gathers (token types) give IndexedSlices; the
        # original's one-hot lookups give dense gradients, and its global norm is the dense
        # one: densify before summing and norms.
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
        normalizers = _replica_sum(task.normalizers(batch))
        loss, gradients, used = accumulated_gradients(batch, normalizers)
        gradients = _replica_sum(gradients)
        # Under loss scaling the gradients are scaled: clip at the scaled norm, and the
        # LossScaleOptimizer divides the scale out.
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
    task,
    dataset_fn: DatasetFn,
    run_config: RunConfig,
    global_batch_size: int,
    init_checkpoint: str | None = None,
) -> list[tuple[int, float]]:
    """Trains to `run_config.num_train_steps`, saving and resuming in `output_dir`.

    `model` and `optimizer` must have been created under `strategy.scope()`. Only the
    model's head (`model.HEAD_VARIABLES`) may be missing from `init_checkpoint`. Returns
    the (global step, loss) after each `steps_per_execution` loop of this run.
    """
    output_dir = run_config.output_dir
    tf.io.gfile.makedirs(output_dir)
    with strategy.scope():
        optimizer.build(model.trainable_variables)
    start_step = restore_or_initialize(model, optimizer, output_dir, init_checkpoint,
                                       getattr(model, "HEAD_VARIABLES", ()))
    total = run_config.num_train_steps
    if start_step >= total:
        logging.info("Global step %d already reaches num_train_steps=%d", start_step, total)
        return []
    dataset = strategy.distribute_datasets_from_function(
        lambda context: dataset_fn(context, start_step)
    )
    iterator = iter(dataset)
    train_steps, _ = make_train_function(strategy, model, optimizer, task, run_config)
    is_chief = strategy.extended.should_checkpoint
    writer = tf.summary.create_file_writer(output_dir) if is_chief else None

    history = []
    step = start_step
    started = time.time()
    while step < total:
        to_save = run_config.save_checkpoints_steps - step % run_config.save_checkpoints_steps
        num_steps = min(run_config.steps_per_execution, total - step, to_save)
        loop_start = time.time()
        try:
            loss, learning_rate = train_steps(iterator, tf.constant(num_steps))
        except tf.errors.InvalidArgumentError as error:
            raise _input_error(error, step) from None
        loss, learning_rate = float(loss), float(learning_rate)
        step = int(optimizer.iterations.numpy())
        seconds = time.time() - loop_start
        examples_per_second = num_steps * global_batch_size / seconds
        history.append((step, loss))
        remaining = (time.time() - started) / (step - start_step) * (total - step)
        logging.info(
            "step %d/%d  loss %.6f  lr %.3e  %.1f examples/s  eta %s",
            step, total, loss, learning_rate, examples_per_second, _duration(remaining),
        )
        if writer:
            with writer.as_default(step=step):
                tf.summary.scalar("loss", loss)
                tf.summary.scalar("learning_rate", learning_rate)
                tf.summary.scalar("examples_per_second", examples_per_second)
        if not np.isfinite(loss):
            raise NonFiniteLossError(
                f"loss is {loss} at global step {step}; lower --learning_rate, or check the "
                f"input records (the last checkpoint is {latest_checkpoint(output_dir)})"
            )
        if is_chief and (step % run_config.save_checkpoints_steps == 0 or step == total):
            prefix = save(model, optimizer, output_dir, run_config.keep_checkpoint_max)
            logging.info("Saved %s", prefix)
    if writer:
        writer.flush()
    return history


class InputDataError(BertTfError, ValueError):
    """Records whose values do not fit the model (e.g. token ids past vocab_size)."""


def _input_error(error: tf.errors.InvalidArgumentError, step: int) -> Exception:
    """An out-of-range lookup in a train step -> what the user can do about it."""
    found = re.search(r"indices\[[\d,]*\] = -?\d+ is not in \[0, \d+\)", error.message)
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


def make_eval_function(strategy, model, task, jit_compile: bool = False):
    """Returns `eval_step(iterator) -> {name: sum over the global batch}`."""

    @tf.function(jit_compile=jit_compile)
    def replica_metrics(batch):
        return task.metrics(model(batch, training=False), batch)

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
    task,
    dataset_fn: DatasetFn,
    num_steps: int | None,
    jit_compile: bool = False,
) -> dict[str, float]:
    """Runs `num_steps` eval batches (None: until the dataset ends) and returns
    `task.finalize_metrics` of the per-batch metric sums."""
    dataset = strategy.distribute_datasets_from_function(lambda context: dataset_fn(context, 0))
    eval_step, _ = make_eval_function(strategy, model, task, jit_compile)
    iterator = iter(dataset)
    batches: list[dict[str, float]] = []
    started = time.time()
    for index in _steps(num_steps):
        try:
            batch_sums = eval_step(iterator)
        except (StopIteration, tf.errors.OutOfRangeError):
            break
        batches.append({name: float(value) for name, value in batch_sums.items()})
        if (index + 1) % 100 == 0:
            logging.info("eval step %d  %.1f s", index + 1, time.time() - started)
    if not batches:
        raise UsageError("evaluation read no batch: the eval data is empty")
    return task.finalize_metrics(batches)


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
    started = time.time()
    for index in _steps(None):
        try:
            outputs = predict_step(iterator)
        except (StopIteration, tf.errors.OutOfRangeError):
            return
        if (index + 1) % 100 == 0:
            logging.info("predict batch %d  %.1f batches/s", index + 1,
                         (index + 1) / (time.time() - started))
        yield {
            name: np.concatenate(
                [np.asarray(part) for part in strategy.experimental_local_results(value)]
            )
            for name, value in outputs.items()
        }


def write_results(path: str, results: dict) -> None:
    """Writes `key = value` lines, keys sorted, floats as float32 (the original's
    `eval_results.txt` format), atomically (file_io.write_atomically)."""
    lines = []
    for key in sorted(results):
        value = results[key]
        text = str(np.float32(value)) if isinstance(value, float) else str(value)
        lines.append(f"{key} = {text}\n")
    file_io.write_atomically(path, "".join(lines))


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
