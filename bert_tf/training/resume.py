"""A training run's checkpoints: `model.ckpt-N` rotation, the `checkpoint` state file, and
resuming from the newest intact one.

Each checkpoint is in the original layout (checkpoint.py) plus what training adds: the
`global_step`, the optimizer slots `<var>/adam_m|adam_v` and the dropout seed states, so a
resumed run draws the same masks. The `.index` file is renamed into place after the data,
so a checkpoint is complete when its index exists; rotation and resume scan the folder
rather than trust the state file, which a kill can leave one checkpoint behind.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Sequence

import keras
import tensorflow as tf
from absl import logging

from bert_tf import file_io
from bert_tf.training import checkpoint as checkpoint_lib

CHECKPOINT_PREFIX = checkpoint_lib.CHECKPOINT_PREFIX


def training_state(model: keras.Model, optimizer: keras.optimizers.Optimizer) -> dict:
    """Checkpoint name -> variable for what training adds to the model's own variables:
    `global_step`, optimizer slots and the dropout seed-generator states."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)  # unwrap LossScaleOptimizer
    return {checkpoint_lib.GLOBAL_STEP: optimizer.iterations, **inner.slot_variables(),
            **seed_states(model)}


def seed_states(model: keras.Model) -> dict:
    """The dropout seed-generator states, named by their place in the model:
    `<layer path>/seed_generator_<k>/seed_generator_state`, k counting one layer's
    generators in creation order. (Keras numbers generators per process, so its own names
    depend on what else the process built before: a resume in a notebook or a test would
    not find them.)"""
    by_layer: dict[str, list] = collections.defaultdict(list)
    for variable in model.non_trainable_variables:
        if variable.path.endswith(checkpoint_lib.SEED_STATE_SUFFIX):
            by_layer[variable.path.rsplit("/", 2)[0]].append(variable)
    return {f"{layer}/seed_generator_{k}/{checkpoint_lib.SEED_STATE_SUFFIX}": variable
            for layer, variables in by_layer.items() for k, variable in enumerate(variables)}


def latest_checkpoint(output_dir: str) -> str | None:
    """The newest complete checkpoint in `output_dir`, or None."""
    candidates = checkpoint_lib.folder_checkpoints(output_dir)
    return candidates[0] if candidates else None


def prune_checkpoints(output_dir: str, step: int, keep_checkpoint_max: int) -> list[str]:
    """Keeps the newest `keep_checkpoint_max` complete checkpoints up to `step` (0 keeps
    all) and removes the rest: older ones, ones past `step` (a resumed run fell back from
    them: unreadable, or written by an abandoned run) and data files whose index never
    came. Returns the names kept, oldest first."""
    complete = checkpoint_lib.numbered_checkpoints(output_dir)
    kept = sorted(n for n in complete if n <= step)
    if keep_checkpoint_max:
        kept = kept[-keep_checkpoint_max:]
    keep_names = {os.path.basename(complete[n]) for n in kept}
    pattern = os.path.join(output_dir, f"{CHECKPOINT_PREFIX}-*")
    for path in tf.io.gfile.glob(pattern):
        match = checkpoint_lib.CHECKPOINT_FILE.fullmatch(os.path.basename(path))
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
    for candidate in checkpoint_lib.folder_checkpoints(output_dir):
        try:
            report = checkpoint_lib.load_checkpoint(
                model, candidate, extra_variables=training_state(model, optimizer)
            )
        except checkpoint_lib.CorruptCheckpointError as error:
            logging.warning("Skipping an unreadable checkpoint: %s", error)
            continue
        seeds_missing = [n for n in report.missing
                         if n.endswith(checkpoint_lib.SEED_STATE_SUFFIX)]
        if seeds_missing and len(seeds_missing) == len(report.missing):
            logging.warning("%s holds no dropout seed states under this version's names "
                            "(written by an earlier one): training goes on with fresh dropout "
                            "masks", candidate)
        elif report.missing:
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
