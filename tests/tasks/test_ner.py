"""NER: conlleval's scoring (against the official script's report), CoNLL and BMES reading,
first-piece features and windows, run_ner.py end to end."""


import pytest
from conftest import data_path, fixture_path
from conftest import run_script as run

from bert_tf.data.tokenization import FullTokenizer
from bert_tf.tasks import ner, ner_eval


def test_report_equals_conlleval_on_the_fixture():
    predictions = fixture_path("metrics", "conll_dev.predictions.txt")
    expected = fixture_path("metrics", "conll_dev.conlleval.txt").read_text()
    assert ner_eval.report(ner_eval.evaluate_file(str(predictions))) == expected
    result = run(["-m", "bert_tf.tasks.ner_eval", predictions])
    assert result.stdout == expected


def counts(gold: str, guess: str) -> tuple[int, int, int, int]:
    """(gold chunks, found chunks, correct chunks, correct tags) of one sentence, tags
    separated by spaces."""
    rows = [("w", g, p) for g, p in zip(gold.split(), guess.split(), strict=True)]
    result = ner_eval.count(rows)
    return (result.gold.total(), result.found.total(), result.correct.total(),
            result.correct_tags)


def test_conlleval_chunk_rules_on_hand_built_cases():
    assert counts("B-PER I-PER O", "B-PER I-PER O") == (1, 1, 1, 3)
    # B- starts a new chunk even after the same type: two gold entities, one found.
    assert counts("B-PER B-PER", "B-PER I-PER") == (2, 1, 0, 1)
    # A type change ends a chunk, with or without B-.
    assert counts("I-PER I-LOC", "I-PER I-PER") == (2, 1, 0, 1)
    # IOB1 gold and IOB2 prediction mark the same entity: the chunk is correct, the tags
    # differ (token accuracy counts tags literally, as conlleval does).
    assert counts("I-LOC I-LOC O", "B-LOC I-LOC O") == (1, 1, 1, 2)
    # A chunk that ends at the sentence end, then one of the same type: two chunks.
    rows = [("a", "I-PER", "I-PER"), (ner_eval.BOUNDARY, "O", "O"), ("b", "I-PER", "I-PER")]
    result = ner_eval.count(rows)
    assert (result.gold["PER"], result.correct["PER"], result.tokens) == (2, 2, 2)
    # A wrong end: the prediction runs one token longer.
    assert counts("B-ORG I-ORG O", "B-ORG I-ORG I-ORG") == (1, 1, 0, 2)
    # The last chunk of the input is counted.
    assert counts("O B-MISC", "O B-MISC") == (1, 1, 1, 2)
    # BMES / IOBES are read as the IOB2 of the same entities.
    rows = ner_eval.read_rows(["a B-X M-X\n", "b M-X E-X\n", "c E-X O\n", "d S-Y S-Y\n"])
    assert [r[1:] for r in rows] == [("B-X", "I-X"), ("I-X", "I-X"), ("I-X", "O"),
                                     ("B-Y", "B-Y")]
    result = ner_eval.count(rows)
    assert (result.gold.total(), result.found.total(), result.correct.total()) == (2, 2, 1)
    with pytest.raises(ner_eval.ConllFormatError, match=r"x.txt:2: expected 3"):
        ner_eval.read_rows(["a O O\n", "b O\n"], "x.txt")


def test_reading_the_real_files():
    dev = ner.read_sentences(str(data_path("conll2003", "dev.txt")))
    assert len(dev) == 3250 and sum(len(s.words) for s in dev) == 51362
    assert len({s.document for s in dev}) == 216 and all(s.starts_document == (
        i == 0 or dev[i - 1].document != s.document) for i, s in enumerate(dev))
    assert ner.tag_scheme(dev) == "IOB1"
    resume = ner.read_sentences(str(data_path("chinese_ner", "dev.txt")))
    assert len(resume) == 463 and sum(len(s.words) for s in resume) == 13890
    assert ner.tag_scheme(resume) == "BMES" and {s.document for s in resume} == {0}
    for sentences in (dev, resume):  # IOB2 and back: the tags as read
        scheme = ner.tag_scheme(sentences)
        assert all(ner.from_iob2(ner.iob2_tags(s.tags), scheme) == s.tags for s in sentences)
    entities = sum(tag.startswith(("B-", "S-")) for s in resume for tag in s.tags)
    assert entities == 1497
    labels = ner.label_list(ner.read_sentences(str(data_path("conll2003", "train.txt"))))
    assert labels == ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER",
                      "I-PER"]


def test_bad_files_name_file_line_and_expectation(tmp_path):
    cases = {
        "one_column.txt": (b"EU B-ORG\nrejects\n", r"one_column.txt:2: expected a word and a tag"),
        "bad_tag.txt": (b"EU X-ORG\n", r"bad_tag.txt:1: tag 'X-ORG' is not O or B-/I-/E-/S-/M-"),
        "no_type.txt": (b"EU B-\n", r"no_type.txt:1: tag 'B-'"),
        "latin1.txt": (b"a O\n\ncaf\xe9 O\n", r"latin1.txt:3: not valid UTF-8"),
        "empty.txt": (b"-DOCSTART- -X- O\n\n", r"empty.txt: no sentences"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ner.NerDataError, match=message):
            ner.read_sentences(str(tmp_path / name))
    with pytest.raises(ner.NerDataError, match="no such file"):
        ner.read_sentences(str(tmp_path / "missing.txt"))
    (tmp_path / "dev.txt").write_text("Paris B-LOC\n\nBob B-PER\n")
    sentences = ner.read_sentences(str(tmp_path / "dev.txt"))
    with pytest.raises(ner.NerDataError, match=r"dev.txt:3: tag 'B-PER': its type is not"):
        ner.check_labels(sentences, ["O", "B-LOC", "I-LOC"], str(tmp_path / "dev.txt"))


@pytest.fixture(scope="module")
def tokenizer():
    return FullTokenizer(str(fixture_path("minilm_ckpt", "vocab.txt")), True)


def test_labels_on_first_pieces_and_every_word_once_across_windows(tokenizer):
    words = "The Normans conquered Sicilia , Apulia and Calabria in 1091 .".split()
    tags = ["O", "I-MISC", "O", "I-LOC", "O", "I-LOC", "O", "I-LOC", "O", "O", "O"]
    sentence = ner.Sentence(words, tags, 0, 1)
    labels = ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    (one,) = ner.convert_sentences([sentence], tokenizer, labels, 64, 32)
    pieces = ["[CLS]"] + [p for w in words for p in tokenizer.tokenize(w)] + ["[SEP]"]
    assert one.input_ids[:len(pieces)] == tokenizer.convert_tokens_to_ids(pieces)
    first = [i for i, p in enumerate(pieces) if 0 < i < len(pieces) - 1
             and not p.startswith("##")]
    assert [i for i, w in enumerate(one.label_weights) if w] == first
    assert [labels[one.label_ids[i]] for i in first] == ner.iob2_tags(tags)
    # Windows of 8 pieces, 3 apart: every word predicted exactly once, in a window where
    # it is not at the edge when another window holds it further in.
    windows = list(ner.convert_sentences([sentence], tokenizer, labels, 10, 3))
    assert len(windows) > 2
    placed = sorted(word for w in windows for (_, word) in w.words.values())
    assert placed == list(range(len(words)))
    assert all(sum(w.label_weights) == len(w.words) for w in windows)


def test_document_context_fills_windows_with_unlabelled_neighbours(tokenizer):
    sentences = [ner.Sentence(text.split(), ["O"] * len(text.split()), document, 1)
                 for text, document in [("alpha beta", 0), ("gamma delta", 0),
                                        ("epsilon zeta", 0), ("other doc", 1)]]
    labels = ["O"]
    plain = list(ner.convert_sentences(sentences, tokenizer, labels, 16, 8))
    context = list(ner.convert_sentences(sentences, tokenizer, labels, 16, 8,
                                         document_context=True))
    middle = tokenizer.convert_ids_to_tokens(
        [i for i, m in zip(context[1].input_ids, context[1].input_mask, strict=True) if m])
    assert middle[1:3] == tokenizer.tokenize("alpha beta")  # the sentence before
    assert tokenizer.tokenize("epsilon zeta")[0] in middle  # and after
    assert "other" not in middle  # never across documents
    assert sum(context[1].label_weights) == sum(plain[1].label_weights) == 2
    assert len(context[1].input_ids) == 16






