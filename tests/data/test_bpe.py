"""Byte-level BPE against HF tokenizers (Rust, test-only) on real text: a vocabulary is
trained with tokenizers, then both encode every line of the corpus; and RoBERTa-style
pretraining data and training with such a vocabulary, end to end."""

import json

import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_CONFIG, data_path, read_results
from conftest import run_script as run

from bert_tf.data.bpe import ByteLevelBPETokenizer

TINY = {**TINY_CONFIG, "max_position_embeddings": 64}


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


SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def train_bpe(tmp_path, lines: list[str]) -> tuple[str, str, dict]:
    """A RoBERTa-style vocab.json + merges.txt trained with HF tokenizers (test-only)."""
    tokenizers = pytest.importorskip("tokenizers", reason="HF tokenizers (test extra)")
    trainer = tokenizers.ByteLevelBPETokenizer()
    trainer.train_from_iterator(lines, vocab_size=800, min_frequency=2, show_progress=False,
                                special_tokens=SPECIALS)
    trainer.save_model(str(tmp_path))
    vocab = json.loads((tmp_path / "vocab.json").read_text())
    return str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"), vocab


def test_roberta_style_pretraining_with_a_bpe_vocabulary(tmp_path):
    """create_pretraining_data.py and run_pretraining.py with vocab.json + merges.txt:
    records hold RoBERTa's ids (<s> ... </s>, <mask> in static masks) of the BPE encoding;
    fast mode makes the same kind of records; dynamic masking trains on them without NSP."""
    lines = data_path("text", "big.txt").read_text(encoding="utf-8").splitlines()[:600]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    vocab_file, merges_file, vocab = train_bpe(tmp_path, lines)
    bpe = ByteLevelBPETokenizer(vocab_file, merges_file)
    common = [f"--input_file={corpus}", f"--vocab_file={vocab_file}",
              f"--merges_file={merges_file}", "--do_lower_case=false", "--max_seq_length=64",
              "--max_predictions_per_seq=10", "--dupe_factor=1"]
    static = tmp_path / "static.tfrecord"
    run(["create_pretraining_data.py", f"--output_file={static}", *common])
    records = [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(
        str(static))]
    masked = 0
    for example in records[:50]:
        ids = list(example.features.feature["input_ids"].int64_list.value)
        length = sum(example.features.feature["input_mask"].int64_list.value)
        assert ids[0] == vocab["<s>"] and ids[length - 1] == vocab["</s>"]
        positions = example.features.feature["masked_lm_positions"].int64_list.value
        masked += sum(ids[p] == vocab["<mask>"] for p in positions if p)
    assert masked > 0.6 * sum(
        sum(1 for p in e.features.feature["masked_lm_positions"].int64_list.value if p)
        for e in records[:50])
    # Unmasked records in fast mode hold exactly the BPE encoding of the text.
    fast = tmp_path / "fast"
    run(["create_pretraining_data.py", f"--output_file={fast}/", "--mode=fast",
         "--num_workers=1", "--masking=dynamic", "--packing=full_sentences", *common])
    first = tf.train.Example.FromString(next(iter(tf.data.TFRecordDataset(
        sorted(str(p) for p in fast.iterdir())[0]))).numpy())
    ids = list(first.features.feature["input_ids"].int64_list.value)
    length = sum(first.features.feature["input_mask"].int64_list.value)
    text = bpe.decode([i for i in ids[1:length - 1] if i != vocab["</s>"]])
    assert bpe.encode(text)[:10] == [i for i in ids[1:11] if i != vocab["</s>"]][:10]
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**TINY, "vocab_size": len(vocab)}))
    out = tmp_path / "out"
    run(["run_pretraining.py", "--do_train", "--do_eval", "--dynamic_masking",
         f"--vocab_file={vocab_file}", f"--merges_file={merges_file}", "--nsp=false",
         f"--bert_config_file={config}", f"--input_file={fast}/*.tfrecord",
         f"--output_dir={out}", "--max_seq_length=64", "--max_predictions_per_seq=10",
         "--train_batch_size=16", "--num_train_steps=30", "--num_warmup_steps=3",
         "--learning_rate=2e-3", "--iterations_per_loop=10", "--save_checkpoints_steps=30",
         "--seed=1", "--max_eval_steps=2"])
    results = read_results(out / "eval_results.txt")
    assert results["global_step"] == 30
    assert results["masked_lm_loss"] < np.log(len(vocab)), results  # below chance


def test_whole_word_masking_is_refused_with_bpe(tmp_path):
    (tmp_path / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(SPECIALS)}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    (tmp_path / "c.txt").write_text("a b\n")
    result = run(["create_pretraining_data.py", f"--input_file={tmp_path / 'c.txt'}",
                  f"--output_file={tmp_path / 'o.tfrecord'}",
                  f"--vocab_file={tmp_path / 'vocab.json'}",
                  f"--merges_file={tmp_path / 'merges.txt'}", "--do_whole_word_mask"],
                 check=False)
    assert result.returncode == 1
    assert "do_whole_word_mask needs WordPiece '##' continuations" in result.stderr
