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

from bert_tf import file_io
from bert_tf.data.tokenization import FullTokenizer
from bert_tf.errors import UsageError
from bert_tf.jobs import stages
from bert_tf.models.heads import BertSpanModel
from bert_tf.models.objectives import SpanObjective
from bert_tf.options import FineTuningOptions, bucketing_option, option
from bert_tf.tasks import squad, squad_eval
from bert_tf.training import loop
from bert_tf.training.input_pipeline import squad_features


@dataclasses.dataclass(kw_only=True)
class SquadOptions(FineTuningOptions):
    """The flags of run_squad.py: the fine-tuning flags and the original's own."""

    train_file: str | None = option(None, "SQuAD json for training, e.g. train-v1.1.json")
    predict_file: str | None = option(None, "SQuAD json for predictions, e.g. dev-v1.1.json")
    max_seq_length: int = option(384, "Maximum total input sequence length.")
    doc_stride: int = option(128, "Stride between chunks of a long document.")
    max_query_length: int = option(64, "Maximum number of question tokens.")
    do_predict: bool = option(False, "Whether to run eval on the dev set.")
    n_best_size: int = option(20, "Total number of n-best predictions to generate.")
    max_answer_length: int = option(30, "Maximum length of an answer, in word pieces.")
    verbose_logging: bool = option(False, "Accepted for compatibility (no effect).")
    version_2_with_negative: bool = option(False, "SQuAD 2.0: some questions have no answer.")
    null_score_diff_threshold: float = option(
        0.0, "Predict null if null_score - best_non_null is greater than the threshold.")
    bucketing: str = bucketing_option(
        "none", " Opt-in here: bucketed prediction never ranks positions past a batch's "
        "bucket, where the original ranks padding in its n-best search and then drops it, "
        "so a weakly trained model's n-best lists (and some answers) can differ.")


def run(options: SquadOptions, strategy: tf.distribute.Strategy) -> dict:
    """Runs the requested stages; returns {"metrics": ...} when predictions were scored."""
    config = stages.prepare(options, strategy, ["do_train", "do_predict"],
                            ["train_batch_size", "predict_batch_size"])
    validate(options)
    tokenizer = stages.load_tokenizer(options, config)
    train_examples = []
    if options.do_train:
        train_examples, skipped = squad.read_squad_examples(
            options.train_file, True, options.version_2_with_negative)
        logging.info("%d training questions (%d skipped: answer not found)",
                     len(train_examples), skipped)
    num_train_steps = int(len(train_examples) / options.train_batch_size
                          * options.num_train_epochs)
    model, optimizer = stages.build(
        options, strategy, lambda dtype: BertSpanModel(config, dtype=dtype),
        num_train_steps, int(num_train_steps * options.warmup_proportion),
    )
    train_file = os.path.join(options.output_dir, "train.tf_record")
    if options.do_train:
        squad.write_features(windows(squad.shuffle_for_training(train_examples), tokenizer,
                                     options, is_training=True), train_file, is_training=True)
    spec = squad_features(options.max_seq_length, is_training=True)
    stages.train_or_restore(
        options, strategy, model, optimizer, objective=SpanObjective(),
        dataset_fn=stages.record_batches(options, train_file, spec, options.train_batch_size,
                                         True),
        num_train_steps=num_train_steps,
    )
    return predict(options, strategy, model, tokenizer) if options.do_predict else {}


def windows(examples: list[squad.SquadExample], tokenizer: FullTokenizer,
            options: SquadOptions, is_training: bool):
    """The examples' doc-stride windows (squad.convert_examples_to_features)."""
    return squad.convert_examples_to_features(
        examples, tokenizer, options.max_seq_length, options.doc_stride,
        options.max_query_length, is_training,
    )


def predict(options: SquadOptions, strategy: tf.distribute.Strategy, model: BertSpanModel,
            tokenizer: FullTokenizer) -> dict:
    """Predicts `predict_file`, writes the prediction files on the chief and scores them
    when the file has answers (see write_predictions)."""
    v2 = options.version_2_with_negative
    examples, _ = squad.read_squad_examples(options.predict_file, False, v2)
    eval_file = os.path.join(options.output_dir, "eval.tf_record")
    eval_features = squad.write_features(windows(examples, tokenizer, options, False),
                                         eval_file, False,
                                         pad_to_multiple=options.predict_batch_size)
    logging.info("Predicting %d questions (%d windows)", len(examples), len(eval_features))
    if options.bucketing != "none":
        logging.warning("--bucketing=%s: the n-best search never ranks positions past a "
                        "batch's bucket (the original ranks padding too, then drops it), so "
                        "n-best lists can differ from the original's; --bucketing=none (the "
                        "default) reproduces them in every case", options.bucketing)
    spec = squad_features(options.max_seq_length, is_training=False)
    results = squad.collect_results(loop.predict(
        strategy, model, SpanObjective().predict,
        stages.record_batches(options, eval_file, spec, options.predict_batch_size, False),
        options.jit_compile,
    ))
    predictions = squad.postprocess(
        examples, eval_features, results, options.n_best_size, options.max_answer_length,
        do_lower_case=options.do_lower_case, version_2_with_negative=v2,
        null_score_diff_threshold=options.null_score_diff_threshold,
    )
    if not strategy.extended.should_checkpoint:
        return {}
    return write_predictions(options, *predictions)


def validate(options: SquadOptions) -> None:
    """The original's `validate_flags_or_throw`, with the file and flag named."""
    if options.do_train and not options.train_file:
        raise UsageError("If `do_train` is True, then `train_file` must be specified.")
    if options.do_predict and not options.predict_file:
        raise UsageError("If `do_predict` is True, then `predict_file` must be specified.")
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


def write_predictions(options: SquadOptions, predictions: dict, nbest: dict,
                      null_odds: dict) -> dict:
    """Writes the original's prediction files and, when the predict file has answers,
    `eval_results.json` with the official metrics; returns {"metrics": ...} then."""
    v2 = options.version_2_with_negative
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
