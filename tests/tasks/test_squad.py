"""SQuAD reading, windows and post-processing against the original; metrics against the
official scripts; extract_features.py."""


import numpy as np
import pytest
from conftest import data_path, fixture_path

from bert_tf.data.tokenization import FullTokenizer
from bert_tf.tasks import squad


def tokenizer():
    return FullTokenizer(str(fixture_path("tiny_ckpt", "vocab.txt")), True)




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
