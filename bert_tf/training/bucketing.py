"""Length-bucketed batches: each batch padded to its bucket, not to `max_seq_length`.

Fine-tuning records hold every example padded to `max_seq_length` (the original's layout,
kept on disk), but real inputs are shorter: MRPC pairs fill ~50 of 128 positions, CoNLL
sentences ~20. A bucketed batch is cut to its *bucket length*: the smallest multiple of the
bucket width (`max_seq_length / 8` rounded up to a multiple of 8, at least 16: 16 at 128,
48 at 384) that holds its longest example (`input_mask` sum), at most `max_seq_length`.
Attention masks the padding with -10000, whose softmax weight is exactly 0 in float32, so a
real position's output does not depend on how much padding follows it.

- Evaluation and prediction (`eval_batches`): the whole file is read, its examples sorted
  by length (ties in file order) and cut into full global batches, so each batch gathers
  examples of like length. Batches carry `example_index` (the row in the file);
  `in_example_order` puts the outputs back in file order.
- Training (`training_batches`, `--bucketing=all`): the shuffled stream is read 16 global
  batches at a time; each such chunk is sorted by length, cut into batches, and its
  batches leave in a shuffled order. Sorting within chunks (not grouping the whole stream
  by bucket) keeps every example's turn near its place in the shuffled stream.

Every batch keeps its full size and one of at most 8 lengths, so XLA and TPUs compile at
most 8 programs, one per bucket length a run uses (logged).

`--bucketing`: `none` pads every batch to `max_seq_length` (the original), `eval` buckets
evaluation and prediction, `all` training too. The default is `eval` where bucketing leaves
every output as the original's (classifier, NER, features, the serving export) and `none`
for run_squad.py, whose n-best search the original runs over padding positions too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import tensorflow as tf
from absl import logging

from bert_tf.errors import UsageError

MODES = ("none", "eval", "all")


@dataclasses.dataclass(frozen=True)
class Bucketing:
    """`--bucketing` as every job asks it: which batches are bucketed, and the one source of
    the sequence length buckets are cut from (the `max_seq_length` flag)."""

    mode: str  # none | eval | all
    max_seq_length: int

    def __post_init__(self):
        if self.mode not in MODES:
            raise UsageError(f"bucketing: expected one of {', '.join(MODES)}, got {self.mode!r}")

    def buckets(self, is_training: bool) -> bool:
        """Whether training batches (`all`), or evaluation and prediction batches (`eval`,
        `all`), are bucketed."""
        return self.mode == "all" or (self.mode == "eval" and not is_training)


def bucket_width(max_seq_length: int) -> int:
    """The step between bucket lengths: 8 buckets up to `max_seq_length`, in multiples of
    8 positions, at least 16."""
    return max(16, -(-max_seq_length // 64) * 8)


def bucket_length(longest, max_seq_length: int):
    """The bucket of a batch whose longest example has `longest` positions (a number or
    a tensor): `longest` rounded up to a multiple of the bucket width, at most
    `max_seq_length`, at least one width (or `max_seq_length` when smaller)."""
    width = bucket_width(max_seq_length)
    rounded = (longest + width - 1) // width * width
    if isinstance(rounded, tf.Tensor):
        return tf.clip_by_value(rounded, min(width, max_seq_length), max_seq_length)
    return int(min(max(rounded, width), max_seq_length))


def plan(lengths: np.ndarray, batch_size: int,
         max_seq_length: int) -> list[tuple[np.ndarray, int]]:
    """Global batches of example rows grouped by length: the rows sorted by `lengths`
    (ties in row order), cut into `batch_size` rows each, with each batch's bucket length.
    The number of rows must be a multiple of `batch_size` (eval files are padded so)."""
    if len(lengths) % batch_size:
        raise ValueError(f"{len(lengths)} examples are not a whole number of batches of "
                         f"{batch_size}")
    order = np.argsort(lengths, kind="stable")
    batches = []
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        batches.append((rows, bucket_length(int(lengths[rows].max()), max_seq_length)))
    return batches


def describe(batches: list[tuple[np.ndarray, int]], max_seq_length: int) -> str:
    """One line for the log: batches, the distinct lengths (programs XLA compiles) and the
    share of the padded run's positions computed."""
    lengths = [length for _, length in batches]
    share = sum(lengths) / (len(lengths) * max_seq_length) if lengths else 1.0
    return (f"{len(batches)} batches in {len(set(lengths))} bucket lengths "
            f"{sorted(set(lengths))}: {share:.0%} of the positions of max_seq_length padding")


def read_arrays(path: str, decode: Callable[[tf.Tensor], dict]) -> dict[str, np.ndarray]:
    """Every record of a TFRecord file, decoded by `decode(serialized [b])`, as arrays with
    one row per record (zero rows, of the decoded shapes, for a file without records)."""
    parts = [batch for batch in tf.data.TFRecordDataset(path).batch(1024).map(decode)
             .as_numpy_iterator()]
    if not parts:
        return {name: value.numpy() for name, value in decode(tf.constant([], tf.string)).items()}
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def eval_batches(arrays: dict[str, np.ndarray], batch_size: int,
                 context: tf.distribute.InputContext, max_seq_length: int) -> tf.data.Dataset:
    """Per-replica batches of `arrays` (rows of features; `input_mask` [N, S] among them),
    grouped by length (`plan`), each feature of length S cut to the batch's bucket, plus
    `example_index` [b] (the rows). The replicas of one step share a global batch, dealt
    in turn as `input_pipeline.in_order_batches` does."""
    batches = plan(arrays["input_mask"].sum(axis=1), batch_size, max_seq_length)
    logging.info("Bucketing: %s", describe(batches, max_seq_length))
    per_replica = context.get_per_replica_batch_size(batch_size)
    rows = [rows[start:start + per_replica] for rows, _ in batches
            for start in range(0, batch_size, per_replica)]
    lengths = [length for _, length in batches for _ in range(batch_size // per_replica)]
    tensors = {name: tf.constant(value) for name, value in arrays.items()}
    positional = {name for name, value in arrays.items()
                  if value.ndim == 2 and value.shape[1] == max_seq_length}

    def take(rows, length):
        batch = {name: tf.gather(value, rows) for name, value in tensors.items()}
        batch = {name: value[:, :length] if name in positional else value
                 for name, value in batch.items()}
        return {**batch, "example_index": tf.cast(rows, tf.int32)}

    dataset = tf.data.Dataset.from_tensor_slices(
        (np.array(rows, np.int64).reshape(len(rows), per_replica), np.array(lengths, np.int32)))
    if context.num_input_pipelines > 1:
        dataset = dataset.shard(context.num_input_pipelines, context.input_pipeline_id)
    return dataset.map(take).prefetch(tf.data.AUTOTUNE)


SORTED_CHUNK = 16  # global training batches whose examples are sorted by length together


def training_batches(examples: tf.data.Dataset, batch_size: int, max_seq_length: int,
                     context: tf.distribute.InputContext, seed: int = 0) -> tf.data.Dataset:
    """Per-replica training batches from a shuffled stream of decoded single `examples`.

    The stream is read in chunks of `SORTED_CHUNK` global batches; a chunk's examples are
    sorted by length (ties in stream order) and cut into global batches, which leave in
    an order shuffled by (`seed`, chunk number), each cut to its bucket and dealt to the
    replicas in turn (all replicas of a step share one length). Every example of a chunk
    is trained on within its chunk's steps, so no length waits longer than the others.

    With `label_weights` (token-level tasks), each example also carries `chunk_label_share`:
    its chunk's labelled positions over its chunk's examples. Summed over a global batch
    that is the chunk's mean labelled positions per batch, which the token objective
    divides by, so a batch of short sentences does not weigh each of its tokens more than
    a batch of long ones (as in padded batches, whose counts hardly differ).
    """
    positional = [name for name, spec in examples.element_spec.items()
                  if spec.shape.rank == 1 and spec.shape[0] == max_seq_length]

    def sorted_batches(index, chunk):  # [K * B, ...] -> [K, B, ...], K = SORTED_CHUNK
        lengths = tf.reduce_sum(tf.cast(chunk["input_mask"], tf.int32), axis=1)
        rows = tf.reshape(tf.argsort(lengths, stable=True), [SORTED_CHUNK, batch_size])
        rows = tf.random.experimental.stateless_shuffle(
            rows, seed=tf.stack([tf.cast(seed, tf.int64), index]))
        if "label_weights" in chunk:
            share = tf.reduce_mean(tf.reduce_sum(tf.cast(chunk["label_weights"], tf.float32), 1))
            chunk = {**chunk, "chunk_label_share": tf.fill(tf.shape(lengths), share)}
        return {name: tf.gather(value, rows) for name, value in chunk.items()}

    def cut(batch):
        longest = tf.reduce_max(tf.reduce_sum(tf.cast(batch["input_mask"], tf.int32), axis=1))
        length = bucket_length(longest, max_seq_length)
        return {name: value[:, :length] if name in positional else value
                for name, value in batch.items()}

    chunks = examples.batch(SORTED_CHUNK * batch_size, drop_remainder=True).enumerate()
    batches = chunks.map(sorted_batches).unbatch().map(cut)
    return batches.rebatch(context.get_per_replica_batch_size(batch_size))


def keeping_example_order(predict_fn: Callable, max_seq_length: int) -> Callable:
    """`predict_fn(outputs, batch)` for bucketed batches: its per-position outputs padded
    back to `max_seq_length` (`padded_positions`), and the batch's `example_index` passed
    along for `in_example_order`."""

    def predict(outputs, batch):
        result = padded_positions(predict_fn(outputs, batch), max_seq_length)
        return {**result, "example_index": batch["example_index"]}

    return predict


def padded_positions(outputs: dict, max_seq_length: int) -> dict:
    """`outputs` with each per-position tensor (rank >= 2, axis 1 of no static size: a
    bucketed batch's length) padded with zeros to [B, max_seq_length, ...]."""

    def pad(value):
        padding = [[0, 0], [0, max_seq_length - tf.shape(value)[1]]]
        return tf.pad(value, padding + [[0, 0]] * (value.shape.rank - 2))

    return {name: pad(value) if value.shape.rank >= 2 and value.shape[1] is None else value
            for name, value in outputs.items()}


def in_example_order(outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Concatenated bucketed outputs (with `example_index`) -> the same in file order."""
    order = np.argsort(outputs["example_index"], kind="stable")
    return {name: value[order] for name, value in outputs.items() if name != "example_index"}


def rows_in_order(batches: Iterable[dict], key: str) -> Iterator[dict]:
    """The rows of bucketed prediction batches one by one, in order of `key` (0, 1, 2, ...
    each once): a row that comes early waits until those before it are out."""
    waiting: dict[int, dict] = {}
    following = 0
    for batch in batches:
        for row in range(len(batch[key])):
            waiting[int(batch[key][row])] = {name: value[row] for name, value in batch.items()}
        while following in waiting:
            yield waiting.pop(following)
            following += 1
    if waiting:
        raise ValueError(f"rows {sorted(waiting)[:5]}... came without the rows before them")
