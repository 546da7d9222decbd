"""Named-entity recognition (CoNLL-2003, Chinese Resume NER) for run_ner.py: reading the
files, word-piece features with the label on each word's first piece, windows over long
sentences, and the prediction files conlleval reads.

Files: one token per line, the word in the first column and its tag in the last (any
columns between, as many on every line of a file), a blank line between sentences,
`-DOCSTART-` lines between documents (not tokens). Tags are `O` or `<prefix>-<type>` with
prefix B, I, E, S or M, so IOB1 (as CoNLL-2003 ships), IOB2, IOBES and BMES (Resume NER)
all read. The model learns and predicts IOB2 (`iob2_tags`: the same entities, every one
starting with B-), with B- and I- of every entity type of the training file as its
labels, so a tag that a scheme uses only rarely (IOB1's B-, BMES's S-) cannot be missing
from the label set; the prediction files hold the gold tags as read and the IOB2
predictions, which conlleval's rules score (tasks/ner_eval.py).

Features, as the BERT paper's NER: `[CLS] pieces [SEP]`; a word's label sits on its first
piece, the other pieces and the special tokens weigh 0 in the loss and the metrics. A
sentence longer than `max_seq_length - 2` pieces is cut into windows `doc_stride` pieces
apart; each word is labelled (and predicted) in the window where it has the most context,
as run_squad.py picks its answers. With `document_context`, a sentence that fits is
surrounded by the neighbouring sentences of its document, up to `max_seq_length`, as the
paper's best CoNLL results did; those context pieces weigh 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

from bert_tf import file_io
from bert_tf.data import records
from bert_tf.data.tokenization import FullTokenizer
from bert_tf.errors import BertTfError
from bert_tf.tasks.ner_eval import split_tag, start_of_chunk, to_iob2
from bert_tf.tasks.squad import doc_spans, is_max_context

DOCSTART = "-DOCSTART-"
LABEL_FILE = "label_list.txt"  # the model's labels, one per line, beside its checkpoints
TAG_PREFIXES = ("B", "I", "E", "S", "M")


class NerDataError(BertTfError, ValueError):
    """An NER file that is missing, unreadable or not in the CoNLL format."""


@dataclasses.dataclass
class Sentence:
    """One sentence: its words and tags, the document it belongs to (counted from 0 in its
    file), the line number of its first word (word i is on line `line + i`) and whether a
    `-DOCSTART-` line came before it."""

    words: list[str]
    tags: list[str]
    document: int
    line: int
    starts_document: bool = False


def check_tag(tag: str, where: str) -> None:
    """`O` or `<B|I|E|S|M>-<type>`; else NerDataError naming `where` (file:line)."""
    prefix, _, kind = tag.partition("-")
    if tag != "O" and not (prefix in TAG_PREFIXES and kind):
        raise NerDataError(f"{where}: tag {tag!r} is not O or B-/I-/E-/S-/M-<type>")


def read_sentences(path: str) -> list[Sentence]:
    """The sentences of a CoNLL-style file (see the module docstring). Raises NerDataError
    naming the file and line for a missing file, non-UTF-8 bytes, a line with one column,
    a tag of another form, or a file without sentences."""
    try:
        text = file_io.read_bytes(path).decode("utf-8")
    except FileNotFoundError:
        raise NerDataError(f"{path}: no such file") from None
    except UnicodeDecodeError as error:
        raise NerDataError(f"{path}:{text_line(error.object, error.start)}: not valid UTF-8 "
                           f"({error.reason})") from None
    sentences, document, current, docstart = [], 0, None, False
    columns = None  # (count, line) of the first token line: every one has as many
    for number, line in enumerate(text.split("\n"), start=1):
        fields = line.split()
        if fields and fields[0] == DOCSTART:
            document += 1 if sentences else 0
            current, docstart = None, True
            continue
        if not fields:
            current = None
            continue
        if len(fields) < 2:
            raise NerDataError(f"{path}:{number}: expected a word and a tag (two or more "
                               f"columns), found {line!r}")
        if columns is None:
            columns = (len(fields), number)
        elif len(fields) != columns[0]:
            raise NerDataError(
                f"{path}:{number}: {len(fields)} columns, but line {columns[1]} has "
                f"{columns[0]}; every token line of a file has the same columns (the tag "
                f"last), found {line!r}")
        check_tag(fields[-1], f"{path}:{number}")
        if current is None:
            current = Sentence([], [], document, number, starts_document=docstart)
            sentences.append(current)
            docstart = False
        current.words.append(fields[0])
        current.tags.append(fields[-1])
    if not sentences:
        raise NerDataError(f"{path}: no sentences (an empty split)")
    return sentences


def text_line(data: bytes, offset: int) -> int:
    """The 1-based line number of byte `offset` in `data`."""
    return data[:offset].count(b"\n") + 1


def iob2_tags(tags: Sequence[str]) -> list[str]:
    """A sentence's tags in any scheme (IOB1, IOB2, IOBES, BMES) as IOB2: each entity's
    first token B-, the rest I- (chunks found by conlleval's rules)."""
    out, previous, previous_type = [], "O", ""
    for tag in tags:
        prefix, kind = split_tag(to_iob2(tag))
        if prefix == "O":
            out.append("O")
        else:
            starts = start_of_chunk(previous, prefix, previous_type, kind)
            out.append(f"{'B' if starts else 'I'}-{kind}")
        previous, previous_type = prefix, kind
    return out


def tag_scheme(sentences: Sequence[Sentence]) -> str:
    """The scheme a file's tags are in: "BMES" or "IOBES" (S-/E- tags; M- for BMES),
    "IOB1" (an I- tag starts an entity), else "IOB2"."""
    prefixes = {split_tag(tag)[0] for sentence in sentences for tag in sentence.tags}
    if prefixes & {"S", "E", "M"}:
        return "BMES" if "M" in prefixes else "IOBES"
    for sentence in sentences:
        previous, previous_type = "O", ""
        for tag in sentence.tags:
            prefix, kind = split_tag(tag)
            if prefix == "I" and (previous == "O" or previous_type != kind):
                return "IOB1"
            previous, previous_type = prefix, kind
    return "IOB2"


def from_iob2(tags: Sequence[str], scheme: str) -> list[str]:
    """IOB2 tags (as the model predicts them) in `scheme` (tag_scheme's names): IOB1 keeps
    B- only where an entity follows one of its type; IOBES/BMES mark single-token entities
    S-, last tokens E-, inner ones I- (IOBES) or M- (BMES)."""
    out = []
    for index, tag in enumerate(tags):
        prefix, kind = split_tag(tag)
        following = split_tag(tags[index + 1]) if index + 1 < len(tags) else ("O", "")
        continues = following == ("I", kind)
        if prefix == "O" or scheme == "IOB2":
            out.append(tag)
        elif scheme == "IOB1":
            after_same = index > 0 and split_tag(tags[index - 1])[1] == kind and prefix == "B"
            out.append(f"{'B' if after_same else 'I'}-{kind}")
        elif prefix == "B":
            out.append(f"{'B' if continues else 'S'}-{kind}")
        else:
            inner = "M" if scheme == "BMES" else "I"
            out.append(f"{inner if continues else 'E'}-{kind}")
    return out


def label_list(sentences: Sequence[Sentence]) -> list[str]:
    """The model's labels: `O`, then B- and I- of each entity type of `sentences` (the
    training file), types sorted."""
    kinds = sorted({split_tag(tag)[1] for sentence in sentences for tag in sentence.tags} - {""})
    return ["O"] + [f"{prefix}-{kind}" for kind in kinds for prefix in ("B", "I")]


def write_label_list(labels: Sequence[str], path: str) -> None:
    """`label_list.txt`: one label per line, written atomically."""
    file_io.write_atomically(path, "".join(f"{label}\n" for label in labels))


def read_label_list(path: str) -> list[str]:
    """The labels of a `label_list.txt`, one a line (FileNotFoundError when there is
    none). run_classifier.py's custom tasks keep theirs in the same format."""
    lines = file_io.read_bytes(path).decode("utf-8").split("\n")
    return [line.strip() for line in lines if line.strip()]


def check_labels(sentences: Sequence[Sentence], labels: Sequence[str], path: str) -> None:
    """Every entity type of `sentences` (read from `path`) must be one the model knows."""
    known = {split_tag(label)[1] for label in labels}
    for sentence in sentences:
        for index, tag in enumerate(sentence.tags):
            if split_tag(tag)[1] not in known:
                raise NerDataError(
                    f"{path}:{sentence.line + index}: tag {tag!r}: its type is not among the "
                    f"training file's (label_list.txt: {', '.join(labels)})")


@dataclasses.dataclass
class NerFeatures:
    """One window: ids, and per position the label id and its weight (1 on the first piece
    of each word predicted here); `words[position]` = (sentence index, word index) there."""

    input_ids: list[int]
    input_mask: list[int]
    label_ids: list[int]
    label_weights: list[int]
    words: dict[int, tuple[int, int]]


def word_pieces(sentence: Sentence, tokenizer: FullTokenizer) -> list[list[str]]:
    """Each word's pieces; a word the tokenizer drops entirely (e.g. a lone control
    character) becomes `[UNK]`, so no word goes unpredicted."""
    return [tokenizer.tokenize(word) or ["[UNK]"] for word in sentence.words]


def convert_sentences(sentences: Sequence[Sentence], tokenizer: FullTokenizer,
                      labels: Sequence[str], max_seq_length: int, doc_stride: int, *,
                      document_context: bool = False) -> Iterator[NerFeatures]:
    """The windows of every sentence, in order (see the module docstring)."""
    label_ids = {label: index for index, label in enumerate(labels)}
    pieces = [word_pieces(sentence, tokenizer) for sentence in sentences]
    room = max_seq_length - 2
    for index, sentence in enumerate(sentences):
        tags = iob2_tags(sentence.tags)
        flat, first_piece = [], {}
        for word, word_pieces_ in enumerate(pieces[index]):
            first_piece[len(flat)] = word
            flat.extend(word_pieces_)
        spans = doc_spans(len(flat), room, doc_stride)
        left: list[str] = []
        right: list[str] = []
        if document_context and len(spans) == 1:
            left, right = context_pieces(sentences, pieces, index, room - len(flat))
        for span_index, (start, length) in enumerate(spans):
            tokens = ["[CLS]", *left]
            ids = [0] * max_seq_length
            weights = [0] * max_seq_length
            words = {}
            for position in range(start, start + length):
                word = first_piece.get(position)
                if word is not None and is_max_context(spans, span_index, position):
                    ids[len(tokens)] = label_ids[tags[word]]
                    weights[len(tokens)] = 1
                    words[len(tokens)] = (index, word)
                tokens.append(flat[position])
            tokens += [*right, "[SEP]"]
            input_ids = tokenizer.convert_tokens_to_ids(tokens)
            padding = [0] * (max_seq_length - len(input_ids))
            yield NerFeatures(input_ids + padding, [1] * len(input_ids) + padding, ids,
                              weights, words)


def context_pieces(sentences: Sequence[Sentence], pieces: list[list[list[str]]], index: int,
                   room: int) -> tuple[list[str], list[str]]:
    """Up to `room` pieces of the sentences around sentence `index` in its document: half
    before (the nearest ones), the rest after; one side's unused share goes to the other."""
    document = sentences[index].document
    before: list[str] = []
    for other in range(index - 1, -1, -1):
        if sentences[other].document != document or len(before) >= room:
            break
        before = [piece for word in pieces[other] for piece in word] + before
    after: list[str] = []
    for other in range(index + 1, len(sentences)):
        if sentences[other].document != document or len(after) >= room:
            break
        after += [piece for word in pieces[other] for piece in word]
    left = min(len(before), max(room // 2, room - len(after)))
    right = min(len(after), room - left)
    return before[len(before) - left:], after[:right]


def ner_layout(max_seq_length: int) -> records.RecordLayout:
    """run_ner.py's records: per piece its id, mask, segment, label and label weight (1 on
    the first piece of a word the window scores)."""
    return records.RecordLayout({name: max_seq_length for name in (
        "input_ids", "input_mask", "segment_ids", "label_ids", "label_weights")})


def record_bytes(feature: NerFeatures) -> bytes:
    """One record of a window's features (see `ner_layout`)."""
    return ner_layout(len(feature.input_ids)).serialize({
        "input_ids": feature.input_ids, "input_mask": feature.input_mask,
        "segment_ids": [0] * len(feature.input_ids), "label_ids": feature.label_ids,
        "label_weights": feature.label_weights,
    })


def write_features(features: Iterator[NerFeatures], path: str, max_seq_length: int,
                   pad_to_multiple: int = 1) -> list[NerFeatures]:
    """Writes the windows' records at `path` (atomically), padded with all-zero windows to
    a multiple of `pad_to_multiple`; returns the windows (padding not included)."""
    kept = list(features)
    zeros = [0] * max_seq_length
    padding = NerFeatures(zeros, zeros, zeros, zeros, {})
    count = -(-len(kept) // pad_to_multiple) * pad_to_multiple
    records.write_tfrecords(path, (record_bytes(feature) for feature in
                                   kept + [padding] * (count - len(kept))))
    return kept


def word_predictions(sentences: Sequence[Sentence], features: Sequence[NerFeatures],
                     predictions, labels: Sequence[str]) -> list[list[str]]:
    """Per sentence, the predicted tag of every word, from per-window arrays of predicted
    label ids ([windows, S], padding windows after the real ones)."""
    tags = [[None] * len(sentence.words) for sentence in sentences]
    for feature, row in zip(features, predictions, strict=False):
        for position, (sentence, word) in feature.words.items():
            tags[sentence][word] = labels[int(row[position])]
    for sentence, sentence_tags in zip(sentences, tags, strict=True):
        missing = [i for i, tag in enumerate(sentence_tags) if tag is None]
        if missing:  # cannot happen: every word is labelled in one window
            raise AssertionError(f"line {sentence.line + missing[0]}: no prediction")
    return tags


def prediction_lines(sentences: Sequence[Sentence], predicted: list[list[str]]) -> list[str]:
    """conlleval's input: `word gold predicted` per word, the prediction in the gold file's
    scheme (`from_iob2`), a blank line after each sentence, and `-DOCSTART- O O` and a
    blank line where the input file had a `-DOCSTART-` line."""
    scheme = tag_scheme(sentences)
    lines = []
    for sentence, iob2 in zip(sentences, predicted, strict=True):
        tags = from_iob2(iob2, scheme)
        if sentence.starts_document:
            lines += [f"{DOCSTART} O O\n", "\n"]
        lines += [f"{word} {gold} {guess}\n"
                  for word, gold, guess in zip(sentence.words, sentence.tags, tags, strict=True)]
        lines.append("\n")
    return lines
