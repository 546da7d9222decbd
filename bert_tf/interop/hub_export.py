"""TF-Hub-style SavedModels: the preprocessor + encoder pair of TensorFlow's BERT tutorials.

`export_model.py --format=hub` writes two SavedModels under `export_dir`:

- `preprocessor/`: raw strings -> the encoder's inputs, tokenized in the graph with the
  checkpoint's vocabulary (the original tokenizer's ids; fast_tokenization.py):
    `preprocessor(text)` [B] strings -> {"input_word_ids", "input_mask", "input_type_ids"}
        int32 [B, max_seq_length], one segment per row;
    `preprocessor.tokenize(text)` -> int32 RaggedTensor [B, (words), (word pieces)];
    `preprocessor.bert_pack_inputs(segments, seq_length)`: a list of one or two tokenized
        segments ([B, (words), (pieces)] or [B, (pieces)]) and an int32 scalar ->
        the three inputs [B, seq_length] as `[CLS] a [SEP] (b [SEP])`, trimmed
        round-robin; `input_type_ids` 0 for a, 1 for b.
- `encoder/`: `encoder(inputs, training=False)`, `inputs` the three int32 [B, S] tensors ->
    {"pooled_output" [B, H], "sequence_output" [B, S, H], "encoder_outputs" (a list of L
    [B, S, H], one per layer), "default" (= pooled_output)}, float32; `training=True` applies
    dropout. It also holds `variables`, `trainable_variables` and `regularization_losses`
    (empty), as reusable TF Hub models do, and a `serving_default` signature with the same
    inputs, whose outputs are `default`, `pooled_output`, `sequence_output` and
    `encoder_outputs_<i>`.

The names and dtypes are those of the published TF Hub BERT models, so the tutorial's code
runs on them with `tf.saved_model.load` in a process that has TensorFlow and
`import tensorflow_text` only:

    preprocessor = tf.saved_model.load("export/preprocessor")
    encoder = tf.saved_model.load("export/encoder")
    outputs = encoder(preprocessor(tf.constant(["this is such an amazing movie!"])))
    outputs["pooled_output"]   # [1, H]
"""

from __future__ import annotations

import os

import tensorflow as tf

from bert_tf import file_io
from bert_tf.config import BertConfig
from bert_tf.data.tokenization import check_vocab_fits
from bert_tf.errors import describe_os_error
from bert_tf.interop.export import pack_inputs
from bert_tf.models.modeling import BertModel
from bert_tf.text.fast_tokenization import FastTokenizer
from bert_tf.training import checkpoint

TEXT = tf.TensorSpec([None], tf.string)
# What a hub export folder holds: an export_dir with these names alone is an earlier one.
HUB_ENTRIES = frozenset({"preprocessor", "encoder"})
INPUT_NAMES = {"input_word_ids": "input_ids", "input_mask": "input_mask",
               "input_type_ids": "segment_ids"}  # TF Hub's name -> this package's
INPUTS = {name: tf.TensorSpec([None, None], tf.int32, name=name) for name in INPUT_NAMES}


class Preprocessor(tf.Module):
    """Strings -> encoder inputs (see the module docstring)."""

    def __init__(self, tokenizer: FastTokenizer, max_seq_length: int):
        super().__init__()
        self.vocab_table = tokenizer.table  # tracked: the SavedModel holds the vocabulary
        self._tokenizer = tokenizer
        self._cls_id = tokenizer.vocab["[CLS]"]
        self._sep_id = tokenizer.vocab["[SEP]"]
        self.max_seq_length = max_seq_length
        # Traced for one and two segments, each with and without the word level.
        for segments in (1, 2):
            for ragged_rank in (1, 2):
                spec = tf.RaggedTensorSpec([None] * (ragged_rank + 1), tf.int32, ragged_rank)
                self.bert_pack_inputs.get_concrete_function(
                    [spec] * segments, tf.TensorSpec([], tf.int32))

    @tf.function(input_signature=[TEXT])
    def __call__(self, text):
        return self.bert_pack_inputs([self.tokenize(text)], self.max_seq_length)

    @tf.function(input_signature=[TEXT])
    def tokenize(self, text):
        return tf.cast(self._tokenizer.tokenize_words(text), tf.int32)

    @tf.function
    def bert_pack_inputs(self, segments, seq_length):
        pieces = [tf.cast(segment.merge_dims(-2, -1) if segment.ragged_rank == 2 else segment,
                          tf.int64) for segment in segments]
        packed = pack_inputs(pieces, seq_length, self._cls_id, self._sep_id)
        return {hub_name: packed[name] for hub_name, name in INPUT_NAMES.items()}


def encoder_outputs(model: BertModel, inputs: dict, training: bool) -> dict:
    """TF Hub's encoder outputs for TF Hub's input names."""
    outputs = model({name: inputs[hub_name] for hub_name, name in INPUT_NAMES.items()},
                    training=training)
    return {"default": outputs["pooled_output"], "pooled_output": outputs["pooled_output"],
            "sequence_output": outputs["sequence_output"],
            "encoder_outputs": list(outputs["encoder_outputs"])}


def encoder_module(model: BertModel) -> tf.train.Checkpoint:
    """The encoder SavedModel's root object (see the module docstring)."""
    root = tf.train.Checkpoint(model=model)
    root.variables = list(model.variables)
    root.trainable_variables = list(model.trainable_variables)
    root.regularization_losses = []

    @tf.function
    def call(inputs, training=False):
        return encoder_outputs(model, inputs, training)

    for training in (False, True):
        call.get_concrete_function(INPUTS, training)

    @tf.function(input_signature=[INPUTS])
    def serve(inputs):
        outputs = encoder_outputs(model, inputs, False)
        layers = outputs.pop("encoder_outputs")
        return {**outputs, **{f"encoder_outputs_{i}": layer for i, layer in enumerate(layers)}}

    root.__call__ = call
    root.serving_default = serve
    return root


def export_hub(bert_config_file: str, vocab_file: str, init_checkpoint: str,
               do_lower_case: bool, max_seq_length: int, export_dir: str) -> str:
    """Writes `export_dir/preprocessor` and `export_dir/encoder` from a checkpoint's encoder
    (`bert/*`; a fine-tuned checkpoint's head is left out). The folder is staged and swapped
    in as a whole. Returns `export_dir`."""
    config = BertConfig.from_json_file(bert_config_file)
    model = BertModel(config)
    report = checkpoint.load_checkpoint(model, init_checkpoint)
    checkpoint.require_complete(report)
    tokenizer = FastTokenizer(vocab_file, do_lower_case)
    check_vocab_fits(tokenizer.vocab, vocab_file, config.vocab_size, bert_config_file)
    preprocessor = Preprocessor(tokenizer, max_seq_length)
    encoder = encoder_module(model)

    def write(folder: str) -> None:
        tf.saved_model.save(preprocessor, os.path.join(folder, "preprocessor"))
        tf.saved_model.save(encoder, os.path.join(folder, "encoder"),
                            signatures={"serving_default": encoder.serving_default})

    try:
        return file_io.write_folder_atomically(export_dir, write, HUB_ENTRIES)
    except file_io.OutputError:
        raise
    except (tf.errors.OpError, OSError) as error:
        raise file_io.OutputError(
            f"export_dir: cannot write {export_dir}: {describe_os_error(error)}") from None
