"""extract_features.py's job: per-token activations of chosen layers as JSON lines.

Input: one example per line, `text` or `text_a ||| text_b`. Output, per line of input, in
the original's structure:
`{"linex_index": i, "features": [{"token": t, "layers": [{"index": l, "values": [...]}]}]}`
with values rounded to 6 decimals, one entry per real token (`[CLS]`, pieces, `[SEP]`).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator

import numpy as np
import tensorflow as tf
from absl import logging

from bert_tf import file_io
from bert_tf.config import BertConfig
from bert_tf.data.features import EncodedInput, encode_text
from bert_tf.data.tokenization import FullTokenizer, check_vocab_fits, convert_to_unicode
from bert_tf.errors import UsageError
from bert_tf.jobs import stages
from bert_tf.models.modeling import BertModel
from bert_tf.options import DeviceOptions, bucketing_option, option
from bert_tf.training import bucketing as bucketing_lib
from bert_tf.training import loop
from bert_tf.training.checkpoint import load_checkpoint, require_complete
from bert_tf.training.input_pipeline import in_order_batches

_PAIR = re.compile(r"^(.*) \|\|\| (.*)$")


@dataclasses.dataclass(kw_only=True)
class ExtractOptions(DeviceOptions):
    """The flags of extract_features.py (the original's names and defaults)."""

    input_file: str = option(help="Text input, one example per line (a ||| b for pairs).",
                             required=True)
    output_file: str = option(help="JSON-lines output.", required=True)
    bert_config_file: str = option(help="The config json file of the pre-trained model.",
                                   required=True)
    init_checkpoint: str = option(help="Initial checkpoint (usually a pre-trained model).",
                                  required=True)
    vocab_file: str = option(help="The vocabulary file that the BERT model was trained on.",
                             required=True)
    layers: str = option("-1,-2,-3,-4", "Comma-separated layer indexes.")
    max_seq_length: int = option(128, "Maximum total input sequence length.")
    do_lower_case: bool = option(True, "Whether to lower case the input text.")
    batch_size: int = option(32, "Batch size for predictions.")
    use_one_hot_embeddings: bool = option(False, "Accepted for compatibility (no effect: "
                                                 "gathers give the same numbers).")
    bucketing: str = bucketing_option()


def read_examples(path: str) -> list[tuple[str, str | None]]:
    """(text_a, text_b) per line, as the original: stripped, split on ` ||| `."""
    examples = []
    with tf.io.gfile.GFile(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = convert_to_unicode(raw).strip()
            except UnicodeDecodeError as error:
                raise UsageError(f"{path}:{number}: not valid UTF-8 ({error.reason})") from None
            match = _PAIR.match(line)
            examples.append((match.group(1), match.group(2)) if match else (line, None))
    if not examples:
        raise UsageError(f"{path}: no input lines")
    return examples


def parse_layers(layers: str, num_hidden_layers: int) -> list[int]:
    try:
        indexes = [int(x) for x in layers.split(",")]
    except ValueError:
        raise UsageError(f"layers: expected comma-separated integers, got {layers!r}") from None
    for index in indexes:
        if not -num_hidden_layers <= index < num_hidden_layers:
            raise UsageError(
                f"layers: {index} is out of range for a model with {num_hidden_layers} layers"
            )
    return indexes


def output_lock(options: ExtractOptions, strategy):
    """Holds `output_file` for the run (file_io.holding_output)."""
    return file_io.holding_output(options.output_file, "output_file")


def run(options: ExtractOptions, strategy: tf.distribute.Strategy) -> int:
    """Writes `output_file` (atomically); returns the number of lines written."""
    config = BertConfig.from_json_file(options.bert_config_file)
    stages.check_sequence_length(options.max_seq_length, config, options.bert_config_file)
    stages.check_batch_size("batch_size", options.batch_size, strategy.num_replicas_in_sync)
    layer_indexes = parse_layers(options.layers, config.num_hidden_layers)
    tokenizer = FullTokenizer(options.vocab_file, options.do_lower_case)
    check_vocab_fits(tokenizer.vocab, options.vocab_file, config.vocab_size,
                     options.bert_config_file)
    examples = read_examples(options.input_file)
    if any(b is not None for _, b in examples):
        stages.check_sequence_length(options.max_seq_length, config, options.bert_config_file,
                                     stages.SHORTEST_PAIR)
    encoded = [encode_text(tokenizer, a, b, options.max_seq_length) for a, b in examples]
    with strategy.scope():
        model = BertModel(config)
    require_complete(load_checkpoint(model, options.init_checkpoint))

    with file_io.StagedOutputs([options.output_file]) as (writer,):
        for line in json_lines(strategy, model, encoded, layer_indexes, options.batch_size,
                               jit_compile=options.jit_compile,
                               bucketing=stages.bucketing_rule(options)):
            writer.write(line + "\n")
    logging.info("Wrote %d lines to %s", len(encoded), options.output_file)
    return len(encoded)


def json_lines(
    strategy: tf.distribute.Strategy, model: BertModel, encoded: list[EncodedInput],
    layer_indexes: list[int], batch_size: int, *, jit_compile: bool = False,
    bucketing: bucketing_lib.Bucketing | None = None,
) -> Iterator[str]:
    """One JSON line per input, in input order (the original's structure). Where
    `bucketing` buckets prediction: batches of like length, each padded to its bucket
    (bucketing.py); rows that come early wait for the ones before them."""
    count = len(encoded)
    padded = -(-count // batch_size) * batch_size
    length = len(encoded[0].input_ids)
    arrays = {
        "unique_ids": np.arange(padded, dtype=np.int32),
        **{name: np.zeros((padded, length), np.int32)
           for name in ("input_ids", "input_mask", "segment_ids")},
    }
    for row, item in enumerate(encoded):
        arrays["input_ids"][row] = item.input_ids
        arrays["input_mask"][row] = item.input_mask
        arrays["segment_ids"][row] = item.segment_ids

    def dataset_fn(context, _):
        if bucketing is not None and bucketing.buckets(is_training=False):
            return bucketing_lib.eval_batches(arrays, batch_size, context, length)
        dataset = tf.data.Dataset.from_tensor_slices(arrays)
        return in_order_batches(dataset, context.get_per_replica_batch_size(batch_size), context)

    def predict_fn(outputs, batch):
        layers = outputs["encoder_outputs"]
        return {"unique_ids": batch["unique_ids"],
                **{f"layer_output_{j}": layers[i] for j, i in enumerate(layer_indexes)}}

    batches = loop.predict(strategy, model, predict_fn, dataset_fn, jit_compile)
    for row in bucketing_lib.rows_in_order(batches, "unique_ids"):
        unique_id = int(row["unique_ids"])
        if unique_id >= count:
            continue
        features = [
            {"token": token, "layers": [
                {"index": index,
                 "values": [round(float(x), 6) for x in row[f"layer_output_{j}"][i]]}
                for j, index in enumerate(layer_indexes)
            ]}
            for i, token in enumerate(encoded[unique_id].tokens)
        ]
        yield json.dumps({"linex_index": unique_id, "features": features})
