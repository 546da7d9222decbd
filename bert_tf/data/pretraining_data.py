"""Pretraining data: documents -> masked-LM / next-sentence instances -> TFRecord files.

Fidelity with the original `create_pretraining_data.py` is exact: given the same input,
vocabulary, flags and seed, the output files are byte-identical. That holds because every
random draw below is made from one `random.Random(seed)` in the original's order: document
shuffle; per document the short-sequence draw, the split point of segment A, the
random-next draw and the random document and start; the front/back truncation draws; the
candidate shuffle and the 80/10/10 draws of masking; finally the instance shuffle.

Input: one sentence per line, blank lines between documents (UTF-8). Output: TFRecords of
tf.train.Example with `input_ids`, `input_mask`, `segment_ids`, `masked_lm_positions`,
`masked_lm_ids`, `masked_lm_weights` (float) and `next_sentence_labels`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import random
import struct
from collections.abc import Callable, Iterator, Sequence

from bert_tf import file_io
from bert_tf.data.records import FLOAT, INT64, serialize_example, tfrecord, varint
from bert_tf.data.tokenization import FullTokenizer
from bert_tf.errors import BertTfError


class PretrainingDataError(BertTfError, ValueError):
    """Input files or flags that cannot produce pretraining data."""


@dataclasses.dataclass
class TrainingInstance:
    """One sequence pair: tokens with masks applied, segment ids, the masked positions."""

    tokens: list[str]
    segment_ids: list[int]
    masked_lm_positions: list[int]
    masked_lm_labels: list[str]
    is_random_next: bool


def read_documents(
    input_files: Sequence[str], tokenizer: FullTokenizer, skip_invalid_utf8: bool = False
) -> tuple[list[list[list[str]]], int]:
    """Reads and tokenizes documents: lists of sentences, each a list of word pieces.

    A blank line ends a document (a new file does not, as in the original); documents with
    no tokens are dropped. Lines that are not valid UTF-8 raise PretrainingDataError naming
    the file and line, or, with `skip_invalid_utf8`, are skipped and counted. Input with no
    text at all raises PretrainingDataError. Returns (documents, skipped line count).
    """
    documents: list[list[list[str]]] = [[]]
    skipped = 0
    for input_file in input_files:
        with file_io.open_file(input_file, "rb") as reader:
            data = reader.read()
        try:
            skipped += add_documents(documents, data, tokenizer, skip_invalid_utf8)
        except InvalidLine as error:
            raise invalid_utf8_error(input_file, error.line_index + 1, error.byte) from None
    documents = [document for document in documents if document]
    if not documents:
        raise PretrainingDataError(
            f"input_file: {', '.join(input_files)} hold no text (no non-empty line)"
        )
    return documents, skipped


class InvalidLine(Exception):
    """Raised by add_documents: line `line_index` (from 0) of its data is not UTF-8."""

    def __init__(self, line_index: int, byte: int):
        super().__init__(line_index, byte)
        self.line_index, self.byte = line_index, byte


def invalid_utf8_error(input_file: str, line_number: int, byte: int) -> PretrainingDataError:
    return PretrainingDataError(
        f"{input_file}: line {line_number} is not valid UTF-8 (byte {byte} of the line); "
        f"fix the file or pass --skip_invalid_utf8"
    )


def add_documents(
    documents: list[list[list[str]]], data: bytes, tokenizer: FullTokenizer,
    skip_invalid_utf8: bool = False,
) -> int:
    """Tokenizes the lines of `data` onto `documents` (its last one continues; a blank line
    starts a new one). Returns the number of invalid UTF-8 lines skipped; without
    `skip_invalid_utf8` the first one raises InvalidLine."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    skipped = 0
    current = documents[-1]
    for line_index, raw in enumerate(lines):
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError as error:
            if skip_invalid_utf8:
                skipped += 1
                continue
            raise InvalidLine(line_index, error.start) from None
        if not line:
            current = []
            documents.append(current)
        tokens = tokenizer.tokenize(line)
        if tokens:
            current.append(tokens)
    return skipped


@dataclasses.dataclass(frozen=True)
class InstanceOptions:
    """How documents become instances: the original's flags and this port's additions."""

    max_seq_length: int = 128
    max_predictions_per_seq: int = 20
    dupe_factor: int = 10
    masked_lm_prob: float = 0.15
    short_seq_prob: float = 0.1
    do_whole_word_mask: bool = False
    mask: bool = True  # False: dynamic masking at training time
    packing: str = "nsp"  # or "full_sentences", "doc_sentences"
    sentence_order: bool = False
    max_ngram: int = 1


def make_instances(
    documents: list[list[list[str]]], vocab_words: list[str], options: InstanceOptions,
    rng: random.Random,
) -> list[TrainingInstance]:
    """create_training_instances or create_packed_instances, as `options.packing` says."""
    if options.packing == "nsp":
        return create_training_instances(documents, vocab_words, options, rng)
    return create_packed_instances(documents, vocab_words, options, rng)


def create_training_instances(
    documents: list[list[list[str]]], vocab_words: list[str], options: InstanceOptions,
    rng: random.Random,
) -> list[TrainingInstance]:
    """All instances of `dupe_factor` passes over the shuffled documents, shuffled. With
    `mask=False` (dynamic masking) instances carry no masked-LM predictions; with
    `sentence_order` (ALBERT) the negatives are the two segments swapped."""
    shuffle(documents, rng)
    instances = []
    for _ in range(options.dupe_factor):
        for document_index in range(len(documents)):
            instances.extend(
                create_instances_from_document(documents, document_index, vocab_words, options,
                                               rng)
            )
    shuffle(instances, rng)
    return instances


def create_instances_from_document(
    documents: list[list[list[str]]], document_index: int, vocab_words: list[str],
    options: InstanceOptions, rng: random.Random,
) -> list[TrainingInstance]:
    """Packs one document's sentences into pairs (A, B) as the original does.

    Chunks of whole sentences fill up to a target length (usually max_seq_length - 3, with
    probability `short_seq_prob` a random shorter one). A is the chunk's first 1..n-1
    sentences; B is the rest (label 0) or, half the time and always for one-sentence chunks,
    text from a random other document (label 1), whose unused sentences are then put back.
    With `sentence_order` (ALBERT's SOP) chunks of two or more sentences are never paired
    with another document: half the time A and B are swapped instead (label 1).
    """
    document = documents[document_index]
    max_num_tokens = options.max_seq_length - 3  # [CLS], [SEP], [SEP]
    target_seq_length = max_num_tokens
    if rng.random() < options.short_seq_prob:
        target_seq_length = rng.randint(2, max_num_tokens)

    instances = []
    current_chunk: list[list[str]] = []
    current_length = 0
    i = 0
    while i < len(document):
        current_chunk.append(document[i])
        current_length += len(document[i])
        if i == len(document) - 1 or current_length >= target_seq_length:
            a_end = 1
            if len(current_chunk) >= 2:
                a_end = rng.randint(1, len(current_chunk) - 1)
            tokens_a = [token for sentence in current_chunk[:a_end] for token in sentence]
            if len(current_chunk) == 1 or (not options.sentence_order and rng.random() < 0.5):
                is_random_next = True
                tokens_b = random_next_segment(documents, document_index,
                                               target_seq_length - len(tokens_a), rng)
                i -= len(current_chunk) - a_end  # the unused sentences start the next chunk
            else:
                is_random_next = False
                tokens_b = [token for sentence in current_chunk[a_end:] for token in sentence]
                if options.sentence_order and rng.random() < 0.5:
                    is_random_next = True  # label 1: the segments are out of order
                    tokens_a, tokens_b = tokens_b, tokens_a
            truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)
            tokens = ["[CLS]", *tokens_a, "[SEP]", *tokens_b, "[SEP]"]
            segment_ids = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
            tokens, positions, labels = _maybe_mask(tokens, vocab_words, options, rng)
            instances.append(
                TrainingInstance(tokens, segment_ids, positions, labels, is_random_next)
            )
            current_chunk = []
            current_length = 0
        i += 1
    return instances


def random_next_segment(documents: list[list[list[str]]], document_index: int,
                        target_length: int, rng: random.Random) -> list[str]:
    """Segment B of a "random next" pair: whole sentences of another document from a
    random start, until `target_length` tokens. Ten tries for another document; in a
    one-document corpus the last draw is used even if it is this one, as in the original."""
    for _ in range(10):
        random_document_index = rng.randint(0, len(documents) - 1)
        if random_document_index != document_index:
            break
    random_document = documents[random_document_index]
    random_start = rng.randint(0, len(random_document) - 1)
    tokens_b: list[str] = []
    for sentence in random_document[random_start:]:
        tokens_b.extend(sentence)
        if len(tokens_b) >= target_length:
            break
    return tokens_b


def _maybe_mask(tokens: list[str], vocab_words: list[str], options: InstanceOptions,
                rng: random.Random) -> tuple[list[str], list[int], list[str]]:
    """The masked-LM predictions of `tokens` (create_masked_lm_predictions with the
    options' rate, budget, whole-word and n-gram settings), or none under dynamic masking."""
    if not options.mask:
        return tokens, [], []
    return create_masked_lm_predictions(
        tokens, options.masked_lm_prob, options.max_predictions_per_seq, vocab_words, rng,
        do_whole_word_mask=options.do_whole_word_mask, max_ngram=options.max_ngram,
    )


def create_packed_instances(
    documents: list[list[list[str]]], vocab_words: list[str], options: InstanceOptions,
    rng: random.Random,
) -> list[TrainingInstance]:
    """RoBERTa's inputs without next-sentence prediction: `[CLS] sentences... [SEP]`.

    Consecutive whole sentences fill each sequence up to max_seq_length - 2 tokens.
    FULL-SENTENCES (`packing="full_sentences"`) runs on into the next document with a
    `[SEP]` between them; DOC-SENTENCES (`"doc_sentences"`) ends a sequence at a document's
    end. A sentence longer than a whole sequence is cut. Segment ids are all 0,
    next_sentence_labels 0.
    """
    shuffle(documents, rng)
    capacity = options.max_seq_length - 2
    cross_documents = options.packing == "full_sentences"
    instances = []

    def emit(chunk: list[str]) -> None:
        while chunk and chunk[-1] == "[SEP]":
            chunk.pop()
        if not chunk:
            return
        tokens, positions, labels = _maybe_mask(["[CLS]", *chunk, "[SEP]"], vocab_words,
                                                options, rng)
        instances.append(TrainingInstance(tokens, [0] * len(tokens), positions, labels, False))

    for _ in range(options.dupe_factor):
        chunk: list[str] = []
        for document in documents:
            for sentence in document:
                if chunk and len(chunk) + len(sentence) > capacity:
                    emit(chunk)
                    chunk = []
                chunk.extend(sentence[:capacity])
            if cross_documents:
                if chunk and len(chunk) < capacity:
                    chunk.append("[SEP]")  # document boundary inside the sequence
            else:
                emit(chunk)
                chunk = []
        emit(chunk)
    shuffle(instances, rng)
    return instances


def truncate_seq_pair(
    tokens_a: list[str], tokens_b: list[str], max_num_tokens: int, rng: random.Random
) -> None:
    """Truncates the longer list (B on ties) one token at a time, from a random end."""
    while len(tokens_a) + len(tokens_b) > max_num_tokens:
        longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


def create_masked_lm_predictions(
    tokens: list[str],
    masked_lm_prob: float,
    max_predictions_per_seq: int,
    vocab_words: list[str],
    rng: random.Random,
    *,
    do_whole_word_mask: bool = False,
    max_ngram: int = 1,
) -> tuple[list[str], list[int], list[str]]:
    """Chooses round(len * masked_lm_prob) positions (at most max_predictions_per_seq, at
    least 1) and replaces each by [MASK] 80%, itself 10%, a random vocabulary word 10%.

    With whole-word masking, a word's pieces (`##` continuations) are chosen together.
    With `max_ngram` > 1 (ALBERT), each pick is a span of n consecutive candidates, n drawn
    with probability proportional to 1/n; a span that does not fit the budget is skipped.
    Returns (tokens with masks, masked positions ascending, original tokens there).
    """
    num_to_predict = min(max_predictions_per_seq, max(1, int(round(len(tokens) * masked_lm_prob))))
    if do_whole_word_mask or max_ngram > 1:
        units: list[list[int]] = []  # a word's pieces (whole-word masking) or one piece each
        for i in _maskable_positions(tokens):
            if do_whole_word_mask and units and tokens[i].startswith("##"):
                units[-1].append(i)
            else:
                units.append([i])
        if max_ngram > 1:
            units = _ngram_picks(units, max_ngram, rng)
        else:
            shuffle(units, rng)
        chosen: list[int] = []
        chosen_set: set[int] = set()
        for indexes in units:
            if len(chosen) >= num_to_predict:
                break
            if len(chosen) + len(indexes) > num_to_predict:
                continue
            if max_ngram > 1 and not chosen_set.isdisjoint(indexes):  # n-gram spans overlap
                continue
            chosen.extend(indexes)
            chosen_set.update(indexes)
    else:  # the original shuffles one-element lists; the same draws shuffle the positions
        chosen = _maskable_positions(tokens)
        shuffle(chosen, rng)
        del chosen[num_to_predict:]

    # Choosing draws nothing, so drawing the replacements afterwards, in the order chosen,
    # uses the generator exactly as the original's interleaved loop does.
    output_tokens = list(tokens)
    draw = rng.random
    for index in chosen:
        if draw() < 0.8:
            output_tokens[index] = "[MASK]"
        elif draw() >= 0.5:  # else (10%) the token stays
            output_tokens[index] = vocab_words[rng.randint(0, len(vocab_words) - 1)]
    chosen.sort()
    return output_tokens, chosen, [tokens[index] for index in chosen]


def _maskable_positions(tokens: list[str]) -> list[int]:
    """Positions of every token but [CLS] and [SEP] (found by list.index, not a loop)."""
    specials = []
    for name in ("[CLS]", "[SEP]"):
        index = -1
        for _ in range(tokens.count(name)):
            index = tokens.index(name, index + 1)
            specials.append(index)
    positions: list[int] = []
    previous = -1
    for special in sorted(specials):
        positions.extend(range(previous + 1, special))
        previous = special
    positions.extend(range(previous + 1, len(tokens)))
    return positions


def shuffle(items: list, rng: random.Random) -> None:
    """`rng.shuffle(items)`: the same permutation from the same draws (CPython's
    Fisher-Yates, index i swapped with j < i + 1 drawn by getrandbits(bit length of i + 1)
    with rejection), without a function call per element."""
    getrandbits = rng.getrandbits
    bits = len(items).bit_length()
    top = len(items) - 1
    while top > 0:  # the indexes whose bound i + 1 has `bits` bits, from the top down
        bottom = max(1, (1 << (bits - 1)) - 1)
        for i in range(top, bottom - 1, -1):
            j = getrandbits(bits)
            while j > i:
                j = getrandbits(bits)
            items[i], items[j] = items[j], items[i]
        top = bottom - 1
        bits -= 1


def _ngram_picks(candidates: list[list[int]], max_ngram: int,
                 rng: random.Random) -> list[list[int]]:
    """ALBERT's n-gram candidates: for each start (in random order) a span of n candidate
    units, n in 1..max_ngram with P(n) proportional to 1/n among the spans that fit."""
    starts = list(range(len(candidates)))
    shuffle(starts, rng)
    picks = []
    for start in starts:
        longest = min(max_ngram, len(candidates) - start)
        weights = [1.0 / n for n in range(1, longest + 1)]
        draw, n = rng.random() * sum(weights), 1
        while draw > weights[n - 1] and n < longest:
            draw -= weights[n - 1]
            n += 1
        picks.append([i for unit in candidates[start:start + n] for i in unit])
    return picks


# The order in which the original's protobuf runtime serialized the feature map (its hash
# order, the same for every record; today's protobuf keeps insertion order instead). The
# records are written in this order so the files are byte-identical to the original's.
FEATURE_ORDER = (
    "masked_lm_ids",
    "input_ids",
    "masked_lm_positions",
    "next_sentence_labels",
    "input_mask",
    "masked_lm_weights",
    "segment_ids",
)


def tokenvarints(vocab: dict[str, int]) -> dict[str, bytes]:
    """Word piece -> the varint bytes of its id, for instance_to_example."""
    return {token: varint(index) for token, index in vocab.items()}


_ONE_FLOAT32 = struct.pack("<f", 1.0)


def instance_to_example(
    instance: TrainingInstance,
    varints: dict[str, bytes],
    max_seq_length: int,
    max_predictions_per_seq: int,
) -> bytes:
    """Serializes one instance as the original does (zero-padded to the fixed lengths;
    `varints` from tokenvarints). Zero and one are one-byte varints, so the masks and
    padding are runs of bytes."""
    length = len(instance.tokens)
    padding = b"\x00" * (max_seq_length - length)
    predictions = len(instance.masked_lm_labels)
    masked_padding = b"\x00" * (max_predictions_per_seq - predictions)
    return serialize_example(FEATURE_ORDER, {
        "input_ids": (INT64, b"".join([varints[t] for t in instance.tokens]) + padding),
        "input_mask": (INT64, b"\x01" * length + padding),
        "segment_ids": (INT64, bytes(instance.segment_ids) + padding),
        "masked_lm_positions": (
            INT64, b"".join(map(varint, instance.masked_lm_positions)) + masked_padding
        ),
        "masked_lm_ids": (
            INT64, b"".join([varints[t] for t in instance.masked_lm_labels]) + masked_padding
        ),
        "masked_lm_weights": (
            FLOAT, _ONE_FLOAT32 * predictions + masked_padding * 4
        ),
        "next_sentence_labels": (INT64, b"\x01" if instance.is_random_next else b"\x00"),
    })


def write_instances(
    instances: Sequence[TrainingInstance],
    tokenizer: FullTokenizer,
    max_seq_length: int,
    max_predictions_per_seq: int,
    output_files: Sequence[str],
    progress: Callable[[int], None] | None = None,
) -> list[int]:
    """Writes instances round-robin across `output_files`; returns the count per file.

    The files are staged and renamed together when all are written (file_io.StagedOutputs),
    so an interrupted or failed run leaves no partial output and no staged file.
    `progress(n)` is called every 1,000 instances written.
    """
    with file_io.StagedOutputs(output_files, "wb") as writers:
        return write_records(writers, instances, tokenizer, max_seq_length,
                             max_predictions_per_seq, progress)


def write_records(
    writers: Sequence, instances: Sequence[TrainingInstance], tokenizer: FullTokenizer,
    max_seq_length: int, max_predictions_per_seq: int,
    progress: Callable[[int], None] | None = None,
) -> list[int]:
    """Writes instances as TFRecords round-robin to open binary `writers`; returns counts."""
    counts = [0] * len(writers)
    varints = tokenvarints(tokenizer.vocab)
    for index, instance in enumerate(instances):
        shard = index % len(writers)
        writers[shard].write(tfrecord(
            instance_to_example(instance, varints, max_seq_length, max_predictions_per_seq)
        ))
        counts[shard] += 1
        if progress and (index + 1) % 1000 == 0:
            progress(index + 1)
    return counts


@contextlib.contextmanager
def without_cyclic_gc() -> Iterator[None]:
    """Python's cyclic garbage collector off for a block that builds millions of objects
    and no reference cycles (documents, instances, records). Its full collections scan
    the whole, growing heap, so the time per MB grew with the corpus: measured on big.txt
    x4 against x1, instance making took 5.4x the time with it and 3.6x without."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def check_writable(output_files: Sequence[str]) -> None:
    """Fails early, before any work, when an output file cannot be created."""
    try:
        file_io.check_writable(output_files)
    except file_io.OutputError as error:
        raise PretrainingDataError(f"output_file: {error}") from None


def validate_flags(max_seq_length: int, max_predictions_per_seq: int, masked_lm_prob: float,
                   max_position_embeddings: int | None = None) -> None:
    """Refuses flag values with which the original would fail or silently under-mask."""
    if max_seq_length < 5:
        raise PretrainingDataError(
            f"max_seq_length must be at least 5 ([CLS] a [SEP] b [SEP]), found {max_seq_length}"
        )
    if max_position_embeddings is not None and max_seq_length > max_position_embeddings:
        raise PretrainingDataError(
            f"max_seq_length {max_seq_length} exceeds max_position_embeddings "
            f"{max_position_embeddings}"
        )
    if not 0.0 < masked_lm_prob < 1.0:
        raise PretrainingDataError(f"masked_lm_prob must be in (0, 1), found {masked_lm_prob}")
    needed = max(1, int(round(max_seq_length * masked_lm_prob)))
    if max_predictions_per_seq < needed:
        raise PretrainingDataError(
            f"max_predictions_per_seq {max_predictions_per_seq} is smaller than the "
            f"{needed} predictions masked_lm_prob {masked_lm_prob} asks for in a full "
            f"sequence of {max_seq_length}; raise it to at least {needed}"
        )
