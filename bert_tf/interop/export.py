"""Serving export: a SavedModel that takes raw text and tokenizes inside the graph.

The exported model holds the fast tokenizer (tensorflow-text ops, the same ids as the
original tokenizer), the original input layout (`[CLS] a [SEP] (b [SEP])`, pairs trimmed
round-robin, which keeps the same tokens as the original's longest-first truncation) and
the model. Signatures:
- `serving_default(text)`: one text per row;
- `pair(text_a, text_b)`: sentence pairs (for SQuAD: question, context);
returning, by the kind of checkpoint:
- classifier (`output_weights` at top level): `probabilities` [B, L] and `predictions` [B]
  (the arg-max class; the score for one-output regression). A custom task's classifier
  (`custom_task.json` beside the checkpoint, from `run_classifier.py --task_name=custom`)
  adds `labels` [B], the predicted label names; multi-label, its `probabilities` are
  sigmoids, `predictions` multi-hot [B, L] at its threshold, `labels` the names joined by
  its separator ("" for none);
- squad (`cls/squad/*`): `start_logits`, `end_logits` [B, S] and the best `start`, `end`
  token positions with `end - start < max_answer_length`, plus `input_ids`;
- embeddings (encoder only): `pooled_output` [B, H], `sequence_output` [B, S, H],
  `input_mask` [B, S];
- ner (a run_ner.py checkpoint: `output_weights` and a `label_list.txt` beside it):
  `serving_default(text)` only, returning `words` [B, W] (the text split at whitespace)
  and `tags` [B, W], each word's label (run_ner.py's IOB2 label set) predicted on its first
  word piece, as the model gives it (an entity may start with I-, which conlleval reads as
  a start); both padded with "" past a row's words, "" for words past `max_seq_length - 2`
  pieces.
Bucketed (`--bucketing`, default `eval`): each request's batch is padded only to the
bucket of its longest row (bucketing.py), not to `max_seq_length`; per-position outputs
are still [B, max_seq_length], zeros past the batch's bucket.
Loading needs only TensorFlow and `import tensorflow_text` (which registers its ops).
"""

from __future__ import annotations

import os

import tensorflow as tf
import tensorflow_text as tf_text

from bert_tf import file_io
from bert_tf.config import BertConfig
from bert_tf.data.tokenization import check_vocab_fits
from bert_tf.errors import UsageError, describe_os_error
from bert_tf.models.heads import BertClassifier, BertSpanModel, BertTokenClassifier
from bert_tf.models.modeling import BertModel
from bert_tf.tasks import custom, ner
from bert_tf.text.fast_tokenization import FastTokenizer
from bert_tf.training import bucketing
from bert_tf.training import checkpoint as checkpoint_lib

KINDS = ("classifier", "squad", "embeddings", "ner")


def checkpoint_kind(path: str) -> tuple[str, int]:
    """("classifier" | "ner", num_labels) | ("squad", 2) | ("embeddings", 0), from the
    names (and, for NER, run_ner.py's label_list.txt beside the checkpoint)."""
    shapes = checkpoint_lib.list_variables(path)
    if "output_weights" in shapes:
        if file_io.exists(label_file(path)) and is_tag_set(ner.read_label_list(label_file(path))):
            return "ner", shapes["output_weights"][0]
        return "classifier", shapes["output_weights"][0]
    if "cls/squad/output_weights" in shapes:
        return "squad", 2
    return "embeddings", 0


def is_tag_set(labels: list[str]) -> bool:
    """True for run_ner.py's labels (O and B-/I- tags); a custom classification task
    (run_classifier.py --task_name=custom) keeps its own labels in the same file name."""
    return "O" in labels and all(label == "O" or label[:2] in ("B-", "I-") for label in labels)


def label_file(checkpoint: str, name: str = ner.LABEL_FILE) -> str:
    """run_ner.py's label_list.txt (or another file `name`) in the folder of `checkpoint`
    (a prefix or a folder)."""
    folder = checkpoint if tf.io.gfile.isdir(checkpoint) else os.path.dirname(checkpoint)
    return os.path.join(folder, name)


def custom_task(checkpoint: str, num_labels: int) -> custom.CustomTask | None:
    """The custom task (`run_classifier.py --task_name=custom`) kept beside a classifier
    checkpoint, if any; its labels must be the checkpoint's outputs."""
    path = label_file(checkpoint, custom.TASK_FILE)
    if not file_io.exists(path):
        return None
    task = custom.read_task_file(path)
    if task.labels is not None and len(task.labels) != num_labels:
        raise UsageError(f"{path}: {len(task.labels)} labels, but the checkpoint's "
                         f"output_weights has {num_labels} rows")
    return task


def pack_inputs(pieces: list[tf.RaggedTensor], seq_length, cls_id: int, sep_id: int,
                bucketed: bool = False) -> dict:
    """Word-piece ids per segment ([B, (pieces)] each) -> `[CLS] a [SEP] (b [SEP])` as
    int32 input_ids, input_mask, segment_ids [B, seq_length]: segments trimmed round-robin
    to fit (the same tokens as the original's longest-first truncation), then padded
    (`bucketed`: only to the batch's bucket length, bucketing.py)."""
    trimmed = tf_text.RoundRobinTrimmer(seq_length - 1 - len(pieces)).trim(pieces)
    ids, segment_ids = tf_text.combine_segments(
        trimmed, start_of_sequence_id=cls_id, end_of_segment_id=sep_id)
    padded_length = padding_length(ids, seq_length, bucketed)
    input_ids, input_mask = tf_text.pad_model_inputs(ids, padded_length)
    segment_ids, _ = tf_text.pad_model_inputs(segment_ids, padded_length)
    return {"input_ids": tf.cast(input_ids, tf.int32),
            "input_mask": tf.cast(input_mask, tf.int32),
            "segment_ids": tf.cast(segment_ids, tf.int32)}


def padding_length(ids: tf.RaggedTensor, max_seq_length, bucketed: bool):
    """`max_seq_length`, or with `bucketed` the bucket of the longest row of `ids`."""
    if not bucketed:
        return max_seq_length
    longest = tf.reduce_max(tf.concat([ids.row_lengths(), [0]], axis=0))
    return tf.cast(bucketing.bucket_length(longest, max_seq_length), tf.int32)


class ServingModule(tf.Module):
    """Text in, model outputs out (see the module docstring)."""

    def __init__(self, model, tokenizer: FastTokenizer, kind: str, max_seq_length: int,
                 *, max_answer_length: int = 30, labels: list[str] | None = None,
                 bucketed: bool = False, task: custom.CustomTask | None = None):
        super().__init__()
        self.bucketed = bucketed
        self.task = task  # a custom classifier's: its outputs are also named
        if task is not None and task.labels is not None:
            labels = list(task.labels)
        self.labels = tf.constant(labels or [""])
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
        return pack_inputs([self._tokenizer.tokenize(texts) for texts in segments],
                           self.max_seq_length, self._cls_id, self._sep_id, self.bucketed)

    def outputs(self, inputs: dict) -> dict:
        """The kind's outputs (module docstring); per-position ones [B, max_seq_length],
        zeros past a bucketed batch's length (bucketing.padded_positions)."""
        return bucketing.padded_positions(self._outputs(inputs), self.max_seq_length)

    def _outputs(self, inputs: dict) -> dict:
        result = self.model(inputs, training=False)
        if self.kind == "classifier":  # result: logits [B, L]
            return self.classes(result)
        if self.kind == "squad":
            start, end = result["start_logits"], result["end_logits"]
            # Best span within the context (segment 1) and max_answer_length, as a matrix.
            context = tf.cast(inputs["segment_ids"] * inputs["input_mask"], tf.bool)
            scores = start[:, :, None] + end[:, None, :]
            positions = tf.shape(start)[1]
            length = tf.range(positions)
            allowed = (length[None, :] >= length[:, None]) & (
                length[None, :] - length[:, None] < self.max_answer_length)
            allowed = allowed[None] & context[:, :, None] & context[:, None, :]
            scores = tf.where(allowed, scores, tf.float32.min)
            best = tf.argmax(tf.reshape(scores, [tf.shape(scores)[0], -1]), axis=-1,
                             output_type=tf.int32)
            return {"start_logits": start, "end_logits": end, "input_ids": inputs["input_ids"],
                    "start": best // positions, "end": best % positions}
        if self.kind == "ner":  # per piece, for `pair`, which an NER export does not sign
            return {"predictions": tf.argmax(result, axis=-1, output_type=tf.int32),
                    "input_ids": inputs["input_ids"]}
        return {"pooled_output": result["pooled_output"],
                "sequence_output": result["sequence_output"],
                "input_mask": inputs["input_mask"]}

    def classes(self, logits: tf.Tensor) -> dict:
        """A classifier's outputs from its logits [B, L]: `probabilities` and `predictions`
        (the arg-max class, or the score of regression); a custom task's multi-label model
        gives sigmoid probabilities and multi-hot predictions [B, L] (probability >= its
        threshold); a custom task's also `labels` [B], the predicted label names (joined
        by its separator)."""
        task = self.task
        if task is not None and task.multi_label:
            probabilities = tf.sigmoid(logits)
            chosen = probabilities >= task.threshold
            names = tf.ragged.boolean_mask(
                tf.broadcast_to(self.labels, tf.shape(chosen)), chosen)
            return {"probabilities": probabilities, "predictions": tf.cast(chosen, tf.int32),
                    "labels": tf.strings.reduce_join(names, axis=-1,
                                                     separator=task.label_separator)}
        probabilities = tf.nn.softmax(logits, axis=-1)
        if probabilities.shape[-1] == 1:  # regression: the logit is the prediction
            return {"probabilities": probabilities, "predictions": logits[:, 0]}
        predictions = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        outputs = {"probabilities": probabilities, "predictions": predictions}
        if task is not None:
            outputs["labels"] = tf.gather(self.labels, predictions)
        return outputs

    def tag_words(self, text: tf.Tensor) -> dict:
        """[B] strings -> words [B, W] and their IOB2 tags [B, W] (see the module docstring)."""
        words = tf.strings.split(text)  # [B, (W)]
        pieces = self._word_pieces(words.flat_values)  # [N, (P)], P >= 1
        counts = pieces.row_lengths()
        # Each word's first piece in its row, counted after [CLS]: an exclusive running sum
        # of piece counts, restarted at every row.
        running = tf.math.cumsum(counts, exclusive=True)
        # Where each row's words start in `running`; one past the end for empty rows at the
        # end (an empty string), so every row_splits index is in range.
        starts = tf.concat([running, tf.reduce_sum(counts, keepdims=True)], axis=0)
        row_start = tf.repeat(tf.gather(starts, words.row_splits[:-1]), words.row_lengths())
        first = words.with_flat_values(running - row_start + 1)  # [B, (W)]
        room = self.max_seq_length - 2
        flat = tf.RaggedTensor.from_row_splits(pieces, words.row_splits).merge_dims(1, 2)
        ids, _ = tf_text.combine_segments([flat[:, :room]], start_of_sequence_id=self._cls_id,
                                          end_of_segment_id=self._sep_id)
        input_ids, input_mask = tf_text.pad_model_inputs(
            ids, padding_length(ids, self.max_seq_length, self.bucketed))
        predictions = self.model({"input_ids": tf.cast(input_ids, tf.int32),
                                  "input_mask": tf.cast(input_mask, tf.int32)},
                                 training=False)  # [B, S, L] logits
        predictions = tf.argmax(predictions, axis=-1, output_type=tf.int32)  # [B, S]
        fits = first <= room
        label_ids = tf.gather(predictions, tf.where(fits, first, tf.zeros_like(first)),
                              batch_dims=1)
        tags = tf.where(fits, tf.gather(self.labels, label_ids), "")
        return {"words": words.to_tensor(""), "tags": tags.to_tensor("")}

    def _word_pieces(self, words: tf.Tensor) -> tf.RaggedTensor:
        """[N] words -> [N, (P)] piece ids; a word the tokenizer drops entirely (a lone
        control character) becomes [UNK], as run_ner.py's features make it."""
        pieces = self._tokenizer.tokenize(words)
        unknown = tf.fill([tf.shape(words)[0], 1],
                          tf.constant(self._tokenizer.vocab["[UNK]"], pieces.dtype))
        padded = tf.concat([pieces, tf.RaggedTensor.from_tensor(unknown)], axis=1)
        keep = tf.ragged.range(padded.row_lengths()) < tf.maximum(pieces.row_lengths(), 1)[
            :, None]
        return tf.ragged.boolean_mask(padded, keep)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve_text(self, text):
        if self.kind == "ner":
            return self.tag_words(text)
        return self.outputs(self.encode([text]))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text_a"),
                                  tf.TensorSpec([None], tf.string, name="text_b")])
    def serve_pair(self, text_a, text_b):
        return self.outputs(self.encode([text_a, text_b]))


def build_module(bert_config_file: str, vocab_file: str, init_checkpoint: str,
                 do_lower_case: bool = True, max_seq_length: int = 128,
                 kind: str | None = None, *, bucketed: bool = False) -> ServingModule:
    """The model of the checkpoint's kind (or `kind`), loaded, with its tokenizer;
    `bucketed`: each batch padded only to its bucket length (bucketing.py)."""
    config = BertConfig.from_json_file(bert_config_file)
    found, num_labels = checkpoint_kind(init_checkpoint)
    kind = kind or found
    if kind not in KINDS:
        raise UsageError(f"kind: expected one of {KINDS}, got {kind!r}")
    labels = None
    if kind in ("classifier", "ner") and not num_labels:
        raise UsageError(f"{init_checkpoint}: no {kind} head (output_weights) to export")
    task = None
    if kind == "classifier":
        task = custom_task(init_checkpoint, num_labels)
        model = BertClassifier(config, num_labels)
    elif kind == "ner":
        labels = read_labels(label_file(init_checkpoint), num_labels)
        model = BertTokenClassifier(config, num_labels)
    elif kind == "squad":
        model = BertSpanModel(config)
    else:
        model = BertModel(config)
    checkpoint_lib.require_complete(checkpoint_lib.load_checkpoint(model, init_checkpoint))
    tokenizer = FastTokenizer(vocab_file, do_lower_case)
    check_vocab_fits(tokenizer.vocab, vocab_file, config.vocab_size, bert_config_file)
    return ServingModule(model, tokenizer, kind, max_seq_length, labels=labels,
                         bucketed=bucketed, task=task)


def read_labels(path: str, num_labels: int) -> list[str]:
    """run_ner.py's label list; it must name the checkpoint's `num_labels` labels."""
    try:
        labels = ner.read_label_list(path)
    except FileNotFoundError:
        raise UsageError(f"{path}: missing; an NER export needs the label_list.txt run_ner.py "
                         f"wrote beside the checkpoint") from None
    if len(labels) != num_labels:
        raise UsageError(f"{path}: {len(labels)} labels, but the checkpoint's output_weights "
                         f"has {num_labels} rows")
    return labels


def export(module: ServingModule, export_dir: str) -> str:
    """Writes the SavedModel with its two signatures; returns `export_dir`.

    Written to a staging folder beside `export_dir`, then swapped in: a failed or
    interrupted export leaves an earlier export at `export_dir` as it was."""
    signatures = {"serving_default": module.serve_text}
    if module.kind != "ner":
        signatures["pair"] = module.serve_pair
    try:
        return file_io.write_folder_atomically(
            export_dir, lambda staged: tf.saved_model.save(module, staged, signatures=signatures))
    except file_io.OutputError:
        raise
    except (tf.errors.OpError, OSError) as error:
        raise file_io.OutputError(
            f"export_dir: cannot write {export_dir}: {describe_os_error(error)}"
        ) from None
