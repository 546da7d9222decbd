"""Byte-level BPE against HF tokenizers (Rust, test-only) on real text: a vocabulary is
trained with tokenizers, then both encode every line of the corpus."""

import pytest
from conftest import data_path

from bert_tf.bpe import ByteLevelBPETokenizer


def test_same_ids_as_hf_tokenizers_on_the_corpus(tmp_path):
    tokenizers = pytest.importorskip("tokenizers", reason="HF tokenizers (test extra)")
    lines = data_path("text", "big.txt").read_text(encoding="utf-8").splitlines()
    reference = tokenizers.ByteLevelBPETokenizer()
    reference.train_from_iterator(lines[:4000], vocab_size=3000, min_frequency=2,
                                  show_progress=False)
    reference.save_model(str(tmp_path))
    ours = ByteLevelBPETokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    sample = [line for line in lines[:20000] if line] + [
        "naïve café — “quotes” 😀 日本語 ﬁ \t tabs   and  spaces ", "it's we'll they'd 2026",
    ]
    expected = [e.ids for e in reference.encode_batch(sample)]
    assert [ours.encode(text) for text in sample] == expected
    assert all(ours.decode(ours.encode(text)) == text for text in sample[-2:])


def test_bad_bpe_files(tmp_path):
    (tmp_path / "vocab.json").write_text("{not json")
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b\n")
    with pytest.raises(ValueError, match="vocab.json: not a JSON vocabulary"):
        ByteLevelBPETokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    (tmp_path / "vocab.json").write_text('{"a": 0}')
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b c\n")
    with pytest.raises(ValueError, match=r"merges.txt:2: expected two symbols"):
        ByteLevelBPETokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
