"""run_squad.py end to end: the original's predictions, n-best lists, v2 null odds,
training loss, and bad input."""

import json

import numpy as np
import pytest
import tensorflow as tf
from conftest import data_path, event_scalars, fixture_path, run_script

import bert_tf
from bert_tf.data.tokenization import FullTokenizer
from bert_tf.jobs import run_squad as squad_job
from bert_tf.models import heads, objectives
from bert_tf.tasks import squad, squad_eval


def tokenizer():
    return FullTokenizer(str(fixture_path("tiny_ckpt", "vocab.txt")), True)


def squad_options(output_dir, **overrides) -> squad_job.SquadOptions:
    tiny = fixture_path("tiny_ckpt")
    values = dict(
        bert_config_file=str(tiny / "bert_config.json"), vocab_file=str(tiny / "vocab.txt"),
        output_dir=str(output_dir), predict_file=str(data_path("squad", "v1_dev_normans.json")),
        init_checkpoint=str(fixture_path("squad", "tiny_squad_ckpt") / "model.ckpt"),
        do_predict=True, max_seq_length=128, doc_stride=64,
    )
    values.update(overrides)
    return squad_job.SquadOptions(**values)


@pytest.mark.parametrize("bucketing", ["none", "eval"])
def test_predictions_reproduce_the_original_run(tmp_path, bucketing):
    squad_job.run(squad_options(tmp_path, bucketing=bucketing), tf.distribute.get_strategy())
    ours = json.loads((tmp_path / "predictions.json").read_text())
    original = json.loads(fixture_path("squad", "predictions.json").read_text())
    assert list(ours) == list(original)  # same questions, same order
    assert ours == original
    ours_nbest = json.loads((tmp_path / "nbest_predictions.json").read_text())
    original_nbest = json.loads(fixture_path("squad", "nbest_predictions.json").read_text())
    for qid, entries in original_nbest.items():
        assert [e["text"] for e in ours_nbest[qid]] == [e["text"] for e in entries], qid
        np.testing.assert_allclose([e["probability"] for e in ours_nbest[qid]],
                                   [e["probability"] for e in entries], atol=1e-5, rtol=0)
        np.testing.assert_allclose([e["start_logit"] for e in ours_nbest[qid]],
                                   [e["start_logit"] for e in entries], atol=1e-4, rtol=0)
    metrics = json.loads((tmp_path / "eval_results.json").read_text())
    assert set(metrics) == {"exact_match", "f1"}


def test_the_default_keeps_the_originals_n_best_where_padding_ranks_high(tmp_path):
    """A weakly trained span head (the tiny SQuAD checkpoint's, replaced by random weights):
    padding positions rank among the top n, which the original ranks and then drops.
    run_squad.py's default gives the original's n-best (--bucketing=none's files); the
    opt-in --bucketing=eval keeps candidates the original loses, so its files differ."""
    from bert_tf.training import checkpoint

    reader = tf.train.load_checkpoint(str(fixture_path("squad", "tiny_squad_ckpt") / "model.ckpt"))
    tensors = {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
    random = np.random.default_rng(3)
    tensors["cls/squad/output_weights"] = random.normal(
        size=tensors["cls/squad/output_weights"].shape).astype(np.float32)
    weak = checkpoint.save_tensors(str(tmp_path / "weak" / "model.ckpt"), tensors)
    tiny = fixture_path("tiny_ckpt")
    run_script(["run_squad.py", f"--bert_config_file={tiny / 'bert_config.json'}",
                f"--vocab_file={tiny / 'vocab.txt'}", f"--init_checkpoint={weak}",
                f"--output_dir={tmp_path / 'default'}", "--do_predict", "--max_seq_length=128",
                "--doc_stride=64", f"--predict_file={data_path('squad', 'v1_dev_normans.json')}"])
    nbest = {}
    for bucketing in ("none", "eval"):
        squad_job.run(squad_options(tmp_path / bucketing, bucketing=bucketing,
                                    init_checkpoint=weak), tf.distribute.get_strategy())
        nbest[bucketing] = json.loads((tmp_path / bucketing / "nbest_predictions.json")
                                      .read_text())
    default = json.loads((tmp_path / "default" / "nbest_predictions.json").read_text())
    texts = {name: {qid: [e["text"] for e in entries] for qid, entries in files.items()}
             for name, files in {"default": default, **nbest}.items()}
    assert texts["default"] == texts["none"]
    assert (tmp_path / "default" / "predictions.json").read_text() == (
        tmp_path / "none" / "predictions.json").read_text()
    differing = [qid for qid in texts["none"] if texts["eval"][qid] != texts["none"][qid]]
    assert differing, "padding never ranked: this model does not exercise the case"


def test_v2_prediction_writes_null_odds_and_scores_them(tmp_path):
    data = data_path("squad", "v2_dev_normans.json")
    squad_job.run(squad_options(tmp_path, predict_file=str(data), version_2_with_negative=True,
                                null_score_diff_threshold=3.0), tf.distribute.get_strategy())
    predictions = json.loads((tmp_path / "predictions.json").read_text())
    null_odds = json.loads((tmp_path / "null_odds.json").read_text())
    assert len(predictions) == len(null_odds) == 208
    assert "" in predictions.values() and any(predictions.values())
    ours = json.loads((tmp_path / "eval_results.json").read_text())
    again = squad_eval.evaluate(squad.load_squad_json(str(data)), predictions, null_odds)
    assert ours == json.loads(json.dumps(again))
    assert {"exact", "f1", "HasAns_exact", "NoAns_exact", "best_f1_thresh"} <= set(ours)


def _mean_span_loss(config, checkpoint: str, features) -> float:
    model = heads.BertSpanModel(config)
    bert_tf.checkpoint.load_checkpoint(model, checkpoint)
    total = 0.0
    for start in range(0, len(features), 64):
        chunk = features[start:start + 64]
        batch = {name: np.array([getattr(f, field) for f in chunk]) for name, field in (
            ("input_ids", "input_ids"), ("input_mask", "input_mask"),
            ("segment_ids", "segment_ids"), ("start_positions", "start_position"),
            ("end_positions", "end_position"))}
        normalizers = {"examples": np.float32(len(chunk))}
        loss = objectives.SpanObjective().loss(model(batch), batch, normalizers)
        total += float(loss) * len(chunk)
    return total / len(features)


def test_squad_fine_tuning_reaches_the_original_training_loss(tmp_path):
    """run_squad.py --do_train with the fixture's flags (the ones the original fine-tuned
    tiny_squad_ckpt with): the span loss on the training windows ends where the original's
    checkpoint is (dropout draws differ, so not bit for bit)."""
    tiny = fixture_path("tiny_ckpt")
    train_file = str(data_path("squad", "v1_train_4articles.json"))
    options = squad_options(
        tmp_path, do_train=True, do_predict=False, train_file=train_file,
        init_checkpoint=str(tiny / "bert_model.ckpt"), train_batch_size=16,
        num_train_epochs=2.0, learning_rate=3e-4, iterations_per_loop=19, seed=1,
    )
    squad_job.run(options, tf.distribute.get_strategy())
    reader = tf.train.load_checkpoint(str(tmp_path / "model.ckpt-76"))
    assert reader.get_tensor("global_step") == 76  # int(609 / 16 * 2)
    assert reader.get_variable_to_shape_map()["cls/squad/output_weights"] == [2, 64]
    losses = event_scalars(tmp_path)
    assert len(losses) == 4 and losses[-1] < losses[0], losses

    examples, _ = squad.read_squad_examples(train_file, is_training=True)
    features = list(squad.convert_examples_to_features(examples, tokenizer(), 128, 64, 64, True))
    config = bert_tf.BertConfig.from_json_file(str(tiny / "bert_config.json"))
    untrained = _mean_span_loss(config, str(tiny / "bert_model.ckpt"), features)
    original = _mean_span_loss(
        config, str(fixture_path("squad", "tiny_squad_ckpt") / "model.ckpt"), features)
    ours = _mean_span_loss(config, str(tmp_path / "model.ckpt-76"), features)
    assert untrained - original > 1.5  # 4.94 -> 3.08
    assert abs(ours - original) < 0.15, (ours, original)


def test_bad_squad_input(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": [{"paragraphs": [}]}')
    with pytest.raises(squad.SquadDataError, match=r"bad.json: not valid JSON \(line 1"):
        squad.read_squad_examples(str(bad), False)
    bad.write_text('{"data": [{"paragraphs": [{"context": "x", "qas": [{"id": "1"}]}]}]}')
    with pytest.raises(squad.SquadDataError,
                       match=r"data\[0\].paragraphs\[0\].qas\[0\].question: expected str"):
        squad.read_squad_examples(str(bad), False)
    bad.write_text('{"data": []}')
    with pytest.raises(squad.SquadDataError, match="holds no questions"):
        squad.read_squad_examples(str(bad), False)
    # An answer not in its context is skipped and counted, as the original does.
    bad.write_text(json.dumps({"data": [{"paragraphs": [{"context": "a b c", "qas": [
        {"id": "1", "question": "q", "answers": [{"text": "zzz", "answer_start": 0}]},
        {"id": "2", "question": "q", "answers": [{"text": "b", "answer_start": 2}]},
    ]}]}]}))
    examples, skipped = squad.read_squad_examples(str(bad), True)
    assert skipped == 1 and [e.qas_id for e in examples] == ["2"]
    with pytest.raises(ValueError, match="doc_stride=200 must be between 1 and"):
        squad_job.run(squad_options(tmp_path, doc_stride=200), tf.distribute.get_strategy())
