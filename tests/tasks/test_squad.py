"""SQuAD reading, windows and post-processing against the original; metrics against the
official scripts; extract_features.py."""

import json

import numpy as np
import pytest
import tensorflow as tf
from conftest import data_path, event_scalars, fixture_path, run_script

import bert_tf
from bert_tf.data.tokenization import FullTokenizer
from bert_tf.jobs import extract_features
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


def test_split_words_and_answer_spans():
    words, char_to_word = squad.split_words(" The  Normans\u202f(Norman:x)\n")
    assert words == ["The", "Normans", "(Norman:x)"]
    assert char_to_word[:6] == [-1, 0, 0, 0, 0, 0] and char_to_word[-1] == 2
    pieces = tokenizer().tokenize("(Norman:x)")
    start, end = squad.improve_answer_span(pieces, 0, len(pieces) - 1, tokenizer(), "Norman")
    assert pieces[start:end + 1] == ["norman"]
    spans = [(0, 10), (5, 10), (10, 10)]
    assert squad.is_max_context(spans, 1, 9)  # centred in the second window
    assert not squad.is_max_context(spans, 0, 9)


def test_get_final_text_maps_back_to_the_original_characters():
    assert squad.get_final_text("steve smith", "Steve Smith's", True) == "Steve Smith"
    assert squad.get_final_text("1853", "(1853–1854)", True) == "1853"
    assert squad.get_final_text("nothing here", "Steve Smith's", True) == "Steve Smith's"


def test_windows_follow_doc_stride_and_keep_the_answer():
    examples, skipped = squad.read_squad_examples(
        str(data_path("squad", "v1_train_4articles.json")), is_training=True
    )
    assert skipped == 0 and len(examples) == 609
    long = max(examples[:50], key=lambda e: len(e.doc_tokens))
    features = list(squad.convert_examples_to_features([long], tokenizer(), 128, 64, 64, True))
    assert len(features) > 1
    query = tokenizer().tokenize(long.question_text)[:64]
    for feature in features:
        assert feature.tokens[: len(query) + 2] == ["[CLS]", *query, "[SEP]"]
        assert len(feature.input_ids) == 128 and feature.tokens[-1] == "[SEP]"
        if feature.start_position:
            answer = " ".join(feature.tokens[feature.start_position:feature.end_position + 1])
            assert answer.replace(" ##", "") == " ".join(
                tokenizer().tokenize(long.orig_answer_text)).replace(" ##", "")
    # Every context token is the max-context token of exactly one window.
    owners = {}
    for feature in features:
        for position, is_max in feature.token_is_max_context.items():
            if is_max:
                owner = (feature.token_to_orig_map[position], feature.tokens[position])
                owners[owner] = owners.get(owner, 0) + 1
    assert max(owners.values()) >= 1


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


def _official_numbers(name: str) -> dict:
    """What the official evaluate script printed on a fixture's predictions."""
    return json.loads(fixture_path("metrics", name).read_text())


def test_v1_metrics_equal_the_official_scripts_numbers():
    data = squad.load_squad_json(str(data_path("squad", "v1_dev_normans.json")))
    predictions = json.loads(
        fixture_path("metrics", "squad_v1_normans.predictions.json").read_text())
    ours = squad_eval.evaluate(data, predictions)
    official = _official_numbers("squad_v1_normans.official.json")
    assert set(official) == {"exact_match", "f1"}
    for key, value in official.items():
        assert round(ours[key], 6) == round(value, 6), key


def test_v2_metrics_equal_the_official_scripts_numbers_with_best_thresholds():
    data = squad.load_squad_json(str(data_path("squad", "squad2_dev_5articles.json")))
    predictions = json.loads(
        fixture_path("metrics", "squad_v2_5articles.predictions.json").read_text())
    null_odds = json.loads(
        fixture_path("metrics", "squad_v2_5articles.null_odds.json").read_text())
    ours = squad_eval.evaluate(data, predictions, null_odds)
    official = _official_numbers("squad_v2_5articles.official.json")
    assert {"best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh"} <= set(official)
    for key, value in official.items():
        assert round(ours[key], 6) == round(value, 6), key


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


def test_extract_features_writes_the_original_structure(tmp_path):
    minilm = fixture_path("minilm_ckpt")
    source = tmp_path / "input.txt"
    source.write_text("Who was Jim Henson ? ||| Jim Henson was a puppeteer\nHello world.\n")
    options = extract_features.ExtractOptions(
        input_file=str(source), output_file=str(tmp_path / "out.jsonl"),
        bert_config_file=str(minilm / "bert_config.json"),
        init_checkpoint=str(minilm / "bert_model.ckpt"), vocab_file=str(minilm / "vocab.txt"),
        layers="-1,0", batch_size=4,
    )
    assert extract_features.run(options, tf.distribute.get_strategy()) == 2
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [line["linex_index"] for line in lines] == [0, 1]
    assert [f["token"] for f in lines[1]["features"]] == ["[CLS]", "hello", "world", ".", "[SEP]"]
    first = lines[0]["features"][0]
    assert list(first) == ["token", "layers"] and [x["index"] for x in first["layers"]] == [-1, 0]
    # The values are the model's, rounded to 6 decimals.
    config = bert_tf.BertConfig.from_json_file(str(minilm / "bert_config.json"))
    model = bert_tf.BertModel(config)
    bert_tf.checkpoint.load_checkpoint(model, str(minilm / "bert_model.ckpt"))
    ids = FullTokenizer(str(minilm / "vocab.txt"), True).convert_tokens_to_ids(
        [f["token"] for f in lines[1]["features"]])
    outputs = model({"input_ids": np.array([ids + [0] * 123]),
                     "input_mask": np.array([[1] * 5 + [0] * 123])})
    np.testing.assert_allclose(
        [f["layers"][0]["values"] for f in lines[1]["features"]],
        np.asarray(outputs["sequence_output"])[0, :5], atol=2e-5,
    )
    with pytest.raises(ValueError, match="layers: 6 is out of range for a model with 6 layers"):
        extract_features.parse_layers("6", 6)


def test_extract_features_values_equal_the_original_layers():
    """The fixture's 8 inputs (masks applied) through extract's JSON path: every printed
    value equals the original's all_encoder_layers to the hidden-state tolerance."""
    from bert_tf.data.features import EncodedInput

    minilm = fixture_path("minilm_ckpt")
    reference = np.load(fixture_path("reference_public.npz"))
    config = bert_tf.BertConfig.from_json_file(str(minilm / "bert_config.json"))
    model = bert_tf.BertModel(config)
    bert_tf.checkpoint.load_checkpoint(model, str(minilm / "bert_model.ckpt"))
    inverse = {i: t for t, i in FullTokenizer(str(minilm / "vocab.txt"), True).vocab.items()}
    encoded = []
    for ids, mask, segments in zip(reference["input_ids"], reference["input_mask"],
                                   reference["segment_ids"], strict=True):
        tokens = [inverse[int(i)] for i, m in zip(ids, mask, strict=True) if m]
        encoded.append(EncodedInput(tokens, list(ids), list(mask), list(segments)))
    layers = [-1, -2, 0]
    lines = [json.loads(line) for line in extract_features.json_lines(
        tf.distribute.get_strategy(), model, encoded, layers, batch_size=4)]
    assert [line["linex_index"] for line in lines] == list(range(8))
    worst = 0.0
    for example, line in enumerate(lines):
        for position, feature in enumerate(line["features"]):
            for entry in feature["layers"]:
                expected = reference["all_encoder_layers"][entry["index"], example, position]
                worst = max(worst, float(np.abs(np.array(entry["values"]) - expected).max()))
    assert worst < 1e-4, worst


def _hand_built(starts: dict[int, float], ends: dict[int, float], null: float = -5.0):
    """One example, one window, logits set by hand ({token index: logit})."""
    example = squad.SquadExample("q1", "who?", ["The", "Normans", "came", "in", "911."])
    [feature] = squad.convert_examples_to_features([example], tokenizer(), 16, 8, 4, False)
    start, end = [-10.0] * 16, [-10.0] * 16
    start[0] = end[0] = null
    for index, logit in starts.items():
        start[index] = logit
    for index, logit in ends.items():
        end[index] = logit
    return example, feature, {feature.unique_id: squad.RawResult(feature.unique_id, start, end)}


def test_postprocessing_on_hand_built_logits():
    example, feature, results = _hand_built({5: 3.0, 8: 1.0}, {6: 3.0, 8: 1.0})
    assert feature.tokens[4:11] == ["the", "norman", "##s", "came", "in", "911", "."]
    predictions, nbest, null_odds = squad.postprocess(
        [example], [feature], results, n_best_size=3, max_answer_length=4, do_lower_case=True
    )
    # Best span "norman ##s" (3 + 3) -> the context's own casing; an end before its start
    # ((8, 6)) is never a candidate.
    assert predictions == {"q1": "Normans"} and null_odds == {}
    assert [e["text"] for e in nbest["q1"]] == ["Normans", "Normans came in", "in"]
    assert [e["probability"] for e in nbest["q1"]] == pytest.approx(
        list(np.exp([6.0, 4.0, 2.0]) / np.exp([6.0, 4.0, 2.0]).sum()))
    # "911 ." is mapped back onto "911." without its period, as get_final_text does.
    example, feature, results = _hand_built({9: 4.0}, {9: 4.0})
    predictions, _, _ = squad.postprocess([example], [feature], results, 3, 4, do_lower_case=True)
    assert predictions["q1"] == "911"
    # v2.0: the null score (6) beats the best span (2) by more than the threshold -> "".
    example, feature, results = _hand_built({5: 1.0}, {6: 1.0}, null=3.0)
    predictions, nbest, null_odds = squad.postprocess(
        [example], [feature], results, 3, 4, do_lower_case=True, version_2_with_negative=True,
        null_score_diff_threshold=0.0)
    assert predictions["q1"] == "" and null_odds["q1"] == pytest.approx(4.0)
    assert nbest["q1"][0]["text"] == ""
    predictions, _, _ = squad.postprocess(
        [example], [feature], results, 3, 4, do_lower_case=True, version_2_with_negative=True,
        null_score_diff_threshold=5.0)
    assert predictions["q1"] == "Normans"
    assert squad.best_indexes([1.0, 3.0, 3.0, 2.0], 3) == [1, 2, 3]  # ties: lower index first
