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
from bert_tf.config import BertConfig
from bert_tf.data.tokenization import FullTokenizer
from bert_tf.errors import UsageError
from bert_tf.jobs import fine_tuning, stages
from bert_tf.models.heads import BertSpanModel
from bert_tf.models.objectives import SpanObjective
from bert_tf.options import FineTuningOptions, bucketing_option, option
from bert_tf.tasks import squad, squad_eval


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
    """Runs the requested stages (jobs/fine_tuning.py); returns {"metrics": ...} when
    predictions were scored."""
    return fine_tuning.run(options, strategy, SquadTask)


class SquadTask:
    """SQuAD 1.1 / 2.0 for the driver: doc-stride windows, a start and an end per piece.
    It has no separate evaluation: prediction scores the predict file when it has answers."""

    stages = ("do_train", "do_predict")
    batch_flags = ("train_batch_size", "predict_batch_size")

    def __init__(self, options: SquadOptions, tokenizer: FullTokenizer):
        validate(options)
        self.options, self.tokenizer = options, tokenizer
        self.train_examples = []
        if options.do_train:
            self.train_examples, skipped = squad.read_squad_examples(
                options.train_file, True, options.version_2_with_negative)
            logging.info("%d training questions (%d skipped: answer not found)",
                         len(self.train_examples), skipped)
        self.layout = squad.squad_layout(options.max_seq_length, is_training=True)
        self.objective = SpanObjective()

    def windows(self, examples: list[squad.SquadExample], is_training: bool):
        """The examples' doc-stride windows (squad.convert_examples_to_features)."""
        options = self.options
        return squad.convert_examples_to_features(
            examples, self.tokenizer, options.max_seq_length, options.doc_stride,
            options.max_query_length, is_training,
        )

    def write_training_records(self, path: str) -> int:
        """The shuffled questions' windows; returns the questions (the original's step count
        counts them, not the windows)."""
        squad.write_features(self.windows(squad.shuffle_for_training(self.train_examples), True),
                             path, is_training=True)
        return len(self.train_examples)

    def make_model(self, config: BertConfig, dtype_policy: str) -> BertSpanModel:
        return BertSpanModel(config, dtype=dtype_policy)

    def predict(self, predictor: fine_tuning.Predictor) -> dict:
        """Predicts `predict_file`, writes the prediction files on the chief and scores them
        when the file has answers (see write_predictions)."""
        options = self.options
        v2 = options.version_2_with_negative
        examples, _ = squad.read_squad_examples(options.predict_file, False, v2)
        eval_file = os.path.join(options.output_dir, "eval.tf_record")
        eval_features = squad.write_features(self.windows(examples, False), eval_file, False,
                                             pad_to_multiple=options.predict_batch_size)
        logging.info("Predicting %d questions (%d windows)", len(examples), len(eval_features))
        if stages.bucketing_rule(options).buckets(is_training=False):
            logging.warning("--bucketing=%s: the n-best search never ranks positions past a "
                            "batch's bucket (the original ranks padding too, then drops it), "
                            "so n-best lists can differ from the original's; --bucketing=none "
                            "(the default) reproduces them in every case", options.bucketing)
        layout = squad.squad_layout(options.max_seq_length, is_training=False)
        results = squad.collect_results(
            predictor.batches(eval_file, layout, options.predict_batch_size))
        predictions = squad.postprocess(
            examples, eval_features, results, options.n_best_size, options.max_answer_length,
            do_lower_case=options.do_lower_case, version_2_with_negative=v2,
            null_score_diff_threshold=options.null_score_diff_threshold,
        )
        if not predictor.chief:
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
