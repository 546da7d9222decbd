"""The SQuAD metrics (tasks/squad_eval.py) equal the official scripts' numbers."""

import json

import pytest
from conftest import data_path, fixture_path

from bert_tf.tasks import squad, squad_eval


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


def test_squad_eval_command_reports_bad_files_on_one_line(tmp_path):
    from bert_tf.tasks import squad_eval

    data = data_path("squad", "v1_dev_normans.json")
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "other.json").write_text(json.dumps({"no-such-id": "x"}))
    for predictions, message in [(tmp_path / "missing.json", "cannot read"),
                                 (tmp_path / "bad.json", "is not a UTF-8 JSON file"),
                                 (tmp_path / "other.json", "none of the 1 ids")]:
        with pytest.raises(SystemExit) as exit_:
            squad_eval.main([str(data), str(predictions)])
        assert str(exit_.value.code).startswith("squad_eval: prediction_file:")
        assert message in str(exit_.value.code) and "\n" not in str(exit_.value.code)


def test_squad_version_mismatch_warns_and_an_empty_context_is_scored(tmp_path, caplog):
    from bert_tf.tasks import squad, squad_eval

    v2 = str(data_path("squad", "v2_dev_normans.json"))
    squad.read_squad_examples(v2, False, version_2_with_negative=False)
    assert "pass --version_2_with_negative=true" in caplog.text
    caplog.clear()
    squad.read_squad_examples(str(data_path("squad", "v1_dev_normans.json")), False, True)
    assert "--version_2_with_negative is true" in caplog.text
    # A question with an empty context has no window: the original's "empty" prediction,
    # and it counts in the total (scored 0).
    data = {"data": [{"title": "t", "paragraphs": [
        {"context": "", "qas": [{"id": "q1", "question": "who?",
                                 "answers": [{"text": "x", "answer_start": 0}]}]}]}]}
    (tmp_path / "d.json").write_text(json.dumps(data))
    examples, _ = squad.read_squad_examples(str(tmp_path / "d.json"), False)
    predictions, _, _ = squad.postprocess(examples, [], {}, 20, 30, do_lower_case=True)
    assert predictions == {"q1": "empty"}
    assert squad_eval.evaluate(data["data"], predictions) == {"exact_match": 0.0, "f1": 0.0}
