"""tf.data readers for the TFRecords this package (and the original code) writes."""

from __future__ import annotations

import tensorflow as tf


def pretraining_features(max_seq_length: int, max_predictions_per_seq: int) -> dict:
    """The feature spec of a pretraining record (create_pretraining_data.py output)."""
    fixed = tf.io.FixedLenFeature
    return {
        "input_ids": fixed([max_seq_length], tf.int64),
        "input_mask": fixed([max_seq_length], tf.int64),
        "segment_ids": fixed([max_seq_length], tf.int64),
        "masked_lm_positions": fixed([max_predictions_per_seq], tf.int64),
        "masked_lm_ids": fixed([max_predictions_per_seq], tf.int64),
        "masked_lm_weights": fixed([max_predictions_per_seq], tf.float32),
        "next_sentence_labels": fixed([1], tf.int64),
    }


def decode_record(record: tf.Tensor, features: dict) -> dict:
    """Parses one serialized Example; int64 features become int32 (TPU-friendly), as the
    original does."""
    example = tf.io.parse_single_example(record, features)
    return {
        name: tf.cast(value, tf.int32) if value.dtype == tf.int64 else value
        for name, value in example.items()
    }


def pretraining_dataset(
    input_patterns: str | list[str],
    batch_size: int,
    max_seq_length: int,
    max_predictions_per_seq: int,
    is_training: bool,
    shuffle: bool = True,
    seed: int | None = None,
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """Batches of pretraining features from a glob (or comma-separated globs) of files.

    Training, as the original: files repeated and shuffled, read interleaved, records
    shuffled (buffer 100), batches of exactly `batch_size` (drop_remainder). With
    `shuffle=False` records come in file order (the deterministic mode). Evaluation reads the
    files in order, repeated. `input_context` shards files across input pipelines.
    """
    patterns = input_patterns.split(",") if isinstance(input_patterns, str) else input_patterns
    files = [f for pattern in patterns if pattern for f in tf.io.gfile.glob(pattern)]
    if not files:
        raise ValueError(f"input_file: {input_patterns!r} matches no file")
    features = pretraining_features(max_seq_length, max_predictions_per_seq)
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(files))
    if input_context is not None and input_context.num_input_pipelines > 1:
        dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if is_training and shuffle:
        dataset = dataset.repeat().shuffle(len(files), seed=seed)
        dataset = dataset.interleave(
            tf.data.TFRecordDataset, cycle_length=min(4, len(files)),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=False,
        )
        dataset = dataset.shuffle(100, seed=seed)
    else:
        dataset = tf.data.TFRecordDataset(dataset).repeat()
    dataset = dataset.map(
        lambda record: decode_record(record, features), num_parallel_calls=tf.data.AUTOTUNE
    )
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
