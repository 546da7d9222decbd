"""run_classifier.py's job: fine-tune, evaluate and predict a GLUE/XNLI task.

As the original: features cached as `train.tf_record` / `eval.tf_record` /
`predict.tf_record` in `output_dir`; `num_train_steps = int(examples / batch * epochs)`,
warmup `int(steps * warmup_proportion)`; `eval_results.txt` with `eval_accuracy`,
`eval_loss`, `global_step`, `loss` (plus the task's GLUE metric); `test_results.tsv` with
one line of class probabilities per test example. Also `<TASK>.tsv`, a GLUE submission
file (`index<TAB>prediction`, label names).
"""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np
import tensorflow as tf
from absl import logging

from bert_tf import file_io, training
from bert_tf.config import BertConfig
from bert_tf.errors import UsageError
from bert_tf.input_pipeline import classifier_dataset
from bert_tf.tasks import glue
from bert_tf.tokenization import FullTokenizer, check_vocab_fits, validate_case_matches_checkpoint

# The file names the GLUE leaderboard expects (MNLI's test here is the matched set).
SUBMISSION_NAMES = {"cola": "CoLA", "sst-2": "SST-2", "sts-b": "STS-B", "mnli": "MNLI-m"}


@dataclasses.dataclass
class ClassifierOptions:
    """The flags of run_classifier.py: the original's names and defaults, then additions."""

    data_dir: str
    bert_config_file: str
    task_name: str
    vocab_file: str
    output_dir: str
    init_checkpoint: str | None = None
    do_lower_case: bool = True
    max_seq_length: int = 128
    do_train: bool = False
    do_eval: bool = False
    do_predict: bool = False
    train_batch_size: int = 32
    eval_batch_size: int = 8
    predict_batch_size: int = 8
    learning_rate: float = 5e-5
    num_train_epochs: float = 3.0
    warmup_proportion: float = 0.1
    save_checkpoints_steps: int = 1000
    iterations_per_loop: int = 1000
    # Additions (defaults keep the original's behaviour).
    optimizer: str = "adamw"
    mixed_precision: str = ""
    jit_compile: bool = False
    deterministic: bool = False
    seed: int | None = None
    keep_checkpoint_max: int = 5
    gradient_accumulation_steps: int = 1
    xnli_language: str = "zh"


def run(options: ClassifierOptions, strategy: tf.distribute.Strategy) -> dict:
    """Runs the requested stages; returns {"eval": results, "predict": path} as done."""
    if not (options.do_train or options.do_eval or options.do_predict):
        raise UsageError("At least one of `do_train`, `do_eval` or `do_predict' must be True.")
    validate_case_matches_checkpoint(options.do_lower_case, options.init_checkpoint)
    config = BertConfig.from_json_file(options.bert_config_file)
    training.check_sequence_length(options.max_seq_length, config, options.bert_config_file)
    task = glue.get_task(options.task_name, options.xnli_language)
    tokenizer = FullTokenizer(options.vocab_file, options.do_lower_case)
    check_vocab_fits(tokenizer.vocab, options.vocab_file, config.vocab_size,
                     options.bert_config_file)
    training.set_determinism(options.deterministic, options.seed)
    for flag in ("train_batch_size", "eval_batch_size", "predict_batch_size"):
        slices = options.gradient_accumulation_steps if flag == "train_batch_size" else 1
        training.check_batch_size(flag, getattr(options, flag),
                                  strategy.num_replicas_in_sync * slices)
    tf.io.gfile.makedirs(options.output_dir)
    spec = glue.feature_spec(options.max_seq_length, task)

    train_examples = glue.read_examples(task, options.data_dir, "train") if options.do_train else []
    num_train_steps = int(len(train_examples) / options.train_batch_size * options.num_train_epochs)
    num_warmup_steps = int(num_train_steps * options.warmup_proportion)
    with strategy.scope():
        model = glue.BertClassifier(
            config, task.num_labels, dtype=training.dtype_policy(options.mixed_precision)
        )
        optimizer = training.make_optimizer(options, num_train_steps, num_warmup_steps)
        optimizer.build(model.trainable_variables)
    classification = glue.ClassificationTask(task)

    def dataset_fn(path: str, batch_size: int, is_training: bool):
        def make(context, start_step):
            return classifier_dataset(
                path, spec, batch_size, is_training, shuffle=not options.deterministic,
                seed=options.seed, input_context=context, start_step=start_step,
            )

        return make

    result: dict = {}
    if options.do_train:
        train_file = os.path.join(options.output_dir, "train.tf_record")
        glue.write_features(train_examples, task, options.max_seq_length, tokenizer, train_file)
        logging.info("Training on %d examples, batch %d, %d steps", len(train_examples),
                     options.train_batch_size, num_train_steps)
        training.train(
            strategy, model, optimizer, classification,
            dataset_fn(train_file, options.train_batch_size, True),
            training.run_config(options, num_train_steps),
            options.train_batch_size, options.init_checkpoint,
        )
    else:
        training.restore_or_initialize(
            model, optimizer, options.output_dir, options.init_checkpoint
        )
    global_step = int(optimizer.iterations.numpy())
    is_chief = strategy.extended.should_checkpoint

    def predict(examples, name: str, batch_size: int) -> dict[str, np.ndarray]:
        path = os.path.join(options.output_dir, f"{name}.tf_record")
        glue.write_features(examples, task, options.max_seq_length, tokenizer, path,
                            pad_to_multiple=batch_size)
        started = time.time()
        batches = list(training.predict(
            strategy, model, classification.predict, dataset_fn(path, batch_size, False),
            options.jit_compile,
        ))
        logging.info("%s: %d examples in %.1f s", name, len(examples), time.time() - started)
        return {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}

    if options.do_eval:
        splits = ["dev"] + (["dev_mismatched"] if len(task.dev) > 1 else [])
        results = {}
        for split in splits:
            examples = glue.read_examples(task, options.data_dir, split)
            outputs = predict(examples, "eval", options.eval_batch_size)
            metrics = glue.compute_metrics(task, outputs, options.eval_batch_size)
            suffix = "" if split == "dev" else "_mismatched"
            results.update({f"{key}{suffix}": value for key, value in metrics.items()})
        results["global_step"] = global_step
        if is_chief:
            training.write_results(os.path.join(options.output_dir, "eval_results.txt"), results)
        for key in sorted(results):
            logging.info("  %s = %s", key, results[key])
        result["eval"] = results

    if options.do_predict:
        examples = glue.read_examples(task, options.data_dir, "test")
        outputs = predict(examples, "predict", options.predict_batch_size)
        real = outputs["is_real_example"].astype(bool)
        if is_chief:
            result["predict"] = write_predictions(task, outputs, real, options.output_dir)
    return result


def write_predictions(task: glue.Task, outputs: dict, real: np.ndarray, output_dir: str) -> str:
    """`test_results.tsv` (the original's: probabilities, or the score for regression) and
    the GLUE submission file `<TASK>.tsv`, both atomically. Returns the first's path."""
    if task.is_regression:
        scores = outputs["predictions"][real]
        lines = [f"{np.float32(score)}\n" for score in scores]
        names = [f"{score:.3f}" for score in scores]
    else:
        probabilities = outputs["probabilities"][real]
        lines = ["\t".join(str(p) for p in row) + "\n" for row in probabilities]
        names = [task.labels[i] for i in probabilities.argmax(-1)]
    path = os.path.join(output_dir, "test_results.tsv")
    file_io.write_atomically(path, "".join(lines))
    submission = ["index\tprediction\n"] + [f"{i}\t{name}\n" for i, name in enumerate(names)]
    name = SUBMISSION_NAMES.get(task.name, task.name.upper())
    file_io.write_atomically(os.path.join(output_dir, f"{name}.tsv"), "".join(submission))
    return path

