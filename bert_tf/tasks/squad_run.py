"""run_squad.py's job: fine-tune on a SQuAD file and/or predict (and score) another.

As the original: training examples shuffled with seed 12345, `train.tf_record` and
`eval.tf_record` in `output_dir`, `num_train_steps = int(examples / batch * epochs)`;
prediction writes `predictions.json`, `nbest_predictions.json` and, for v2.0,
`null_odds.json`. Beyond the original, the predictions are scored in process with the
official metrics (`eval_results.json`) when the predict file has answers.
"""

from __future__ import annotations

import dataclasses
import json
import os

import tensorflow as tf
from absl import logging

from bert_tf import file_io, training
from bert_tf.config import BertConfig
from bert_tf.errors import UsageError
from bert_tf.input_pipeline import classifier_dataset
from bert_tf.tasks import squad, squad_eval
from bert_tf.tokenization import FullTokenizer, check_vocab_fits, validate_case_matches_checkpoint


@dataclasses.dataclass
class SquadOptions:
    """The flags of run_squad.py: the original's names and defaults, then additions."""

    bert_config_file: str
    vocab_file: str
    output_dir: str
    train_file: str | None = None
    predict_file: str | None = None
    init_checkpoint: str | None = None
    do_lower_case: bool = True
    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64
    do_train: bool = False
    do_predict: bool = False
    train_batch_size: int = 32
    predict_batch_size: int = 8
    learning_rate: float = 5e-5
    num_train_epochs: float = 3.0
    warmup_proportion: float = 0.1
    save_checkpoints_steps: int = 1000
    iterations_per_loop: int = 1000
    n_best_size: int = 20
    max_answer_length: int = 30
    verbose_logging: bool = False
    version_2_with_negative: bool = False
    null_score_diff_threshold: float = 0.0
    # Additions (defaults keep the original's behaviour).
    optimizer: str = "adamw"
    mixed_precision: str = ""
    jit_compile: bool = False
    deterministic: bool = False
    seed: int | None = None
    keep_checkpoint_max: int = 5
    gradient_accumulation_steps: int = 1


def validate(options: SquadOptions, config: BertConfig) -> None:
    """The original's `validate_flags_or_throw`, with the file and flag named."""
    if not options.do_train and not options.do_predict:
        raise UsageError("At least one of `do_train` or `do_predict` must be True.")
    if options.do_train and not options.train_file:
        raise UsageError("If `do_train` is True, then `train_file` must be specified.")
    if options.do_predict and not options.predict_file:
        raise UsageError("If `do_predict` is True, then `predict_file` must be specified.")
    training.check_sequence_length(options.max_seq_length, config, options.bert_config_file)
    if options.max_seq_length <= options.max_query_length + 3:
        raise UsageError(
            f"max_seq_length ({options.max_seq_length}) must be greater than max_query_length "
            f"({options.max_query_length}) + 3"
        )
    room = options.max_seq_length - 3  # a window's length with an empty question
    if options.doc_stride <= 0 or options.doc_stride >= room:
        raise UsageError(
            f"doc_stride={options.doc_stride} must be between 1 and max_seq_length - 3 = "
            f"{room} (the longest context window); windows would never overlap"
        )
    if options.doc_stride > room - options.max_query_length:
        logging.warning(
            "doc_stride=%d exceeds the window left by a %d-token question (%d): windows of "
            "long questions will not overlap", options.doc_stride, options.max_query_length,
            room - options.max_query_length,
        )


def run(options: SquadOptions, strategy: tf.distribute.Strategy) -> dict:
    """Runs the requested stages; returns {"metrics": ...} when predictions were scored."""
    config = BertConfig.from_json_file(options.bert_config_file)
    validate(options, config)
    validate_case_matches_checkpoint(options.do_lower_case, options.init_checkpoint)
    tokenizer = FullTokenizer(options.vocab_file, options.do_lower_case)
    check_vocab_fits(tokenizer.vocab, options.vocab_file, config.vocab_size,
                     options.bert_config_file)
    training.set_determinism(options.deterministic, options.seed)
    for flag in ("train_batch_size", "predict_batch_size"):
        slices = options.gradient_accumulation_steps if flag == "train_batch_size" else 1
        training.check_batch_size(flag, getattr(options, flag),
                                  strategy.num_replicas_in_sync * slices)
    tf.io.gfile.makedirs(options.output_dir)
    v2 = options.version_2_with_negative

    train_examples = []
    if options.do_train:
        train_examples, skipped = squad.read_squad_examples(options.train_file, True, v2)
        logging.info("%d training questions (%d skipped: answer not found)",
                     len(train_examples), skipped)
    num_train_steps = int(len(train_examples) / options.train_batch_size
                          * options.num_train_epochs)
    with strategy.scope():
        model = squad.BertSpanModel(config, dtype=training.dtype_policy(options.mixed_precision))
        optimizer = training.make_optimizer(
            options, num_train_steps, int(num_train_steps * options.warmup_proportion)
        )
        optimizer.build(model.trainable_variables)
    task = squad.SpanTask()

    def dataset_fn(path, batch_size, is_training):
        spec = squad.feature_spec(options.max_seq_length, is_training)

        def make(context, start_step):
            return classifier_dataset(
                path, spec, batch_size, is_training, shuffle=not options.deterministic,
                seed=options.seed, input_context=context, start_step=start_step,
            )

        return make

    def features(examples, is_training):
        return squad.convert_examples_to_features(
            examples, tokenizer, options.max_seq_length, options.doc_stride,
            options.max_query_length, is_training,
        )

    if options.do_train:
        train_file = os.path.join(options.output_dir, "train.tf_record")
        squad.write_features(features(squad.shuffle_for_training(train_examples), True),
                             train_file, is_training=True)
        training.train(
            strategy, model, optimizer, task,
            dataset_fn(train_file, options.train_batch_size, True),
            training.run_config(options, num_train_steps),
            options.train_batch_size, options.init_checkpoint,
        )
    else:
        training.restore_or_initialize(
            model, optimizer, options.output_dir, options.init_checkpoint
        )
    if not options.do_predict:
        return {}

    examples, _ = squad.read_squad_examples(options.predict_file, False, v2)
    eval_file = os.path.join(options.output_dir, "eval.tf_record")
    eval_features = squad.write_features(features(examples, False), eval_file, False,
                                         pad_to_multiple=options.predict_batch_size)
    logging.info("Predicting %d questions (%d windows)", len(examples), len(eval_features))
    results = squad.collect_results(training.predict(
        strategy, model, task.predict, dataset_fn(eval_file, options.predict_batch_size, False),
        options.jit_compile,
    ))
    predictions, nbest, null_odds = squad.postprocess(
        examples, eval_features, results, options.n_best_size, options.max_answer_length,
        options.do_lower_case, v2, options.null_score_diff_threshold,
    )
    if not strategy.extended.should_checkpoint:
        return {}
    outputs = {"predictions.json": predictions, "nbest_predictions.json": nbest}
    if v2:
        outputs["null_odds.json"] = null_odds
    for name, value in outputs.items():
        file_io.write_atomically(os.path.join(options.output_dir, name),
                                  json.dumps(value, indent=4) + "\n")
    data = squad.load_squad_json(options.predict_file)
    if not any(qa.get("answers") for a in data for p in a["paragraphs"] for qa in p["qas"]):
        return {}
    metrics = squad_eval.evaluate(data, predictions, null_odds if v2 else None)
    file_io.write_atomically(os.path.join(options.output_dir, "eval_results.json"),
                              json.dumps(metrics, indent=2) + "\n")
    logging.info("SQuAD metrics: %s", metrics)
    return {"metrics": metrics}
