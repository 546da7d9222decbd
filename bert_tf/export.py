"""Serving export: a SavedModel that takes raw text and tokenizes inside the graph.

The exported model holds the fast tokenizer (tensorflow-text ops, the same ids as the
original tokenizer), the original input layout (`[CLS] a [SEP] (b [SEP])`, pairs trimmed
round-robin, which keeps the same tokens as the original's longest-first truncation) and
the model. Signatures:
- `serving_default(text)`: one text per row;
- `pair(text_a, text_b)`: sentence pairs (for SQuAD: question, context);
returning, by the kind of checkpoint:
- classifier (`output_weights` at top level): `probabilities` [B, L] and `predictions` [B]
  (the arg-max class; the score for one-output regression);
- squad (`cls/squad/*`): `start_logits`, `end_logits` [B, S] and the best `start`, `end`
  token positions with `end - start < max_answer_length`, plus `input_ids`;
- embeddings (encoder only): `pooled_output` [B, H], `sequence_output` [B, S, H],
  `input_mask` [B, S].
Loading needs only TensorFlow and `import tensorflow_text` (which registers its ops).
"""

from __future__ import annotations

import os

import tensorflow as tf
import tensorflow_text as tf_text

from bert_tf import checkpoint as checkpoint_lib
from bert_tf import file_io
from bert_tf.config import BertConfig
from bert_tf.errors import UsageError, describe_os_error
from bert_tf.fast_tokenization import FastTokenizer
from bert_tf.heads import BertClassifier, BertSpanModel
from bert_tf.modeling import BertModel
from bert_tf.tokenization import check_vocab_fits

KINDS = ("classifier", "squad", "embeddings")


def checkpoint_kind(path: str) -> tuple[str, int]:
    """("classifier", num_labels) | ("squad", 2) | ("embeddings", 0), from the names."""
    shapes = checkpoint_lib.list_variables(path)
    if "output_weights" in shapes:
        return "classifier", shapes["output_weights"][0]
    if "cls/squad/output_weights" in shapes:
        return "squad", 2
    return "embeddings", 0


class ServingModule(tf.Module):
    """Text in, model outputs out (see the module docstring)."""

    def __init__(self, model, tokenizer: FastTokenizer, kind: str, max_seq_length: int,
                 max_answer_length: int = 30):
        super().__init__()
        self.model = model
        self.vocab_table = tokenizer.table  # tracked, so the SavedModel holds the vocabulary
        self._tokenizer = tokenizer
        self.kind = kind
        self.max_seq_length = max_seq_length
        self.max_answer_length = max_answer_length
        self._cls_id = tokenizer.vocab["[CLS]"]
        self._sep_id = tokenizer.vocab["[SEP]"]

    def encode(self, segments: list[tf.Tensor]) -> dict:
        """[B] strings per segment -> int32 input_ids, input_mask, segment_ids [B, S]."""
        pieces = [self._tokenizer.tokenize(texts) for texts in segments]
        budget = self.max_seq_length - 1 - len(segments)
        trimmed = tf_text.RoundRobinTrimmer(budget).trim(pieces)
        ids, segment_ids = tf_text.combine_segments(
            trimmed, start_of_sequence_id=self._cls_id, end_of_segment_id=self._sep_id
        )
        input_ids, input_mask = tf_text.pad_model_inputs(ids, self.max_seq_length)
        segment_ids, _ = tf_text.pad_model_inputs(segment_ids, self.max_seq_length)
        return {"input_ids": tf.cast(input_ids, tf.int32),
                "input_mask": tf.cast(input_mask, tf.int32),
                "segment_ids": tf.cast(segment_ids, tf.int32)}

    def outputs(self, inputs: dict) -> dict:
        result = self.model(inputs, training=False)
        if self.kind == "classifier":
            probabilities = result["probabilities"]
            if probabilities.shape[-1] == 1:
                return {"probabilities": probabilities, "predictions": result["predictions"]}
            return {"probabilities": probabilities,
                    "predictions": tf.argmax(probabilities, axis=-1, output_type=tf.int32)}
        if self.kind == "squad":
            start, end = result["start_logits"], result["end_logits"]
            # Best span within the context (segment 1) and max_answer_length, as a matrix.
            context = tf.cast(inputs["segment_ids"] * inputs["input_mask"], tf.bool)
            scores = start[:, :, None] + end[:, None, :]
            length = tf.range(self.max_seq_length)
            allowed = (length[None, :] >= length[:, None]) & (
                length[None, :] - length[:, None] < self.max_answer_length)
            allowed = allowed[None] & context[:, :, None] & context[:, None, :]
            scores = tf.where(allowed, scores, tf.float32.min)
            best = tf.argmax(tf.reshape(scores, [tf.shape(scores)[0], -1]), axis=-1,
                             output_type=tf.int32)
            return {"start_logits": start, "end_logits": end, "input_ids": inputs["input_ids"],
                    "start": best // self.max_seq_length, "end": best % self.max_seq_length}
        return {"pooled_output": result["pooled_output"],
                "sequence_output": result["sequence_output"],
                "input_mask": inputs["input_mask"]}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve_text(self, text):
        return self.outputs(self.encode([text]))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text_a"),
                                  tf.TensorSpec([None], tf.string, name="text_b")])
    def serve_pair(self, text_a, text_b):
        return self.outputs(self.encode([text_a, text_b]))


def build_module(bert_config_file: str, vocab_file: str, init_checkpoint: str,
                 do_lower_case: bool = True, max_seq_length: int = 128,
                 kind: str | None = None) -> ServingModule:
    """The model of the checkpoint's kind (or `kind`), loaded, with its tokenizer."""
    config = BertConfig.from_json_file(bert_config_file)
    found, num_labels = checkpoint_kind(init_checkpoint)
    kind = kind or found
    if kind not in KINDS:
        raise UsageError(f"kind: expected one of {KINDS}, got {kind!r}")
    if kind == "classifier":
        if not num_labels:
            raise UsageError(f"{init_checkpoint}: no classifier (output_weights) to export")
        model = BertClassifier(config, num_labels)
    elif kind == "squad":
        model = BertSpanModel(config)
    else:
        model = BertModel(config)
    checkpoint_lib.require_complete(checkpoint_lib.load_checkpoint(model, init_checkpoint))
    tokenizer = FastTokenizer(vocab_file, do_lower_case)
    check_vocab_fits(tokenizer.vocab, vocab_file, config.vocab_size, bert_config_file)
    return ServingModule(model, tokenizer, kind, max_seq_length)


def export(module: ServingModule, export_dir: str) -> str:
    """Writes the SavedModel with its two signatures; returns `export_dir`.

    Written to a staging folder beside `export_dir`, then swapped in: a failed or
    interrupted export leaves an earlier export at `export_dir` as it was."""
    export_dir = export_dir.rstrip("/")
    staged, previous = file_io.staging_path(export_dir), file_io.staging_path(export_dir)
    try:
        tf.saved_model.save(module, staged, signatures={
            "serving_default": module.serve_text, "pair": module.serve_pair,
        })
        if tf.io.gfile.exists(export_dir):
            tf.io.gfile.rename(export_dir, previous)
        tf.io.gfile.rename(staged, export_dir)
    except (tf.errors.OpError, OSError) as error:
        raise file_io.OutputError(
            f"export_dir: cannot write {export_dir}: {describe_os_error(error)}"
        ) from None
    finally:
        for path in (staged, previous):
            if tf.io.gfile.exists(path):
                tf.io.gfile.rmtree(path)
        file_io.removedirs_quietly(os.path.dirname(staged))
    return export_dir
