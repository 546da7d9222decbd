"""The pretraining task for the training driver: the original losses and eval metrics.

Masked LM loss: `sum(w * -log p(label)) / (sum(w) + 1e-5)` over the masked positions of the
batch (w = `masked_lm_weights`, 0 on padding slots). Next sentence loss: mean over the batch
of `-log p(label)`. Total loss: their sum. Eval metrics as the original `metric_fn`:
weighted masked-LM accuracy and mean loss, next-sentence accuracy and mean loss, and `loss`,
the mean over eval batches of the batch's total loss.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
from collections.abc import Iterator

import tensorflow as tf
from absl import logging
from keras import ops

from bert_tf import training
from bert_tf.config import BertConfig
from bert_tf.errors import UsageError
from bert_tf.heads import BertPretrainer, label_log_probs
from bert_tf.input_pipeline import (
    RecordFormatError,
    expand_patterns,
    find_unreadable_record_file,
    pretraining_dataset,
)
from bert_tf.masking import DynamicMasking
from bert_tf.tokenization import check_vocab_fits, load_vocab


def _hits(log_probs, labels):
    """1.0 where the arg-max class is the label, else 0.0; shape of `labels`."""
    predictions = ops.cast(ops.argmax(log_probs, axis=-1), "int32")
    return ops.cast(predictions == ops.cast(labels, "int32"), "float32")


class PretrainingTask:
    """Masked LM + next sentence prediction on `BertPretrainer` outputs; with `nsp=False`
    (RoBERTa) masked LM alone."""

    def __init__(self, nsp: bool = True):
        self.nsp = nsp

    def normalizers(self, batch: dict) -> dict:
        return {
            "masked_lm_weight": ops.sum(batch["masked_lm_weights"]),
            "examples": ops.cast(ops.shape(batch["input_ids"])[0], "float32"),
        }

    def _per_example_losses(self, outputs: dict, batch: dict):
        """-> masked-LM losses [B, P] and next-sentence losses [B]."""
        masked_lm = -label_log_probs(outputs["masked_lm_log_probs"], batch["masked_lm_ids"])
        labels = ops.reshape(batch["next_sentence_labels"], (-1,))
        next_sentence = -label_log_probs(outputs["next_sentence_log_probs"], labels)
        return masked_lm, next_sentence

    def loss(self, outputs: dict, batch: dict, normalizers: dict):
        """This replica's share of the global batch's total loss (scalar float32)."""
        masked_lm, next_sentence = self._per_example_losses(outputs, batch)
        weights = batch["masked_lm_weights"]
        masked_lm_loss = ops.sum(weights * masked_lm) / (normalizers["masked_lm_weight"] + 1e-5)
        if not self.nsp:
            return masked_lm_loss
        return masked_lm_loss + ops.sum(next_sentence) / normalizers["examples"]

    def metrics(self, outputs: dict, batch: dict) -> dict:
        """Sums over this replica's batch."""
        masked_lm, next_sentence = self._per_example_losses(outputs, batch)
        weights = batch["masked_lm_weights"]
        masked_lm_hits = _hits(outputs["masked_lm_log_probs"], batch["masked_lm_ids"])
        labels = ops.reshape(batch["next_sentence_labels"], (-1,))
        next_sentence_hits = _hits(outputs["next_sentence_log_probs"], labels)
        return {
            "masked_lm_correct": ops.sum(weights * masked_lm_hits),
            "masked_lm_loss": ops.sum(weights * masked_lm),
            "masked_lm_weight": ops.sum(weights),
            "next_sentence_correct": ops.sum(next_sentence_hits),
            "next_sentence_loss": ops.sum(next_sentence),
            "examples": ops.cast(ops.shape(labels)[0], "float32"),
        }

    def finalize_metrics(self, batches: list[dict]) -> dict:
        """Per-batch sums -> the original's eval_results values."""
        total = {name: sum(batch[name] for batch in batches) for name in batches[0]}
        batch_losses = [
            b["masked_lm_loss"] / (b["masked_lm_weight"] + 1e-5)
            + (b["next_sentence_loss"] / b["examples"] if self.nsp else 0.0)
            for b in batches
        ]
        results = {
            "loss": sum(batch_losses) / len(batch_losses),
            "masked_lm_accuracy": total["masked_lm_correct"] / total["masked_lm_weight"],
            "masked_lm_loss": total["masked_lm_loss"] / total["masked_lm_weight"],
        }
        if self.nsp:
            results["next_sentence_accuracy"] = (
                total["next_sentence_correct"] / total["examples"])
            results["next_sentence_loss"] = total["next_sentence_loss"] / total["examples"]
        return results


@dataclasses.dataclass
class PretrainingOptions:
    """The flags of run_pretraining.py: the original's names and defaults, then additions."""

    bert_config_file: str
    input_file: str
    output_dir: str
    init_checkpoint: str | None = None
    max_seq_length: int = 128
    max_predictions_per_seq: int = 20
    do_train: bool = False
    do_eval: bool = False
    train_batch_size: int = 32
    eval_batch_size: int = 8
    learning_rate: float = 5e-5
    num_train_steps: int = 100000
    num_warmup_steps: int = 10000
    save_checkpoints_steps: int = 1000
    iterations_per_loop: int = 1000
    max_eval_steps: int = 100
    # Additions (defaults keep the original's behaviour).
    optimizer: str = "adamw"
    mixed_precision: str = ""
    jit_compile: bool = False
    deterministic: bool = False
    seed: int | None = None
    keep_checkpoint_max: int = 5
    gradient_accumulation_steps: int = 1
    dynamic_masking: bool = False
    vocab_file: str | None = None
    masked_lm_prob: float = 0.15
    do_whole_word_mask: bool = False
    nsp: bool = True
    ngram_masking: int = 1


@contextlib.contextmanager
def _naming_unreadable_records(input_file: str) -> Iterator[None]:
    """A read error of tf.data during training names no file: find and name it."""
    try:
        yield
    except tf.errors.DataLossError as error:
        culprit = find_unreadable_record_file(expand_patterns(input_file))
        raise RecordFormatError(
            f"input_file: {culprit or error.message.strip().splitlines()[0]}; the file is "
            f"truncated or corrupt (remake it with create_pretraining_data.py)"
        ) from None


def run(options: PretrainingOptions, strategy: tf.distribute.Strategy) -> dict | None:
    """Trains and/or evaluates as the original run_pretraining.py; returns the eval results
    (also written to `output_dir/eval_results.txt`) when `do_eval`."""
    if not options.do_train and not options.do_eval:
        raise UsageError("At least one of `do_train` or `do_eval` must be True.")
    config = BertConfig.from_json_file(options.bert_config_file)
    training.check_sequence_length(options.max_seq_length, config, options.bert_config_file)
    training.set_determinism(options.deterministic, options.seed)
    replicas = strategy.num_replicas_in_sync
    training.check_batch_size("train_batch_size", options.train_batch_size,
                              replicas * options.gradient_accumulation_steps)
    training.check_batch_size("eval_batch_size", options.eval_batch_size, replicas)

    with strategy.scope():
        model = BertPretrainer(config, dtype=training.dtype_policy(options.mixed_precision))
        optimizer = training.make_optimizer(
            options, options.num_train_steps, options.num_warmup_steps
        )
    task = PretrainingTask(nsp=options.nsp)

    masking = None
    if options.dynamic_masking:
        if not options.vocab_file:
            raise UsageError("dynamic_masking needs vocab_file (for [MASK] and the word pieces)")
        check_vocab_fits(load_vocab(options.vocab_file), options.vocab_file,
                         config.vocab_size, options.bert_config_file)
        masking = DynamicMasking.from_vocab(
            options.vocab_file, options.do_whole_word_mask,
            masked_lm_prob=options.masked_lm_prob,
            max_predictions_per_seq=options.max_predictions_per_seq,
            max_ngram=options.ngram_masking,
            seed=options.seed if options.seed is not None else random.randrange(2**31),
        )

    def dataset_fn(is_training: bool, batch_size: int):
        def make(context, start_step):
            return pretraining_dataset(
                options.input_file, batch_size, options.max_seq_length,
                options.max_predictions_per_seq, is_training=is_training,
                shuffle=not options.deterministic, seed=options.seed,
                input_context=context, start_step=start_step, masking=masking,
            )

        return make

    if options.do_train:
        with _naming_unreadable_records(options.input_file):
            training.train(
                strategy, model, optimizer, task, dataset_fn(True, options.train_batch_size),
                training.run_config(options, options.num_train_steps),
                options.train_batch_size, options.init_checkpoint,
            )
    if not options.do_eval:
        return None
    if not options.do_train:
        with strategy.scope():
            optimizer.build(model.trainable_variables)
        training.restore_or_initialize(
            model, optimizer, options.output_dir, options.init_checkpoint
        )
    with _naming_unreadable_records(options.input_file):
        results = training.evaluate(
            strategy, model, task, dataset_fn(False, options.eval_batch_size),
            options.max_eval_steps, options.jit_compile,
        )
    results["global_step"] = int(optimizer.iterations.numpy())
    if strategy.extended.should_checkpoint:
        training.write_results(os.path.join(options.output_dir, "eval_results.txt"), results)
    for key in sorted(results):
        logging.info("  %s = %s", key, results[key])
    return results
