"""Reading and writing checkpoints in Google's name-based layout.

A Google BERT checkpoint (`bert_model.ckpt.index` + `.data-00000-of-00001`) maps variable
names such as `bert/encoder/layer_0/attention/self/query/kernel` to tensors. The Keras
models of this package use exactly those names as variable paths, so loading is a
name-for-name copy and saving is the reverse. Checkpoints written here are plain TF1
name-based bundles: `tf.train.load_checkpoint`, the original code's `init_from_checkpoint`
and this loader all read them.

Names that training adds and a model does not own are ignored when loading unless the
caller asks for them: `global_step`, optimizer slots (`<var>/adam_m`, `<var>/adam_v`) and the
dropout seed states the training driver saves so that a resumed run draws the same masks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from bert_tf import file_io
from bert_tf.errors import BertTfError, describe_os_error

SEED_STATE_SUFFIX = "seed_generator_state"  # Keras dropout RNG state, saved by training
TRAINING_STATE_SUFFIXES = ("/adam_m", "/adam_v", SEED_STATE_SUFFIX)
GLOBAL_STEP = "global_step"
CHECKPOINT_PREFIX = "model.ckpt"  # what training writes: model.ckpt-<step>

# The files of one checkpoint: model.ckpt-<step>.index and .data-<shard>-of-<shards>.
CHECKPOINT_FILE = re.compile(re.escape(CHECKPOINT_PREFIX) + r"-(\d+)\.(index|data-.*)")


class CheckpointError(BertTfError, ValueError):
    """A checkpoint that is missing, unreadable or does not fit the model."""


class CorruptCheckpointError(CheckpointError):
    """A checkpoint whose index or data cannot be read (truncated, missing, bad checksum)."""


@dataclasses.dataclass
class LoadReport:
    """What `load_checkpoint` did: names copied, names it could not fill, names left over."""

    checkpoint: str
    loaded: list[str]
    missing: list[str]  # in the model, not in the checkpoint (left at their initial values)
    unexpected: list[str]  # in the checkpoint, not in the model
    ignored: list[str]  # global_step and optimizer slots the caller did not ask for

    def __str__(self) -> str:
        lines = [
            f"Loaded {len(self.loaded)} variables from {self.checkpoint}",
            f"  missing from the checkpoint ({len(self.missing)}): {', '.join(self.missing)}",
            f"  not used by the model ({len(self.unexpected)}): {', '.join(self.unexpected)}",
            f"  training state ignored: {len(self.ignored)} tensors",
        ]
        return "\n".join(lines)


def resolve_checkpoint(path: str) -> str:
    """Returns the checkpoint prefix that `path` names.

    `path` may be a prefix (`dir/bert_model.ckpt`, `dir/model.ckpt-1000`), one of its files
    (`.index`, `.data-00000-of-00001`), or a directory: there its newest checkpoint
    (`folder_checkpoints`: only checkpoints inside it count), else `bert_model.ckpt`.
    """
    for suffix in (".index", ".data-00000-of-00001"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
    if tf.io.gfile.exists(path + ".index"):
        return path
    if tf.io.gfile.isdir(path):
        found = folder_checkpoints(path)
        if found:
            return found[0]
        if tf.io.gfile.exists(os.path.join(path, "bert_model.ckpt.index")):
            return os.path.join(path, "bert_model.ckpt")
        found = sorted(tf.io.gfile.listdir(path))
        raise CheckpointError(
            f"{path}: directory holds no checkpoint (expected a 'checkpoint' state file or "
            f"bert_model.ckpt.index); found: {', '.join(found) or 'nothing'}"
        )
    raise CheckpointError(f"{path}: no checkpoint there (expected the file {path}.index)")


def numbered_checkpoints(folder: str) -> dict[int, str]:
    """Step -> prefix of every complete `model.ckpt-N` in `folder` (its `.index` exists;
    training renames the index into place after the data)."""
    steps = {}
    for index in tf.io.gfile.glob(os.path.join(folder, f"{CHECKPOINT_PREFIX}-*.index")):
        match = CHECKPOINT_FILE.fullmatch(os.path.basename(index))
        if match and match.group(2) == "index":
            steps[int(match.group(1))] = index[: -len(".index")]
    return steps


def folder_checkpoints(folder: str) -> list[str]:
    """The checkpoints of `folder`, newest first: every complete `model.ckpt-N` found by a
    directory scan (a run killed between writing a checkpoint and updating the state file
    still finds it), and the `checkpoint` state file's latest when it names another
    complete checkpoint in this folder. Only checkpoints inside the folder count: a state
    file naming one elsewhere (or garbage) is ignored with a warning."""
    steps = numbered_checkpoints(folder)
    try:
        from_state = tf.train.latest_checkpoint(folder)
    except (tf.errors.OpError, ValueError) as error:  # unparsable state file
        logging.warning("%s/checkpoint: ignored, not a checkpoint state file (%s)",
                        folder, describe_os_error(error))
        from_state = None
    if from_state and from_state not in steps.values():
        if not _inside(from_state, folder):
            logging.warning("%s/checkpoint: ignored, it names %s, which is not in that folder "
                            "(only a folder's own checkpoints count)", folder, from_state)
        else:
            match = re.search(r"-(\d+)$", from_state)
            steps.setdefault(int(match.group(1)) if match else -1, from_state)
    return [steps[step] for step in sorted(steps, reverse=True)]


def _inside(prefix: str, folder: str) -> bool:
    """True when the checkpoint `prefix` lies directly in `folder`."""
    if file_io.is_local(prefix):
        return os.path.realpath(os.path.dirname(prefix)) == os.path.realpath(folder)
    return os.path.dirname(prefix).rstrip("/") == folder.rstrip("/")


def check_config_fits(path: str, config, config_file: str) -> None:
    """Refuses, before a model is built, a config whose size disagrees with the checkpoint
    at `path` (read from its index alone): the word embeddings' [vocab_size, width] and, in
    the BERT layout, the number of encoder layers. Building a model first could take
    minutes (or all memory) for a config that cannot load this checkpoint anyway."""
    shapes = list_variables(path)
    width = getattr(config, "embedding_size", None) or config.hidden_size
    found = shapes.get("bert/embeddings/word_embeddings")
    if found is not None and found != [config.vocab_size, width]:
        raise CheckpointError(
            f"{path}: bert/embeddings/word_embeddings is {found} in the checkpoint but "
            f"[{config.vocab_size}, {width}] in the model of {config_file} (vocab_size, "
            f"hidden size): the config and the checkpoint are of different models")
    layers = {int(match.group(1)) for name in shapes
              if (match := re.match(r"bert/encoder/layer_(\d+)/", name))}
    if layers and getattr(config, "num_hidden_groups", None) is None and (
            max(layers) + 1 != config.num_hidden_layers):
        raise CheckpointError(
            f"{config_file}: num_hidden_layers={config.num_hidden_layers}, but {path} holds "
            f"{max(layers) + 1} layers (bert/encoder/layer_0..{max(layers)}): the config and "
            f"the checkpoint are of different models")


def list_variables(path: str) -> dict[str, list[int]]:
    """Name -> shape of every tensor in the checkpoint at `path`."""
    shapes = _reader(resolve_checkpoint(path)).get_variable_to_shape_map()
    return {name: list(shape) for name, shape in shapes.items()}


def _reader(prefix: str):
    try:
        return tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as error:
        raise CorruptCheckpointError(
            f"{prefix}: cannot read the checkpoint index ({prefix}.index): "
            f"{describe_os_error(error)}"
        ) from None


def _read_tensor(reader, prefix: str, name: str) -> np.ndarray:
    try:
        return reader.get_tensor(name)
    except (tf.errors.OpError, ValueError, IndexError) as error:  # IndexError: short read
        raise CorruptCheckpointError(
            f"{prefix}: variable {name}: cannot read its data ({describe_os_error(error)}); "
            f"the .data file is missing, truncated or corrupt"
        ) from None


def require_complete(report: LoadReport, allowed_prefixes: Sequence[str] = ()) -> None:
    """Refuses a load that left model variables at their initial values, except names
    starting with one of `allowed_prefixes` (the head a fine-tuning job adds). Paths that
    do not train call this with no allowed prefix: random weights are never used silently."""
    missing = [name for name in report.missing if not name.startswith(tuple(allowed_prefixes))]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise CheckpointError(
            f"{report.checkpoint}: lacks {len(missing)} of the model's "
            f"{len(report.loaded) + len(report.missing)} variables ({shown}); they would keep "
            f"random values. Is it a checkpoint of this model and task?"
        )


def is_training_state(name: str) -> bool:
    """`global_step`, optimizer slots and dropout seed states: what training adds."""
    return name == GLOBAL_STEP or name.endswith(TRAINING_STATE_SUFFIXES)


def model_variables(model: keras.Layer) -> dict[str, keras.Variable]:
    """Checkpoint name (the Keras path) -> variable, for every variable of `model`."""
    variables: dict[str, keras.Variable] = {}
    for variable in model.weights:
        if variable.path in variables and variables[variable.path] is not variable:
            raise CheckpointError(f"two variables of the model share the path {variable.path}")
        variables[variable.path] = variable
    return variables


def load_checkpoint(
    model: keras.Layer,
    path: str,
    extra_variables: Mapping[str, keras.Variable | tf.Variable] | None = None,
) -> LoadReport:
    """Copies every variable of `model` that the checkpoint at `path` holds into the model.

    Args:
      model: a Keras model or layer whose variable paths are checkpoint names
        (`bert/encoder/layer_0/attention/self/query/kernel`); built on first use.
      path: a checkpoint prefix (`.../bert_model.ckpt`) or a folder (its newest checkpoint).
      extra_variables: further checkpoint names (e.g. optimizer slots, `global_step`) ->
        variables to restore as well.

    Returns:
      A `LoadReport`: the names loaded, the model's names the checkpoint lacks, and the
      checkpoint's names the model has no variable for.

    Raises:
      CheckpointError, before changing anything, when a shared name has a different shape
      (e.g. a BERT-Large checkpoint with a Base config), when the checkpoint holds none of
      the model's variables, or when it cannot be read.

    Example (a published model; `require_complete` refuses a partial load):

    ```python
    config = BertConfig.from_json_file("uncased_L-12_H-768_A-12/bert_config.json")
    model = BertModel(config)
    report = load_checkpoint(model, "uncased_L-12_H-768_A-12/bert_model.ckpt")
    print(report)              # Loaded 199 variables from ...; missing (0) ...
    require_complete(report)   # every model variable came from the checkpoint
    save_checkpoint(model, "/tmp/copy/bert_model.ckpt")  # the same names, back out
    ```
    """
    prefix = resolve_checkpoint(path)
    reader = _reader(prefix)
    shapes = reader.get_variable_to_shape_map()
    targets = {**model_variables(model), **(extra_variables or {})}

    matched = matching_names(prefix, targets, shapes)
    values = {name: _read_tensor(reader, prefix, name) for name in matched}
    for name in matched:  # assigned only once every tensor has been read and checksummed
        variable = targets[name]
        variable.assign(tf.cast(values[name], variable.dtype))

    leftover = sorted(name for name in shapes if name not in targets)
    report = LoadReport(
        checkpoint=prefix,
        loaded=matched,
        missing=sorted(name for name in targets if name not in shapes),
        unexpected=[name for name in leftover if not is_training_state(name)],
        ignored=[name for name in leftover if is_training_state(name)],
    )
    logging.info("%s", report)
    return report


def matching_names(prefix: str, targets: Mapping, shapes: Mapping) -> list[str]:
    """The names both the model (`targets`) and the checkpoint (`shapes`) hold, sorted;
    refuses a name whose shapes differ, or no name in common."""
    matched = sorted(name for name in targets if name in shapes)
    for name in matched:
        want, found = tuple(targets[name].shape), tuple(shapes[name])
        if want != found:
            raise CheckpointError(
                f"{prefix}: variable {name} has shape {list(found)} in the checkpoint but "
                f"{list(want)} in the model; the checkpoint was made with another config "
                f"(e.g. hidden_size, vocab_size or max_position_embeddings differ)"
            )
    if not matched:
        sample = ", ".join(sorted(shapes)[:5])
        raise CheckpointError(
            f"{prefix}: none of the model's variables (e.g. {next(iter(targets), '-')}) are "
            f"in this checkpoint; it holds {len(shapes)} tensors such as: {sample}"
        )
    return matched


def save_checkpoint(
    model: keras.Layer,
    prefix: str,
    global_step: int | None = None,
    extra_variables: Mapping[str, keras.Variable | tf.Variable | np.ndarray] | None = None,
) -> str:
    """Writes `model`'s variables under their names as a TF1 checkpoint at `prefix`.

    The bundle is written under a temporary prefix and then renamed, data file first, so a
    reader never sees an index without its data.

    Args:
      model: a built Keras model or layer; each variable is saved under its path.
      prefix: the checkpoint prefix to write (`.../model.ckpt`: `.index` and `.data-*`).
      global_step: saved as the int64 scalar `global_step` when given.
      extra_variables: further name -> value (e.g. optimizer slots `<var>/adam_m`).

    Returns:
      `prefix`.
    """
    tensors = dict(model_variables(model))
    for name, value in (extra_variables or {}).items():
        if name in tensors:
            raise CheckpointError(f"{prefix}: extra variable {name} clashes with a model variable")
        tensors[name] = value
    if global_step is not None:
        tensors[GLOBAL_STEP] = np.int64(global_step)
    return save_tensors(prefix, tensors)


def save_tensors(
    prefix: str, tensors: Mapping[str, keras.Variable | tf.Variable | np.ndarray]
) -> str:
    """Writes name -> tensor as a TF1 checkpoint bundle at `prefix`, atomically: under a
    staging prefix first (file_io.staging_path), then renamed, data file before index.
    On any failure (a full disk) the staged files are removed and a CheckpointError names
    the prefix and the reason. Returns `prefix`."""
    directory = os.path.dirname(prefix)
    temporary = file_io.staging_path(prefix)
    names = sorted(tensors)
    try:
        file_io.staging_folder(directory)
        tf.raw_ops.SaveV2(
            prefix=temporary,
            tensor_names=names,
            shape_and_slices=[""] * len(names),
            tensors=[tf.convert_to_tensor(tensors[name]) for name in names],
        )
        for suffix in (".data-00000-of-00001", ".index"):
            tf.io.gfile.rename(temporary + suffix, prefix + suffix, overwrite=True)
    except BaseException as error:
        for path in tf.io.gfile.glob(temporary + "*"):
            with contextlib.suppress(tf.errors.OpError):
                tf.io.gfile.remove(path)
        if file_io.is_io_error(error):
            raise CheckpointError(
                f"{prefix}: cannot write the checkpoint: {describe_os_error(error)}"
            ) from None
        raise
    finally:
        file_io.removedirs_quietly(os.path.join(directory, file_io.STAGING_FOLDER))
    return prefix
