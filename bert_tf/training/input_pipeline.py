"""tf.data readers for the TFRecords this package (and the original code) writes."""

from __future__ import annotations

import re

import tensorflow as tf

from bert_tf import file_io
from bert_tf.data.records import RecordLayout
from bert_tf.errors import BertTfError
from bert_tf.training import bucketing as bucketing_lib
from bert_tf.training.masking import DynamicMasking, mask_batch


def fixed_features(lengths: dict[str, int], floats: tuple[str, ...] = ()) -> dict:
    """A parsing spec of fixed-length features: name -> length (0: one scalar value);
    int64 except the names in `floats` (float32)."""
    return {
        name: tf.io.FixedLenFeature([length] if length else [],
                                    tf.float32 if name in floats else tf.int64)
        for name, length in lengths.items()
    }


def pretraining_features(max_seq_length: int, max_predictions_per_seq: int) -> dict:
    """The spec of a pretraining record (create_pretraining_data.py output)."""
    sequence, predictions = max_seq_length, max_predictions_per_seq
    return fixed_features({
        "input_ids": sequence, "input_mask": sequence, "segment_ids": sequence,
        "masked_lm_positions": predictions, "masked_lm_ids": predictions,
        "masked_lm_weights": predictions, "next_sentence_labels": 1,
    }, floats=("masked_lm_weights",))


def parsing_spec(layout: RecordLayout) -> dict:
    """The parsing spec of a task's feature records (the layout its writer serialized)."""
    return fixed_features(dict(layout.lengths), floats=tuple(layout.floats))


def decode_record(record: tf.Tensor, features: dict) -> dict:
    """Parses serialized Examples (one, or a batch); int64 features become int32
    (TPU-friendly), as the original does."""
    parse = tf.io.parse_single_example if record.shape.rank == 0 else tf.io.parse_example
    example = parse(record, features)
    return {
        name: tf.cast(value, tf.int32) if value.dtype == tf.int64 else value
        for name, value in example.items()
    }


class RecordFormatError(BertTfError, ValueError):
    """A TFRecord whose features do not have the lengths the flags ask for."""


def check_record_lengths(path: str, features: dict, flags: dict[str, str]) -> None:
    """Reads the first record of `path` and checks every fixed-length feature's length.

    `flags` names, per feature, the flag its length comes from (for the message). Raises
    RecordFormatError naming the file, the feature, the length found and the one expected.
    """
    try:
        first = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
    except tf.errors.OpError as error:
        raise RecordFormatError(f"{path}: not a readable TFRecord file: {error.message}") from None
    if first is None:
        raise RecordFormatError(f"{path}: holds no records")
    example = tf.train.Example.FromString(first.numpy())
    for name, spec in features.items():
        feature = example.features.feature.get(name)
        if feature is None:
            raise RecordFormatError(f"{path}: record 0 has no feature {name!r}")
        kind = feature.WhichOneof("kind")
        found = len(getattr(feature, kind).value) if kind else 0
        expected = spec.shape[0]
        if found != expected:
            flag = flags.get(name)
            because = f" ({flag}={expected})" if flag else ""
            raise RecordFormatError(
                f"{path}: record 0: feature {name!r} has {found} values but {expected} are "
                f"expected{because}; were the records made with other flags?"
            )


def find_unreadable_record_file(files: list[str]) -> str | None:
    """Reads every record of every file; returns `path: reason` for the first file that
    fails (truncated, corrupt), else None. Used to name the file after a read error in
    training, where tf.data's message names none."""
    for path in files:
        try:
            for _ in tf.data.TFRecordDataset(path):
                pass
        except tf.errors.OpError as error:
            found = re.search(r"(truncated|corrupted) record at \d+", error.message)
            return f"{path}: {found.group(0) if found else error.message.strip()[:200]}"
    return None


def in_order_batches(
    dataset: tf.data.Dataset, per_replica: int, context: tf.distribute.InputContext,
    start_step: int = 0,
) -> tf.data.Dataset:
    """Per-replica batches of `dataset` in order, dealt to the input pipelines in turn, so
    that the replicas of one global step together hold what one device's batch would;
    `start_step` skips the batches of steps already taken."""
    return dealt(dataset.batch(per_replica, drop_remainder=True), context, start_step)


def dealt(batches: tf.data.Dataset, context: tf.distribute.InputContext,
          start_step: int = 0) -> tf.data.Dataset:
    """Per-replica `batches` in order dealt to the input pipelines in turn, after skipping
    the batches of `start_step` steps."""
    dataset = batches
    if start_step:
        dataset = dataset.skip(start_step * context.num_replicas_in_sync)
    if context.num_input_pipelines > 1:
        dataset = dataset.shard(context.num_input_pipelines, context.input_pipeline_id)
    return dataset


def feature_dataset(
    path: str,
    features: dict,
    batch_size: int,
    is_training: bool,
    *,
    shuffle: bool = True,
    seed: int | None = None,
    input_context: tf.distribute.InputContext | None = None,
    start_step: int = 0,
    bucketing: bucketing_lib.Bucketing | None = None,
) -> tf.data.Dataset:
    """Batches of fine-tuning feature records (GLUE, SQuAD, NER) from one file.

    Training, as the original: repeated, shuffled with a buffer of 100 (not under
    `shuffle=False`); sorted by length in chunks where `bucketing` buckets training
    (`bucketing.training_batches`).
    Evaluation and prediction: one pass in order; the file must hold a whole number of
    global batches (it is padded so when written). `batch_size` is global.
    """
    context = input_context or tf.distribute.InputContext()
    per_replica = context.get_per_replica_batch_size(batch_size)
    dataset = tf.data.TFRecordDataset(path)
    if is_training:
        dataset = dataset.repeat()
        if shuffle:
            dataset = dataset.shuffle(100, seed=None if seed is None else seed + start_step)
            start_step = 0  # a shuffled restart reads a new order instead of skipping
    if is_training and bucketing is not None and bucketing.buckets(is_training=True):
        examples = dataset.map(lambda record: decode_record(record, features),
                               num_parallel_calls=tf.data.AUTOTUNE)
        batches = bucketing_lib.training_batches(examples, batch_size, bucketing.max_seq_length,
                                                 context, seed or 0)
        return dealt(batches, context, start_step).prefetch(tf.data.AUTOTUNE)
    dataset = in_order_batches(dataset, per_replica, context, start_step)
    return dataset.map(
        lambda records: decode_record(records, features), num_parallel_calls=tf.data.AUTOTUNE
    ).prefetch(tf.data.AUTOTUNE)


def pretraining_dataset(
    input_patterns: str | list[str],
    batch_size: int,
    max_seq_length: int,
    max_predictions_per_seq: int,
    *,
    is_training: bool,
    shuffle: bool = True,
    seed: int | None = None,
    input_context: tf.distribute.InputContext | None = None,
    start_step: int = 0,
    masking: DynamicMasking | None = None,
) -> tf.data.Dataset:
    """Batches of pretraining features from a glob (or comma-separated globs) of files.

    `batch_size` is the global batch; with an `input_context` this pipeline yields
    per-replica batches of `batch_size / num_replicas_in_sync` for its replicas.

    Training, as the original: files repeated and shuffled, read interleaved, records
    shuffled (buffer 100). With `shuffle=False` (the deterministic mode) and for evaluation,
    records come in file order, repeated, and batches are dealt to the input pipelines in
    turn, so N replicas see together exactly the batches one device would; `start_step`
    skips the batches of the steps a resumed run already took. Batches always have exactly
    their size (drop_remainder), as TPUs and XLA need. With `masking`, every batch read gets
    a fresh dynamic mask (records written with `--masking=dynamic` carry none).
    """
    files = file_io.expand_patterns(input_patterns)
    features = pretraining_features(max_seq_length, max_predictions_per_seq)
    for path in files:  # a later file made with other flags fails here, not at step N
        check_record_lengths(path, features, PRETRAINING_LENGTH_FLAGS)
    context = input_context or tf.distribute.InputContext()
    per_replica = context.get_per_replica_batch_size(batch_size)

    def parse(index, records):
        """Serialized records [b] -> features; `index`, the batch's number, seeds its mask."""
        batch = decode_record(records, features)
        return batch if masking is None else mask_batch(batch, index, masking)

    if is_training and shuffle:
        if seed is not None:
            seed += start_step  # a resumed run reads a new order, as the original's does
        batches = _shuffled_batches(files, per_replica, context, seed)
        if masking is None:  # no batch numbers in the hot path when nothing needs them
            batches = batches.map(lambda records: parse(0, records),
                                  num_parallel_calls=tf.data.AUTOTUNE)
        else:
            batches = batches.enumerate(start=start_step).map(
                parse, num_parallel_calls=tf.data.AUTOTUNE)
        return batches.prefetch(tf.data.AUTOTUNE)
    dataset = tf.data.TFRecordDataset(files).repeat()
    if masking is None:
        return in_order_batches(dataset, per_replica, context, start_step).map(
            lambda records: parse(0, records), num_parallel_calls=tf.data.AUTOTUNE
        ).prefetch(tf.data.AUTOTUNE)
    # Batches are numbered before skipping and sharding: each gets its own mask.
    numbered = dataset.batch(per_replica, drop_remainder=True).enumerate()
    numbered = numbered.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    return in_order_batches(numbered.unbatch(), per_replica, context, start_step).prefetch(
        tf.data.AUTOTUNE)


# The flag each pretraining feature's length comes from, for check_record_lengths.
PRETRAINING_LENGTH_FLAGS = {
    "input_ids": "max_seq_length", "input_mask": "max_seq_length",
    "segment_ids": "max_seq_length", "masked_lm_positions": "max_predictions_per_seq",
    "masked_lm_ids": "max_predictions_per_seq", "masked_lm_weights": "max_predictions_per_seq",
}


def _shuffled_batches(files: list[str], per_replica: int,
                      context: tf.distribute.InputContext, seed: int | None) -> tf.data.Dataset:
    """The original's training input: files sharded over the input pipelines (or, with
    fewer files than pipelines, records), repeated, shuffled, read four at a time
    interleaved, records shuffled with a buffer of 100; serialized batches."""
    pipelines, pipeline_id = context.num_input_pipelines, context.input_pipeline_id
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(files))
    shard_files = pipelines > 1 and len(files) >= pipelines
    if shard_files:
        dataset = dataset.shard(pipelines, pipeline_id)
    dataset = dataset.repeat().shuffle(len(files), seed=seed)
    dataset = dataset.interleave(
        tf.data.TFRecordDataset, cycle_length=min(4, len(files)),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=seed is not None,
    )
    if pipelines > 1 and not shard_files:
        dataset = dataset.shard(pipelines, pipeline_id)
    dataset = dataset.shuffle(100, seed=seed)
    return dataset.batch(per_replica, drop_remainder=True)
