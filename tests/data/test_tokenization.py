import json
import random

import pytest
from conftest import data_path, fixture_path, one_line_error, script

from bert_tf.data import tokenization
from bert_tf.data.tokenization import (
    BasicTokenizer,
    FullTokenizer,
    VocabError,
    WordpieceTokenizer,
    check_vocab_fits,
)
from bert_tf.text.fast_tokenization import FastTokenizer


def fixture_cases():
    return json.loads(fixture_path("tokenizer_public.json").read_text(encoding="utf-8"))


SETTINGS = ["uncased", "cased_flag_on_uncased_vocab", "chinese"]


def make(cls, setting):
    spec = fixture_cases()["vocabs"][setting]
    return cls(str(fixture_path(spec["vocab"])), do_lower_case=spec["do_lower_case"])


@pytest.mark.parametrize("setting", SETTINGS)
def test_exact_tokenizer_matches_original(setting):
    tokenizer = make(FullTokenizer, setting)
    for case in fixture_cases()["cases"]:
        tokens = tokenizer.tokenize(case["text"])
        assert tokens == case[setting]["tokens"], case["text"]
        assert tokenizer.convert_tokens_to_ids(tokens) == case[setting]["ids"]
        assert tokenizer.convert_ids_to_tokens(case[setting]["ids"]) == tokens


@pytest.mark.parametrize("setting", SETTINGS)
def test_fast_tokenizer_matches_original(setting):
    tokenizer = make(FastTokenizer, setting)
    cases = fixture_cases()["cases"]
    got = tokenizer.tokenize([case["text"] for case in cases]).to_list()
    for case, ids in zip(cases, got, strict=True):
        assert ids == case[setting]["ids"], case["text"]


def test_fast_equals_exact_on_the_whole_corpus():
    vocab = str(fixture_path("minilm_ckpt", "vocab.txt"))
    exact, fast = FullTokenizer(vocab, True), FastTokenizer(vocab, True)
    text = data_path("text", "big.txt").read_text(encoding="utf-8")
    lines = [line for line in text.split("\n") if line.strip()]
    total = 0
    for start in range(0, len(lines), 4096):
        batch = lines[start : start + 4096]
        for line, ids in zip(batch, fast.tokenize(batch).to_list(), strict=True):
            want = exact.convert_tokens_to_ids(exact.tokenize(line))
            assert ids == want, line
            total += len(ids)
    assert total == 620177  # the word-piece count the fixture README gives for big.txt


def write_vocab(tmp_path, tokens):
    path = tmp_path / "vocab.txt"
    path.write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    return str(path)


def test_wordpiece_greedy_longest_match(tmp_path):
    vocab = tokenization.load_vocab(
        write_vocab(tmp_path, ["[UNK]", "[CLS]", "want", "##want", "##ed", "wa", "un", "runn",
                               "##ing"])
    )
    wordpiece = WordpieceTokenizer(vocab)
    assert wordpiece.tokenize("unwanted running") == ["un", "##want", "##ed", "runn", "##ing"]
    assert wordpiece.tokenize("unwantedX running") == ["[UNK]", "runn", "##ing"]
    assert wordpiece.tokenize("") == []
    assert wordpiece.tokenize("a" * 201) == ["[UNK]"]


def test_basic_tokenizer_rules():
    assert BasicTokenizer(True).tokenize(" \tHeLLo!how  \n Are yoU?  ") == [
        "hello", "!", "how", "are", "you", "?"
    ]
    assert BasicTokenizer(True).tokenize("H\u00e9llo") == ["hello"]
    assert BasicTokenizer(False).tokenize("H\u00e9llo") == ["H\u00e9llo"]
    assert BasicTokenizer(True).tokenize("ah\u535a\u63a8zz") == ["ah", "\u535a", "\u63a8", "zz"]
    assert BasicTokenizer(True).tokenize("a\u200bb\x00c\ufffd") == ["abc"]


def test_load_vocab_keeps_original_line_semantics(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\n a \n\nb\u2028c\nlast", encoding="utf-8")
    vocab = tokenization.load_vocab(str(path))
    assert list(vocab.items()) == [("[PAD]", 0), ("a", 1), ("", 2), ("b\u2028c", 3), ("last", 4)]


def test_vocab_errors(tmp_path):
    with pytest.raises(VocabError, match="missing.txt: vocabulary file not found"):
        FullTokenizer(str(tmp_path / "missing.txt"))
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(VocabError, match="empty.txt: vocabulary file is empty"):
        FullTokenizer(str(empty))
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(b"[PAD]\ncaf\xe9\n")
    with pytest.raises(VocabError, match=r"latin1.txt: line 2 is not valid UTF-8"):
        FastTokenizer(str(latin1))


def test_convert_to_unicode():
    assert tokenization.convert_to_unicode(b"caf\xc3\xa9") == "caf\u00e9"
    assert tokenization.convert_to_unicode(b"bad\xff") == "bad"
    assert tokenization.printable_text("x") == "x"
    with pytest.raises(ValueError):
        tokenization.convert_to_unicode(3)


def test_validate_case_matches_checkpoint():
    check = tokenization.validate_case_matches_checkpoint
    check(True, "gs://b/uncased_L-12_H-768_A-12/bert_model.ckpt")
    check(False, "gs://b/cased_L-12_H-768_A-12/bert_model.ckpt")
    check(False, "/my/own/model.ckpt-100")
    check(True, None)
    with pytest.raises(ValueError, match="seems to be a uncased model"):
        check(False, "/m/uncased_L-12_H-768_A-12/bert_model.ckpt")
    with pytest.raises(ValueError, match="seems to be a cased model"):
        check(True, "/m/multi_cased_L-12_H-768_A-12/bert_model.ckpt")


@pytest.mark.parametrize("do_lower_case", [True, False])
def test_ascii_fast_path_equals_the_basic_tokenizer(do_lower_case):
    """Every ASCII character, control characters included, in random strings."""
    rng = random.Random(0)
    basic = BasicTokenizer(do_lower_case=do_lower_case)
    for _ in range(5000):
        text = "".join(chr(rng.randrange(128)) for _ in range(rng.randrange(40)))
        assert tokenization._ascii_words(text, do_lower_case) == basic.tokenize(text), repr(text)


def test_remembered_words_give_the_same_pieces():
    tokenizer = make(FullTokenizer, "uncased")
    text = "The unaffable tokenizer, tokenizing again: unaffable!"
    first, second = tokenizer.tokenize(text), tokenizer.tokenize(text)
    reference = [
        piece
        for word in tokenizer.basic_tokenizer.tokenize(text)
        for piece in tokenizer.wordpiece_tokenizer.tokenize(word)
    ]
    assert first == second == reference


def test_fast_paths_equal_the_two_pass_original_on_random_unicode():
    """Control, format, space, CJK, accented and punctuation characters mixed with ASCII."""
    tokenizer = make(FullTokenizer, "uncased")
    cased = make(FullTokenizer, "cased_flag_on_uncased_vocab")
    rng = random.Random(1)
    special = [chr(c) for c in [0, 0x85, 0xA0, 0x200B, 0x2028, 0x3000, 0xFEFF, 0xFFFD, 0x1F600]]
    alphabet = [chr(c) for c in range(0x3000)] + [chr(c) for c in range(0x4E00, 0x4E40)] + special
    for _ in range(3000):
        text = "".join(
            rng.choice(alphabet) if rng.random() < 0.3 else rng.choice("ab cdéf,.")
            for _ in range(rng.randrange(30))
        )
        for full in (tokenizer, cased):
            reference = [
                piece
                for word in full.basic_tokenizer.tokenize(text)
                for piece in full.wordpiece_tokenizer.tokenize(word)
            ]
            assert full.tokenize(text) == reference, repr(text)


def test_fast_tokenizer_character_classes_are_the_exact_ones():
    """The fast tokenizer's classes (from Python's unicodedata) hold exactly the code points
    the exact tokenizer's rules pick, for every code point."""
    from bert_tf.text.fast_tokenization import class_members

    members = {name: set(cps) for name, cps in class_members().items()}
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        char = chr(cp)
        deleted = cp in (0, 0xFFFD) or tokenization._is_control(char)
        assert (cp in members["deleted"]) == deleted, hex(cp)
        whitespace = not deleted and (tokenization._is_whitespace(char) or char.isspace())
        assert (cp in members["whitespace"]) == whitespace, hex(cp)
        assert (cp in members["punctuation"]) == tokenization._is_punctuation(char), hex(cp)


@pytest.mark.slow
def test_fast_equals_exact_on_every_code_point():
    """Every code point but the surrogates, each between two letters, 512 to a line: the
    same ids from both tokenizers (training data is made by the exact one, serving
    tokenizes with the fast one). Lower-casing, the longer path (~25 s); without it the
    two share the character classes tested above."""
    vocab = str(fixture_path("minilm_ckpt", "vocab.txt"))
    exact, fast = FullTokenizer(vocab, True), FastTokenizer(vocab, True)
    code_points = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    starts = range(0, len(code_points), 512)
    lines = [" ".join(f"a{chr(cp)}b" for cp in code_points[start:start + 512])
             for start in starts]
    for batch_start in range(0, len(lines), 256):
        batch = lines[batch_start:batch_start + 256]
        for index, ids in enumerate(fast.tokenize(batch).to_list(), batch_start):
            want = exact.convert_tokens_to_ids(exact.tokenize(lines[index]))
            first = code_points[starts[index]]
            assert ids == want, f"code points from U+{first:04X}"


SAMPLE = str(fixture_path("pretrain_public", "sample_text.txt"))




def test_a_vocabulary_larger_than_vocab_size_is_refused_up_front(tmp_path):
    tiny = fixture_path("tiny_ckpt")
    config = json.loads((tiny / "bert_config.json").read_text())
    vocab = (tiny / "vocab.txt").read_text().splitlines()
    big = tmp_path / "vocab.txt"
    big.write_text("\n".join(vocab + ["extra1", "extra2"]) + "\n")
    with pytest.raises(VocabError, match=rf"vocab.txt: {len(vocab) + 2} tokens, but vocab_size"
                                         rf" in c.json is {config['vocab_size']}"):
        check_vocab_fits({t: i for i, t in enumerate(vocab + ["extra1", "extra2"])}, str(big),
                         config["vocab_size"], "c.json")
    result = script(["extract_features.py", f"--input_file={SAMPLE}",
                     f"--output_file={tmp_path / 'o.jsonl'}", f"--vocab_file={big}",
                     f"--bert_config_file={tiny / 'bert_config.json'}",
                     f"--init_checkpoint={tiny / 'bert_model.ckpt'}", "--layers=-1"])
    one_line_error(result, "extract_features.py:", f"{big}: {len(vocab) + 2} tokens")
    assert not (tmp_path / "o.jsonl").exists()
