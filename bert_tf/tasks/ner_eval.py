"""conlleval, the CoNLL shared tasks' NER scorer, in Python: the same counts, the same report.

    python -m bert_tf.tasks.ner_eval dev_predictions.txt

Input as conlleval reads it: one token per line, fields separated by single spaces, the
gold tag second to last and the predicted tag last; a blank line (or a first field `-X-`)
is a boundary, out of any chunk. Every other line is a token, `-DOCSTART-` lines included,
as conlleval counts them. Tags are `B-TYPE`, `I-TYPE`, `E-TYPE` or `O`, and chunks start and
end by conlleval's rules (`start_of_chunk`, `end_of_chunk`), so IOB1, IOB2 and mixes of
them score exactly as the Perl script scores them. conlleval has no rule for `S-` (a
one-token entity) or `M-`: IOBES and BMES tags are converted to IOB2 first (`to_iob2`:
S- -> B-, E- and M- -> I-), which marks the same entities.

A chunk is correct when its start and end and type agree in gold and prediction.
Precision = correct / found, recall = correct / gold, FB1 = 2PR / (P + R), in percent.
"""

from __future__ import annotations

import dataclasses
import sys
from collections import Counter
from collections.abc import Iterable

from bert_tf import file_io
from bert_tf.errors import BertTfError, run_script

BOUNDARY = "-X-"


class ConllFormatError(BertTfError, ValueError):
    """A prediction file conlleval could not read."""


def split_tag(tag: str) -> tuple[str, str]:
    """`B-PER` -> ("B", "PER"); `O` -> ("O", ""), as conlleval's split(/-/, tag)."""
    parts = tag.split("-")
    return parts[0], parts[1] if len(parts) > 1 else ""


def to_iob2(tag: str) -> str:
    """An IOBES / BMES tag as the IOB2 tag of the same entity (S-X -> B-X; E-X, M-X -> I-X);
    other tags unchanged."""
    prefix, kind = split_tag(tag)
    if prefix == "S":
        return f"B-{kind}"
    if prefix in ("E", "M"):
        return f"I-{kind}"
    return tag


def end_of_chunk(previous: str, tag: str, previous_type: str, kind: str) -> bool:
    """conlleval's endOfChunk: does a chunk end between the previous token and this one?"""
    ends = (previous, tag) in {("B", "B"), ("B", "O"), ("I", "B"), ("I", "O"), ("E", "E"),
                               ("E", "I"), ("E", "O")}
    if previous not in ("O", ".") and previous_type != kind:
        ends = True
    return ends or previous in ("]", "[")


def start_of_chunk(previous: str, tag: str, previous_type: str, kind: str) -> bool:
    """conlleval's startOfChunk: does a chunk start at this token?"""
    starts = (previous, tag) in {("B", "B"), ("I", "B"), ("O", "B"), ("O", "I"), ("E", "E"),
                                 ("E", "I"), ("O", "E")}
    if tag not in ("O", ".") and previous_type != kind:
        starts = True
    return starts or tag in ("[", "]")


@dataclasses.dataclass
class Counts:
    """conlleval's tallies: tokens, correctly tagged tokens, and chunks (in gold, found in
    the prediction, correct), overall and per type."""

    tokens: int = 0
    correct_tags: int = 0
    gold: Counter = dataclasses.field(default_factory=Counter)
    found: Counter = dataclasses.field(default_factory=Counter)
    correct: Counter = dataclasses.field(default_factory=Counter)

    @property
    def types(self) -> list[str]:
        return sorted(set(self.gold) | set(self.found))

    def scores(self, kind: str | None = None) -> tuple[float, float, float]:
        """(precision, recall, FB1) in percent, overall (None) or of one type."""
        correct = self.correct.total() if kind is None else self.correct[kind]
        found = self.found.total() if kind is None else self.found[kind]
        gold = self.gold.total() if kind is None else self.gold[kind]
        precision = 100 * correct / found if found else 0.0
        recall = 100 * correct / gold if gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return precision, recall, f1


def count(rows: Iterable[tuple[str, str, str]]) -> Counts:
    """conlleval's counting over (first field, gold tag, predicted tag) rows in file order;
    a boundary is ("-X-", "O", "O")."""
    counts = Counts()
    in_correct = False
    last_gold, last_guess, last_gold_type, last_guess_type = "O", "O", "", ""
    for first, gold_tag, guess_tag in rows:
        gold, gold_type = split_tag(gold_tag)
        guess, guess_type = split_tag(guess_tag)
        if first == BOUNDARY:
            guess = "O"
        gold_ends = end_of_chunk(last_gold, gold, last_gold_type, gold_type)
        guess_ends = end_of_chunk(last_guess, guess, last_guess_type, guess_type)
        if in_correct:
            if gold_ends and guess_ends and last_guess_type == last_gold_type:
                in_correct = False
                counts.correct[last_gold_type] += 1
            elif gold_ends != guess_ends or guess_type != gold_type:
                in_correct = False
        gold_starts = start_of_chunk(last_gold, gold, last_gold_type, gold_type)
        guess_starts = start_of_chunk(last_guess, guess, last_guess_type, guess_type)
        if gold_starts and guess_starts and guess_type == gold_type:
            in_correct = True
        if gold_starts:
            counts.gold[gold_type] += 1
        if guess_starts:
            counts.found[guess_type] += 1
        if first != BOUNDARY:
            counts.correct_tags += gold == guess and guess_type == gold_type
            counts.tokens += 1
        last_gold, last_guess, last_gold_type, last_guess_type = (
            gold, guess, gold_type, guess_type)
    if in_correct:
        counts.correct[last_gold_type] += 1
    return counts


def read_rows(lines: Iterable[str], where: str = "input") -> list[tuple[str, str, str]]:
    """conlleval's reading: fields split on single spaces, every line with as many fields
    as the first; blank lines are boundaries. Tags converted with `to_iob2`."""
    rows, width = [], None
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\n")
        if not line:
            rows.append((BOUNDARY, "O", "O"))
            continue
        fields = line.split(" ")
        if width is None:
            width = len(fields)
        if len(fields) != width or len(fields) < 3:
            raise ConllFormatError(
                f"{where}:{number}: expected {max(width, 3)} space-separated fields (word ... "
                f"gold predicted), found {len(fields)}: {line!r}")
        rows.append((fields[0], to_iob2(fields[-2]), to_iob2(fields[-1])))
    return rows


def report(counts: Counts) -> str:
    """conlleval's report, line for line."""
    precision, recall, f1 = counts.scores()
    lines = [f"processed {counts.tokens} tokens with {counts.gold.total()} phrases; found: "
             f"{counts.found.total()} phrases; correct: {counts.correct.total()}."]
    if counts.tokens:
        accuracy = 100 * counts.correct_tags / counts.tokens
        lines.append(f"accuracy: {accuracy:6.2f}%; precision: {precision:6.2f}%; "
                     f"recall: {recall:6.2f}%; FB1: {f1:6.2f}")
    for kind in counts.types:
        precision, recall, f1 = counts.scores(kind)
        lines.append(f"{kind:>17}: precision: {precision:6.2f}%; recall: {recall:6.2f}%; "
                     f"FB1: {f1:6.2f}  {counts.found[kind]}")
    return "\n".join(lines) + "\n"


def evaluate_file(path: str) -> Counts:
    """The counts of a `word ... gold predicted` file."""
    try:
        text = file_io.read_bytes(path).decode("utf-8")
    except FileNotFoundError:
        raise ConllFormatError(f"{path}: no such file") from None
    except UnicodeDecodeError as error:
        raise ConllFormatError(f"{path}: not valid UTF-8 ({error.reason})") from None
    lines = text.split("\n")  # lines end at \n only, as Perl reads them
    if lines[-1] == "":
        lines.pop()
    return count(read_rows(lines, path))


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise ConllFormatError("usage: python -m bert_tf.tasks.ner_eval PREDICTIONS_FILE "
                               "(lines: word ... gold predicted)")
    sys.stdout.write(report(evaluate_file(argv[1])))


if __name__ == "__main__":
    run_script("ner_eval", lambda: main(sys.argv))
