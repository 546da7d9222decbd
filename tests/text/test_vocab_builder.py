"""build_vocab.py: a WordPiece vocabulary learned from real text, round-tripping it."""

import subprocess
import sys

from conftest import REPO, data_path

from bert_tf.data.tokenization import BasicTokenizer, FullTokenizer


def test_learned_vocab_round_trips_the_corpus(tmp_path):
    lines = data_path("text", "big.txt").read_text(encoding="utf-8").splitlines()[:2000]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    vocab = tmp_path / "vocab.txt"
    subprocess.run([sys.executable, str(REPO / "build_vocab.py"), f"--input_file={corpus}",
                    f"--output_file={vocab}", "--vocab_size=2000", "--num_unused=10"],
                   check=True, capture_output=True, text=True)
    tokens = vocab.read_text(encoding="utf-8").splitlines()
    assert tokens[:12] == ["[PAD]", *(f"[unused{i}]" for i in range(10)), "[UNK]"]
    assert tokens[12:15] == ["[CLS]", "[SEP]", "[MASK]"]
    assert 500 < len(tokens) <= 2000 and len(set(tokens)) == len(tokens)
    assert any(t.startswith("##") for t in tokens) and "the" in tokens

    tokenizer = FullTokenizer(str(vocab), do_lower_case=True)
    basic = BasicTokenizer(do_lower_case=True)
    words = unknown = 0
    for line in lines:
        pieces = tokenizer.tokenize(line)
        unknown += pieces.count("[UNK]")
        words += len(basic.tokenize(line))
        if "[UNK]" not in pieces:  # joining the pieces gives back the words
            assert " ".join(pieces).replace(" ##", "") == " ".join(basic.tokenize(line))
    assert unknown / words < 0.001, (unknown, words)
