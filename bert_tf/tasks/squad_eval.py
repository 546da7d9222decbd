"""The official SQuAD metrics, in process: v1.1 (exact_match, f1) and v2.0 (exact, f1,
HasAns_/NoAns_ splits and, given null odds, the best-threshold search).

    python -m bert_tf.tasks.squad_eval DATA.json PREDICTIONS.json [--null_odds NULL_ODDS.json]

Answers are compared after the official normalization: lower case, punctuation removed,
articles (a, an, the) removed, whitespace collapsed. Scores are percentages.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import string
import sys

from bert_tf.errors import run_script
from bert_tf.tasks.squad import SquadDataError, load_squad_json

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    text = "".join(char for char in text.lower() if char not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_score(gold: str, prediction: str) -> int:
    return int(normalize_answer(gold) == normalize_answer(prediction))


def f1_score(gold: str, prediction: str, empty_matches_empty: bool) -> float:
    """Token F1. v2.0 scores an empty answer against an empty gold as 1 (and against a
    non-empty one as 0); v1.1 has no empty golds and scores no overlap as 0."""
    gold_tokens = normalize_answer(gold).split()
    predicted = normalize_answer(prediction).split()
    if empty_matches_empty and (not gold_tokens or not predicted):
        return float(gold_tokens == predicted)
    same = sum((collections.Counter(gold_tokens) & collections.Counter(predicted)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _questions(data: list):
    for article in data:
        for paragraph in article["paragraphs"]:
            yield from paragraph["qas"]


def evaluate_v1(data: list, predictions: dict) -> dict:
    """The official v1.1 script: questions without a prediction score 0."""
    exact = f1 = total = 0.0
    for qa in _questions(data):
        total += 1
        if qa["id"] not in predictions:
            continue
        golds = [answer["text"] for answer in qa["answers"]]
        prediction = predictions[qa["id"]]
        exact += max(exact_score(g, prediction) for g in golds)
        f1 += max(f1_score(g, prediction, empty_matches_empty=False) for g in golds)
    return {"exact_match": 100.0 * exact / total, "f1": 100.0 * f1 / total}


def evaluate_v2(data: list, predictions: dict, null_odds: dict | None = None,
                null_threshold: float = 1.0) -> dict:
    """The official v2.0 script (questions without a prediction are left out)."""
    has_answer = {qa["id"]: bool(qa["answers"]) for qa in _questions(data)}
    exact_raw, f1_raw = {}, {}
    for qa in _questions(data):
        if qa["id"] not in predictions:
            continue
        golds = [a["text"] for a in qa["answers"] if normalize_answer(a["text"])] or [""]
        prediction = predictions[qa["id"]]
        exact_raw[qa["id"]] = max(exact_score(g, prediction) for g in golds)
        f1_raw[qa["id"]] = max(f1_score(g, prediction, empty_matches_empty=True) for g in golds)
    odds = null_odds if null_odds is not None else {qid: 0.0 for qid in predictions}

    def thresholded(scores):
        return {qid: float(not has_answer[qid]) if odds[qid] > null_threshold else score
                for qid, score in scores.items()}

    def summary(exact, f1, qids=None):
        qids = list(exact) if qids is None else qids
        return {"exact": 100.0 * sum(exact[q] for q in qids) / len(qids),
                "f1": 100.0 * sum(f1[q] for q in qids) / len(qids), "total": len(qids)}

    exact, f1 = thresholded(exact_raw), thresholded(f1_raw)
    result = summary(exact, f1)
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [qid for qid, has in has_answer.items() if has == wanted]
        if qids:
            for key, value in summary(exact, f1, qids).items():
                result[f"{prefix}_{key}"] = value
    if null_odds is not None:
        for name, scores in (("exact", exact_raw), ("f1", f1_raw)):
            best, threshold = _best_threshold(predictions, scores, null_odds, has_answer)
            result[f"best_{name}"] = best
            result[f"best_{name}_thresh"] = threshold
    return result


def _best_threshold(predictions, scores, null_odds, has_answer) -> tuple[float, float]:
    score = best = sum(1 for has in has_answer.values() if not has)
    threshold = 0.0
    for qid in sorted(null_odds, key=lambda k: null_odds[k]):
        if qid not in scores:
            continue
        if has_answer[qid]:
            score += scores[qid]
        elif predictions[qid]:
            score -= 1
        if score > best:
            best, threshold = score, null_odds[qid]
    return 100.0 * best / len(scores), threshold


def evaluate(data: list, predictions: dict, null_odds: dict | None = None) -> dict:
    """v2.0 metrics when the data has unanswerable questions (or null odds are given),
    else v1.1."""
    has_unanswerable = any(qa.get("is_impossible") or not qa["answers"] for qa in _questions(data))
    if has_unanswerable or null_odds is not None:
        return evaluate_v2(data, predictions, null_odds)
    return evaluate_v1(data, predictions)


def read_json(path: str, what: str):
    """A JSON file's value, or a SquadDataError naming the file."""
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read().decode("utf-8"))
    except OSError as error:
        raise SquadDataError(f"{what}: cannot read {path}: {error.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SquadDataError(f"{what}: {path} is not a UTF-8 JSON file ({error})") from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_file")
    parser.add_argument("prediction_file")
    parser.add_argument("--null_odds", help="null_odds.json of a v2.0 run")
    args = parser.parse_args(argv)

    def score():
        data = load_squad_json(args.data_file)
        predictions = read_json(args.prediction_file, "prediction_file")
        if not isinstance(predictions, dict):
            raise SquadDataError(f"prediction_file: {args.prediction_file}: expected an object "
                                 f"of question id -> answer text")
        try:
            ids = {qa["id"] for qa in _questions(data)}
        except (KeyError, TypeError) as error:
            raise SquadDataError(f"data_file: {args.data_file} is not SQuAD data (no field "
                                 f"{error} where a question was expected)") from None
        if predictions and not ids & set(predictions):
            raise SquadDataError(
                f"prediction_file: none of the {len(predictions)} ids in "
                f"{args.prediction_file} is a question of {args.data_file}; wrong data file?"
            )
        null_odds = read_json(args.null_odds, "null_odds") if args.null_odds else None
        json.dump(evaluate(data, predictions, null_odds), sys.stdout, indent=2)
        print()

    run_script("squad_eval", score)


if __name__ == "__main__":
    main()
