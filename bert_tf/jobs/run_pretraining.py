"""run_pretraining.py's job: masked-LM (+ next-sentence) pretraining and its evaluation.

As the original: `num_train_steps` steps from `input_file` records, checkpoints
`output_dir/model.ckpt-N`, and with `do_eval` `max_eval_steps` batches scored into
`eval_results.txt` (masked-LM / next-sentence accuracy and loss, `loss`, `global_step`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
from collections.abc import Iterator

import tensorflow as tf

from bert_tf import file_io
from bert_tf.config import BertConfig
from bert_tf.data.tokenization import check_vocab_fits, load_tokenizer
from bert_tf.errors import UsageError
from bert_tf.jobs import stages
from bert_tf.models.heads import BertPretrainer
from bert_tf.models.objectives import PretrainingObjective
from bert_tf.options import TrainingOptions, option
from bert_tf.training import loop
from bert_tf.training.input_pipeline import (
    RecordFormatError,
    find_unreadable_record_file,
    pretraining_dataset,
)
from bert_tf.training.masking import DynamicMasking


@dataclasses.dataclass(kw_only=True)
class PretrainingOptions(TrainingOptions):
    """The flags of run_pretraining.py: the training flags, the original's own, additions."""

    input_file: str = option(help="Input TF example files (can be a glob or comma separated).",
                             required=True)
    max_predictions_per_seq: int = option(20, "Maximum masked LM predictions per sequence.")
    do_eval: bool = option(False, "Whether to run eval on the dev set.")
    eval_batch_size: int = option(8, "Total batch size for eval.")
    num_train_steps: int = option(100000, "Number of training steps.")
    num_warmup_steps: int = option(10000, "Number of warmup steps.")
    max_eval_steps: int = option(100, "Maximum number of eval steps.")
    # Additions: RoBERTa's dynamic masking and ALBERT's n-gram masking, and masked LM alone.
    dynamic_masking: bool = option(False, "RoBERTa: draw a fresh mask each time a record is "
                                          "read (records from create_pretraining_data.py "
                                          "--masking=dynamic).")
    vocab_file: str | None = option(None, "With dynamic_masking: the vocabulary of the records.")
    merges_file: str | None = option(None, "With dynamic_masking and a RoBERTa-style BPE "
                                           "vocab.json as vocab_file: its merges.txt.")
    masked_lm_prob: float = option(0.15, "With dynamic_masking: the masking rate.")
    do_whole_word_mask: bool = option(False, "With dynamic_masking: mask whole words.")
    ngram_masking: int = option(1, "With dynamic_masking: spans of up to this many words, "
                                   "P(n) ~ 1/n (ALBERT).")
    nsp: bool = option(True, "Train next-sentence prediction (false: masked LM alone, as "
                             "RoBERTa; for records made with --packing=full_sentences/"
                             "doc_sentences).")


def run(options: PretrainingOptions, strategy: tf.distribute.Strategy) -> dict | None:
    """Trains and/or evaluates as the original run_pretraining.py; returns the eval results
    (also written to `output_dir/eval_results.txt`) when `do_eval`."""
    if options.max_predictions_per_seq < 1:
        raise UsageError(f"max_predictions_per_seq must be at least 1 (the records' masked "
                         f"positions per sequence), found {options.max_predictions_per_seq}")
    config = stages.prepare(options, strategy, ["do_train", "do_eval"],
                            ["train_batch_size", "eval_batch_size"])
    model, optimizer = stages.build(
        options, strategy, lambda dtype: BertPretrainer(config, dtype=dtype),
        options.num_train_steps, options.num_warmup_steps,
    )
    objective = PretrainingObjective(nsp=options.nsp)
    masking = dynamic_masking(options, config)

    def dataset_fn(is_training: bool, batch_size: int) -> loop.DatasetFn:
        def make(context, start_step):
            return pretraining_dataset(
                options.input_file, batch_size, options.max_seq_length,
                options.max_predictions_per_seq, is_training=is_training,
                shuffle=not options.deterministic, seed=options.seed,
                input_context=context, start_step=start_step, masking=masking,
            )

        return make

    with naming_unreadable_records(options.input_file):
        global_step = stages.train_or_restore(
            options, strategy, model, optimizer, objective=objective,
            dataset_fn=dataset_fn(True, options.train_batch_size),
            num_train_steps=options.num_train_steps,
        )
        if not options.do_eval:
            return None
        results = loop.evaluate(strategy, model, objective,
                                    dataset_fn(False, options.eval_batch_size),
                                    options.max_eval_steps, options.jit_compile)
    return stages.report(strategy, options.output_dir, {**results, "global_step": global_step})


def dynamic_masking(options: PretrainingOptions, config: BertConfig) -> DynamicMasking | None:
    """The masking drawn as records are read (`--dynamic_masking`), or None."""
    if not options.dynamic_masking:
        return None
    if not options.vocab_file:
        raise UsageError("dynamic_masking needs vocab_file (for [MASK] and the word pieces)")
    if options.merges_file and options.do_whole_word_mask:
        raise UsageError("do_whole_word_mask needs WordPiece '##' continuations; BPE "
                         "(--merges_file) marks word starts instead, which it does not read")
    vocab = load_tokenizer(options.vocab_file, merges_file=options.merges_file).vocab
    check_vocab_fits(vocab, options.vocab_file, config.vocab_size, options.bert_config_file)
    return DynamicMasking.from_vocab(
        vocab, options.do_whole_word_mask,
        masked_lm_prob=options.masked_lm_prob,
        max_predictions_per_seq=options.max_predictions_per_seq,
        max_ngram=options.ngram_masking,
        seed=options.seed if options.seed is not None else random.randrange(2**31),
    )


@contextlib.contextmanager
def naming_unreadable_records(input_file: str) -> Iterator[None]:
    """A read error of tf.data names no file: find and name it."""
    try:
        yield
    except tf.errors.DataLossError as error:
        culprit = find_unreadable_record_file(file_io.expand_patterns(input_file))
        raise RecordFormatError(
            f"input_file: {culprit or error.message.strip().splitlines()[0]}; the file is "
            f"truncated or corrupt (remake it with create_pretraining_data.py)"
        ) from None
