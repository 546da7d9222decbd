"""SQuAD v1.1 / v2.0 for run_squad.py: reading, doc-stride features and the original's
n-best post-processing (the model is heads.BertSpanModel, its loss
objectives.SpanObjective).

Everything here follows the original `run_squad.py` step for step, because its outputs
depend on every detail: whitespace word splitting with character-to-word offsets, answer
spans moved onto word pieces (`improve_answer_span`), windows of `doc_stride` over long
contexts, a token's "max context" window, n-best search over start/end logits, and
`get_final_text`, which maps a word-piece answer back onto the original text.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import math
import random
from collections.abc import Iterator

from absl import logging

from bert_tf import file_io
from bert_tf.data import records
from bert_tf.data.tokenization import BasicTokenizer, FullTokenizer
from bert_tf.errors import BertTfError, UsageError
from bert_tf.progress import Progress


class SquadDataError(BertTfError, ValueError):
    """A SQuAD file that is missing, not JSON, or not in the SQuAD format."""


@dataclasses.dataclass
class SquadExample:
    """A question over a context split into whitespace words (`doc_tokens`); for training,
    the answer's first and last word (-1 for unanswerable v2.0 questions)."""

    qas_id: str
    question_text: str
    doc_tokens: list[str]
    orig_answer_text: str | None = None
    start_position: int | None = None
    end_position: int | None = None
    is_impossible: bool = False


@dataclasses.dataclass
class SquadFeatures:
    """One window of an example: `[CLS] question [SEP] context window [SEP]`."""

    unique_id: int
    example_index: int
    doc_span_index: int
    tokens: list[str]
    token_to_orig_map: dict[int, int]  # feature position -> index into doc_tokens
    token_is_max_context: dict[int, bool]
    input_ids: list[int]
    input_mask: list[int]
    segment_ids: list[int]
    start_position: int | None = None
    end_position: int | None = None
    is_impossible: bool = False


def _is_whitespace(char: str) -> bool:
    return char in " \t\r\n" or ord(char) == 0x202F


def split_words(text: str) -> tuple[list[str], list[int]]:
    """Whitespace words of `text` and, per character, the index of its word (the original's
    `doc_tokens` and `char_to_word_offset`)."""
    words: list[str] = []
    char_to_word: list[int] = []
    after_space = True
    for char in text:
        if _is_whitespace(char):
            after_space = True
        else:
            if after_space:
                words.append(char)
            else:
                words[-1] += char
            after_space = False
        char_to_word.append(len(words) - 1)
    return words, char_to_word


def load_squad_json(path: str) -> list:
    """The `data` list of a SQuAD file. Raises SquadDataError naming the file and problem."""
    try:
        raw = file_io.read_bytes(path)
    except FileNotFoundError:
        raise SquadDataError(f"{path}: no such file") from None
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise SquadDataError(f"{path}: not valid UTF-8 at byte {error.start}") from None
    except json.JSONDecodeError as error:
        raise SquadDataError(
            f"{path}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise SquadDataError(f"{path}: expected an object with a list under 'data'")
    return document["data"]


def warn_on_version_mismatch(path: str, data: list, version_2_with_negative: bool) -> None:
    """Warns, naming the flag, when SQuAD 2.0 data (unanswerable questions) is read without
    --version_2_with_negative, or 1.1 data with it."""
    questions = [qa for article in data if isinstance(article, dict)
                 for paragraph in article.get("paragraphs") or [] if isinstance(paragraph, dict)
                 for qa in paragraph.get("qas") or [] if isinstance(qa, dict)]
    unanswerable = sum(1 for qa in questions if qa.get("is_impossible"))
    marked = any("is_impossible" in qa for qa in questions)
    if unanswerable and not version_2_with_negative:
        logging.warning(
            "%s: %d questions are unanswerable (SQuAD 2.0) but --version_2_with_negative is "
            "false: they will be treated as answerable; pass --version_2_with_negative=true",
            path, unanswerable)
    elif version_2_with_negative and questions and not marked:
        logging.warning(
            "%s: no question has an is_impossible field (SQuAD 1.1 data) but "
            "--version_2_with_negative is true: the model may predict no answer", path)


def _field(container: dict, key: str, kind: type, where: str):
    value = container.get(key) if isinstance(container, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        found = "missing" if value is None else type(value).__name__
        raise SquadDataError(f"{where}.{key}: expected {kind.__name__}, found {found}")
    return value


def read_squad_examples(
    path: str, is_training: bool, version_2_with_negative: bool = False
) -> tuple[list[SquadExample], int]:
    """Examples of a SQuAD file, as the original reads them. Training answers whose text is
    not found in the context are skipped (with a warning), as the original does. Returns
    (examples, number skipped)."""
    examples = []
    skipped = 0
    data = load_squad_json(path)
    warn_on_version_mismatch(path, data, version_2_with_negative)
    for a, article in enumerate(data):
        for p, paragraph in enumerate(_field(article, "paragraphs", list, f"{path}: data[{a}]")):
            where = f"{path}: data[{a}].paragraphs[{p}]"
            words, char_to_word = split_words(_field(paragraph, "context", str, where))
            for q, qa in enumerate(_field(paragraph, "qas", list, where)):
                at = f"{where}.qas[{q}]"
                example = SquadExample(
                    str(_field(qa, "id", str, at)), _field(qa, "question", str, at), words
                )
                if is_training:
                    if not _add_answer(example, qa, char_to_word, version_2_with_negative, at):
                        skipped += 1
                        continue
                examples.append(example)
    if not examples:
        raise SquadDataError(f"{path}: holds no questions")
    return examples, skipped


def _add_answer(example, qa, char_to_word, version_2, where) -> bool:
    """Sets the training answer of `example`; False when it cannot be found in the text."""
    if version_2:
        example.is_impossible = bool(qa.get("is_impossible", False))
    if example.is_impossible:
        example.start_position = example.end_position = -1
        example.orig_answer_text = ""
        return True
    answers = _field(qa, "answers", list, where)
    if len(answers) != 1:
        raise SquadDataError(
            f"{where}.answers: for training each question needs exactly 1 answer, found "
            f"{len(answers)}"
        )
    text = _field(answers[0], "text", str, f"{where}.answers[0]")
    offset = _field(answers[0], "answer_start", int, f"{where}.answers[0]")
    if not 0 <= offset < len(char_to_word) or offset + len(text) > len(char_to_word):
        logging.warning("%s: answer_start %d is outside the context; skipped", where, offset)
        return False
    start, end = char_to_word[offset], char_to_word[offset + len(text) - 1]
    actual = " ".join(example.doc_tokens[start:end + 1])
    cleaned = " ".join(text.split())
    if actual.find(cleaned) == -1:
        logging.warning("%s: could not find answer %r in %r; skipped", where, cleaned, actual)
        return False
    example.orig_answer_text, example.start_position, example.end_position = text, start, end
    return True


def improve_answer_span(doc_tokens, start, end, tokenizer, answer_text) -> tuple[int, int]:
    """The smallest word-piece span inside [start, end] that spells the tokenized answer."""
    answer = " ".join(tokenizer.tokenize(answer_text))
    for new_start in range(start, end + 1):
        for new_end in range(end, new_start - 1, -1):
            if " ".join(doc_tokens[new_start:new_end + 1]) == answer:
                return new_start, new_end
    return start, end


def is_max_context(spans: list[tuple[int, int]], span_index: int, position: int) -> bool:
    """Is `span_index` the window (start, length) where `position` has the most context?"""
    best_score, best_index = None, None
    for index, (start, length) in enumerate(spans):
        end = start + length - 1
        if position < start or position > end:
            continue
        score = min(position - start, end - position) + 0.01 * length
        if best_score is None or score > best_score:
            best_score, best_index = score, index
    return span_index == best_index


def tokenize_words(words: list[str], tokenizer: FullTokenizer
                   ) -> tuple[list[str], list[int], list[int]]:
    """Whitespace words -> (word pieces, piece -> word index, word -> its first piece)."""
    pieces, piece_to_word, word_to_piece = [], [], []
    for index, word in enumerate(words):
        word_to_piece.append(len(pieces))
        for piece in tokenizer.tokenize(word):
            piece_to_word.append(index)
            pieces.append(piece)
    return pieces, piece_to_word, word_to_piece


def answer_pieces(example: SquadExample, doc: list[str], orig_to_tok: list[int],
                  tokenizer: FullTokenizer) -> tuple[int, int]:
    """The training answer's first and last word piece in `doc` ((-1, -1): no answer)."""
    if example.is_impossible:
        return -1, -1
    tok_start = orig_to_tok[example.start_position]
    if example.end_position < len(example.doc_tokens) - 1:
        tok_end = orig_to_tok[example.end_position + 1] - 1
    else:
        tok_end = len(doc) - 1
    return improve_answer_span(doc, tok_start, tok_end, tokenizer, example.orig_answer_text)


def doc_spans(doc_length: int, max_doc: int, doc_stride: int) -> list[tuple[int, int]]:
    """The (start, length) windows of at most `max_doc` pieces over a context, each
    starting `doc_stride` after the previous one, the last reaching the end."""
    if max_doc < 1 or doc_stride < 1:  # no window could advance: refuse, never loop
        raise UsageError(f"windows of {max_doc} pieces, {doc_stride} apart: both must be at "
                         f"least 1 (max_seq_length too short, or doc_stride 0)")
    spans = []
    offset = 0
    while offset < doc_length:
        length = min(doc_length - offset, max_doc)
        spans.append((offset, length))
        if offset + length == doc_length:
            break
        offset += min(length, doc_stride)
    return spans


def convert_examples_to_features(
    examples: list[SquadExample],
    tokenizer: FullTokenizer,
    max_seq_length: int,
    doc_stride: int,
    max_query_length: int,
    is_training: bool,
) -> Iterator[SquadFeatures]:
    """Yields the doc-stride windows of every example (unique ids from 1000000000)."""
    if max_seq_length - max_query_length - 3 <= 0:
        raise UsageError(
            f"max_seq_length={max_seq_length} leaves no room for the context after "
            f"max_query_length={max_query_length} and 3 special tokens"
        )
    unique_id = 1000000000
    for example_index, example in enumerate(examples):
        query = tokenizer.tokenize(example.question_text)[:max_query_length]
        doc, tok_to_orig, orig_to_tok = tokenize_words(example.doc_tokens, tokenizer)
        tok_start = tok_end = None
        if is_training:
            tok_start, tok_end = answer_pieces(example, doc, orig_to_tok, tokenizer)
        spans = doc_spans(len(doc), max_seq_length - len(query) - 3, doc_stride)
        for span_index, (span_start, span_length) in enumerate(spans):
            tokens = ["[CLS]", *query, "[SEP]"]
            segment_ids = [0] * len(tokens)
            token_to_orig, max_context = {}, {}
            for i in range(span_length):
                position = span_start + i
                token_to_orig[len(tokens)] = tok_to_orig[position]
                max_context[len(tokens)] = is_max_context(spans, span_index, position)
                tokens.append(doc[position])
                segment_ids.append(1)
            tokens.append("[SEP]")
            segment_ids.append(1)
            input_ids = tokenizer.convert_tokens_to_ids(tokens)
            padding = [0] * (max_seq_length - len(input_ids))
            start_position = end_position = None
            if is_training:
                start_position = end_position = 0
                span_end = span_start + span_length - 1
                inside = tok_start >= span_start and tok_end <= span_end
                if not example.is_impossible and inside:
                    start_position = tok_start - span_start + len(query) + 2
                    end_position = tok_end - span_start + len(query) + 2
            yield SquadFeatures(
                unique_id, example_index, span_index, tokens, token_to_orig, max_context,
                input_ids + padding, [1] * len(input_ids) + padding, segment_ids + padding,
                start_position, end_position, example.is_impossible,
            )
            unique_id += 1


def shuffle_for_training(examples: list[SquadExample]) -> list[SquadExample]:
    """The original shuffles the training examples with `random.Random(12345)`."""
    examples = list(examples)
    random.Random(12345).shuffle(examples)
    return examples


@functools.cache
def squad_layout(max_seq_length: int, is_training: bool) -> records.RecordLayout:
    """run_squad.py's records: a window's unique id and pieces; training records also hold
    the answer (start and end piece, is_impossible)."""
    lengths = {"unique_ids": 0, "input_ids": max_seq_length, "input_mask": max_seq_length,
               "segment_ids": max_seq_length}
    if is_training:
        lengths.update(start_positions=0, end_positions=0, is_impossible=0)
    return records.RecordLayout(lengths)


def record_bytes(unique_id: int, input_ids: list[int], input_mask: list[int],
                 segment_ids: list[int], answer: tuple[int, int, bool] | None = None) -> bytes:
    """One record of a SQuAD window (see `squad_layout`); `answer` (start, end,
    is_impossible) for training."""
    values = {"unique_ids": [unique_id], "input_ids": input_ids, "input_mask": input_mask,
              "segment_ids": segment_ids}
    if answer is not None:
        start, end, is_impossible = answer
        values.update(start_positions=[start], end_positions=[end],
                      is_impossible=[int(is_impossible)])
    return squad_layout(len(input_ids), answer is not None).serialize(values)


def write_features(
    features: Iterator[SquadFeatures], path: str, is_training: bool, pad_to_multiple: int = 1
) -> list[SquadFeatures]:
    """Writes the features' records at `path` (atomically), padded with `unique_ids=0`
    records to a multiple of `pad_to_multiple`. Returns the features (kept for
    post-processing at prediction; training keeps none)."""
    kept = []
    progress = Progress("features", None, "windows")

    def windows():
        count = 0
        for feature in progress.counting(features):
            answer = None
            if is_training:
                answer = (feature.start_position, feature.end_position, feature.is_impossible)
            else:
                kept.append(feature)
            yield record_bytes(feature.unique_id, feature.input_ids, feature.input_mask,
                               feature.segment_ids, answer)
            count += 1
            length = len(feature.input_ids)
        while count % pad_to_multiple:
            zeros = [0] * length
            yield record_bytes(0, zeros, zeros, zeros)
            count += 1

    records.write_tfrecords(path, windows())
    progress.finish()
    return kept


@dataclasses.dataclass
class RawResult:
    unique_id: int
    start_logits: list[float]
    end_logits: list[float]


def best_indexes(logits: list[float], n_best_size: int) -> list[int]:
    """Indices of the `n_best_size` largest logits (ties: lower index first)."""
    return [i for i, _ in sorted(enumerate(logits), key=lambda x: x[1], reverse=True)][
        :n_best_size
    ]


def softmax(scores: list[float]) -> list[float]:
    if not scores:
        return []
    top = max(scores)
    exps = [math.exp(score - top) for score in scores]
    total = sum(exps)
    return [e / total for e in exps]


def _strip_spaces(text: str) -> tuple[str, dict[int, int]]:
    kept, positions = [], {}
    for index, char in enumerate(text):
        if char != " ":
            positions[len(kept)] = index
            kept.append(char)
    return "".join(kept), positions


def get_final_text(pred_text: str, orig_text: str, do_lower_case: bool) -> str:
    """Projects a (normalized, word-piece) answer back onto the original words' text; on any
    doubt returns the original text of the words, as the original does."""
    tok_text = " ".join(BasicTokenizer(do_lower_case=do_lower_case).tokenize(orig_text))
    start = tok_text.find(pred_text)
    if start == -1:
        return orig_text
    end = start + len(pred_text) - 1
    orig_ns, orig_ns_to_s = _strip_spaces(orig_text)
    tok_ns, tok_ns_to_s = _strip_spaces(tok_text)
    if len(orig_ns) != len(tok_ns):
        return orig_text
    tok_s_to_ns = {s: ns for ns, s in tok_ns_to_s.items()}
    orig_start = orig_ns_to_s.get(tok_s_to_ns[start]) if start in tok_s_to_ns else None
    if orig_start is None:
        return orig_text
    orig_end = orig_ns_to_s.get(tok_s_to_ns[end]) if end in tok_s_to_ns else None
    if orig_end is None:
        return orig_text
    return orig_text[orig_start:orig_end + 1]


_Prelim = collections.namedtuple("_Prelim", "feature_index start end start_logit end_logit")
_Nbest = collections.namedtuple("_Nbest", "text start_logit end_logit")


def _prelim_predictions(features, results, n_best_size, max_answer_length, version_2):
    """Candidate spans of one example over its windows, and its best null (v2.0) entry."""
    prelim = []
    null = _Prelim(0, 0, 0, 0.0, 0.0)
    null_score = 1000000.0
    for feature_index, feature in enumerate(features):
        result = results[feature.unique_id]
        if version_2:
            score = result.start_logits[0] + result.end_logits[0]
            if score < null_score:
                null_score = score
                null = _Prelim(feature_index, 0, 0, result.start_logits[0], result.end_logits[0])
        for start in best_indexes(result.start_logits, n_best_size):
            for end in best_indexes(result.end_logits, n_best_size):
                if (start >= len(feature.tokens) or end >= len(feature.tokens)
                        or start not in feature.token_to_orig_map
                        or end not in feature.token_to_orig_map
                        or not feature.token_is_max_context.get(start, False)
                        or end < start or end - start + 1 > max_answer_length):
                    continue
                prelim.append(_Prelim(feature_index, start, end, result.start_logits[start],
                                      result.end_logits[end]))
    if version_2:
        prelim.append(null)
    prelim.sort(key=lambda p: p.start_logit + p.end_logit, reverse=True)
    return prelim, null, null_score


def _span_text(example, feature, prelim, do_lower_case) -> str:
    pieces = " ".join(feature.tokens[prelim.start:prelim.end + 1])
    pieces = pieces.replace(" ##", "").replace("##", "")
    pieces = " ".join(pieces.strip().split())
    first = feature.token_to_orig_map[prelim.start]
    last = feature.token_to_orig_map[prelim.end]
    return get_final_text(pieces, " ".join(example.doc_tokens[first:last + 1]), do_lower_case)


def postprocess(
    examples: list[SquadExample],
    features: list[SquadFeatures],
    results: dict[int, RawResult],
    n_best_size: int,
    max_answer_length: int,
    *,
    do_lower_case: bool,
    version_2_with_negative: bool = False,
    null_score_diff_threshold: float = 0.0,
) -> tuple[dict, dict, dict]:
    """The original `write_predictions` without the writing: (predictions, nbest, null
    odds), each an ordered dict keyed by question id."""
    by_example = collections.defaultdict(list)
    for feature in features:
        by_example[feature.example_index].append(feature)
    predictions, all_nbest, null_odds = {}, {}, {}
    for example_index, example in enumerate(examples):
        example_features = by_example[example_index]
        prelim, null, null_score = _prelim_predictions(
            example_features, results, n_best_size, max_answer_length, version_2_with_negative
        )
        seen, nbest = set(), []
        for candidate in prelim:
            if len(nbest) >= n_best_size:
                break
            if candidate.start > 0:
                feature = example_features[candidate.feature_index]
                text = _span_text(example, feature, candidate, do_lower_case)
                if text in seen:
                    continue
            else:
                text = ""
            seen.add(text)
            nbest.append(_Nbest(text, candidate.start_logit, candidate.end_logit))
        if version_2_with_negative and "" not in seen:
            nbest.append(_Nbest("", null.start_logit, null.end_logit))
        if not nbest:
            nbest.append(_Nbest("empty", 0.0, 0.0))
        probabilities = softmax([n.start_logit + n.end_logit for n in nbest])
        all_nbest[example.qas_id] = [
            {"text": n.text, "probability": p, "start_logit": n.start_logit,
             "end_logit": n.end_logit}
            for n, p in zip(nbest, probabilities, strict=True)
        ]
        best_non_null = next((n for n in nbest if n.text), None)
        if not version_2_with_negative:
            predictions[example.qas_id] = nbest[0].text
            continue
        if best_non_null is None:  # only the null answer survived
            null_odds[example.qas_id] = null_score
            predictions[example.qas_id] = ""
            continue
        score_diff = null_score - best_non_null.start_logit - best_non_null.end_logit
        null_odds[example.qas_id] = score_diff
        predictions[example.qas_id] = "" if score_diff > null_score_diff_threshold else (
            best_non_null.text
        )
    return predictions, all_nbest, null_odds


def collect_results(batches: Iterator[dict]) -> dict[int, RawResult]:
    """unique id -> RawResult from predicted batches, dropping padding (unique id 0)."""
    results = {}
    for batch in batches:
        for unique_id, start, end in zip(batch["unique_ids"], batch["start_logits"],
                                         batch["end_logits"], strict=True):
            if unique_id:
                results[int(unique_id)] = RawResult(
                    int(unique_id), [float(x) for x in start], [float(x) for x in end]
                )
    return results

