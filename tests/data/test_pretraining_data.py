import dataclasses
import hashlib
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO, data_path, fixture_path

from bert_tf import file_io
from bert_tf.data import pretraining_data as pd
from bert_tf.data.tokenization import FullTokenizer
from bert_tf.errors import UsageError
from bert_tf.training.input_pipeline import pretraining_dataset

ROOT = REPO


def tokenizer():
    return FullTokenizer(str(fixture_path("minilm_ckpt", "vocab.txt")), True)


def generate(input_files, output_files, seed=12345, dupe_factor=5, max_seq_length=128,
             max_predictions_per_seq=20, do_whole_word_mask=False):
    tok = tokenizer()
    documents, _ = pd.read_documents(input_files, tok)
    options = pd.InstanceOptions(
        max_seq_length=max_seq_length, max_predictions_per_seq=max_predictions_per_seq,
        dupe_factor=dupe_factor, do_whole_word_mask=do_whole_word_mask)
    instances = pd.create_training_instances(documents, list(tok.vocab.keys()), options,
                                             random.Random(seed))
    return instances, pd.write_instances(
        instances, tok, max_seq_length, max_predictions_per_seq, output_files
    )


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_byte_identical_to_the_original_on_the_public_fixture(tmp_path):
    flags = json.loads(fixture_path("pretrain_public", "flags.json").read_text())
    out = tmp_path / "out.tfrecord"
    generate([str(fixture_path("pretrain_public", "sample_text.txt"))], [str(out)],
             seed=flags["random_seed"], dupe_factor=flags["dupe_factor"])
    assert out.read_bytes() == fixture_path(
        "pretrain_public", "sample_text_seed12345.tfrecord").read_bytes()
    assert sha256(out) == flags["sha256"]


def test_script_with_original_flags_is_byte_identical(tmp_path):
    flags = json.loads(fixture_path("pretrain_public", "flags.json").read_text())
    out = tmp_path / "script.tfrecord"
    result = subprocess.run(
        [sys.executable, str(ROOT / "create_pretraining_data.py"),
         f"--input_file={fixture_path('pretrain_public', 'sample_text.txt')}",
         f"--output_file={out}", f"--vocab_file={fixture_path('minilm_ckpt', 'vocab.txt')}",
         "--do_lower_case=True", "--max_seq_length=128", "--max_predictions_per_seq=20",
         "--masked_lm_prob=0.15", "--random_seed=12345", "--dupe_factor=5",
         "--short_seq_prob=0.1"],
        capture_output=True, text=True, check=True,
    )
    assert sha256(out) == flags["sha256"]
    assert f"Wrote 60 instances to {out}" in result.stdout
    assert "mean tokens" in result.stdout
    assert "documents (" in result.stdout and "MB/s" in result.stdout  # the progress lines


@pytest.mark.slow
def test_byte_identical_on_the_big_corpus(tmp_path):
    """The fixture README gives the original's sha256 (26ff7fef...d1ad9) and count."""
    out = tmp_path / "big.tfrecord"
    instances, counts = generate([str(data_path("text", "big.txt"))], [str(out)])
    assert counts == [68707]
    digest = sha256(out)
    assert digest.startswith("26ff7fef") and digest.endswith("d1ad9")


def records(path):
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(str(path))]


@pytest.mark.parametrize("length", [0, 1, 2, 3, 7, 64, 129, 1000])
def test_shuffle_is_the_standard_library_shuffle(length):
    for seed in range(20):
        ours, theirs = list(range(length)), list(range(length))
        rng_ours, rng_theirs = random.Random(seed), random.Random(seed)
        pd.shuffle(ours, rng_ours)
        rng_theirs.shuffle(theirs)
        assert ours == theirs
        assert rng_ours.random() == rng_theirs.random()  # the same draws consumed


def test_records_are_framed_as_tensorflow_writes_them(tmp_path):
    """Our CRC32C framing, byte for byte against tf.io.TFRecordWriter."""
    payloads = [b"", b"x", bytes(range(256)) * 40]
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.write_bytes(b"".join(pd.tfrecord(p) for p in payloads))
    with tf.io.TFRecordWriter(str(theirs)) as writer:
        for payload in payloads:
            writer.write(payload)
    assert ours.read_bytes() == theirs.read_bytes()


def test_the_script_does_not_import_tensorflow(tmp_path):
    """Local files never need TensorFlow, so the script starts in a fraction of a second."""
    out = tmp_path / "out.tfrecord"
    argv = ["create_pretraining_data.py", "--dupe_factor=1", f"--output_file={out}",
            f"--input_file={fixture_path('pretrain_public', 'sample_text.txt')}",
            f"--vocab_file={fixture_path('minilm_ckpt', 'vocab.txt')}"]
    code = (
        f"import runpy, sys\nsys.argv = {argv!r}\n"
        "try:\n    runpy.run_path('create_pretraining_data.py', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('tensorflow' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, check=True)
    assert out.exists()
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_round_robin_over_several_outputs(tmp_path):
    text = str(fixture_path("pretrain_public", "sample_text.txt"))
    single = tmp_path / "one.tfrecord"
    generate([text], [str(single)])
    shards = [str(tmp_path / f"shard{i}.tfrecord") for i in range(3)]
    _, counts = generate([text], shards)
    assert counts == [20, 20, 20]
    merged = [records(shard) for shard in shards]
    interleaved = [merged[i % 3][i // 3] for i in range(60)]
    assert interleaved == records(single)


def test_whole_word_masking_masks_every_piece_of_a_word(tmp_path):
    instances, _ = generate([str(fixture_path("pretrain_public", "sample_text.txt"))],
                            [str(tmp_path / "wwm.tfrecord")], do_whole_word_mask=True)
    for instance in instances:
        masked = set(instance.masked_lm_positions)
        for position in masked:
            # a masked continuation piece implies its word's previous piece is masked too
            label = instance.masked_lm_labels[instance.masked_lm_positions.index(position)]
            if label.startswith("##"):
                assert position - 1 in masked


def test_masking_rates_on_the_corpus_sample(tmp_path):
    instances, _ = generate([str(fixture_path("pretrain_public", "sample_text.txt"))],
                            [str(tmp_path / "x.tfrecord")], dupe_factor=40)
    kept = replaced = masked = 0
    for instance in instances:
        for position, label in zip(instance.masked_lm_positions, instance.masked_lm_labels,
                                   strict=True):
            token = instance.tokens[position]
            masked += token == "[MASK]"
            kept += token == label
            replaced += token not in ("[MASK]", label)
    total = masked + kept + replaced
    assert abs(masked / total - 0.8) < 0.03
    assert abs(kept / total - 0.1) < 0.03 and abs(replaced / total - 0.1) < 0.03
    labels = [i.is_random_next for i in instances]
    assert 0.4 < np.mean(labels) < 0.75  # one-sentence chunks always take a random next


def test_bad_inputs(tmp_path):
    with pytest.raises(UsageError, match=r"nothing/\*.txt' matches no file"):
        file_io.expand_patterns(f"{tmp_path}/nothing/*.txt", sort=False)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"first line\n\ncaf\xe9 au lait\n")
    with pytest.raises(pd.PretrainingDataError, match=r"latin1.txt: line 3 is not valid UTF-8"):
        pd.read_documents([str(bad)], tokenizer())
    documents, skipped = pd.read_documents([str(bad)], tokenizer(), skip_invalid_utf8=True)
    assert skipped == 1 and documents == [[["first", "line"]]]
    with pytest.raises(pd.PretrainingDataError, match="max_predictions_per_seq 5 is smaller"):
        pd.validate_flags(128, 5, 0.15)
    with pytest.raises(pd.PretrainingDataError, match="max_seq_length must be at least 5"):
        pd.validate_flags(4, 20, 0.15)
    with pytest.raises(pd.PretrainingDataError, match="exceeds max_position_embeddings"):
        pd.validate_flags(1024, 200, 0.15, max_position_embeddings=512)


def test_failed_write_leaves_no_output(tmp_path):
    instance = pd.TrainingInstance(["[CLS]", "not-in-vocab", "[SEP]"], [0, 0, 0], [], [], False)
    out = tmp_path / "out.tfrecord"
    with pytest.raises(KeyError):
        pd.write_instances([instance], tokenizer(), 8, 2, [str(out)])
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_fails_before_any_work(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    out = blocker / "out.tfrecord"
    result = subprocess.run(
        [sys.executable, str(ROOT / "create_pretraining_data.py"),
         f"--input_file={fixture_path('pretrain_public', 'sample_text.txt')}",
         f"--output_file={tmp_path / 'ok.tfrecord'},{out}",
         f"--vocab_file={fixture_path('minilm_ckpt', 'vocab.txt')}"],
        capture_output=True, text=True,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"output_file: cannot write {out}" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # nothing half-written


def test_script_reports_empty_input(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    result = subprocess.run(
        [sys.executable, str(ROOT / "create_pretraining_data.py"), f"--input_file={empty}",
         f"--output_file={tmp_path / 'o.tfrecord'}",
         f"--vocab_file={fixture_path('minilm_ckpt', 'vocab.txt')}"],
        capture_output=True, text=True,
    )
    assert result.returncode != 0
    assert "create_pretraining_data.py: input_file:" in result.stderr
    assert "empty.txt hold no text" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o.tfrecord").exists()


def test_reader_parses_the_original_records_in_file_order():
    path = str(fixture_path("pretrain_public", "sample_text_seed12345.tfrecord"))
    dataset = pretraining_dataset(path, batch_size=8, max_seq_length=128,
                                  max_predictions_per_seq=20, is_training=True, shuffle=False)
    batch = next(iter(dataset))
    assert batch["input_ids"].shape == (8, 128) and batch["input_ids"].dtype == tf.int32
    assert batch["masked_lm_weights"].dtype == tf.float32
    assert batch["next_sentence_labels"].shape == (8, 1)
    first = records(path)[:8]
    want = [list(e.features.feature["input_ids"].int64_list.value) for e in first]
    np.testing.assert_array_equal(batch["input_ids"].numpy(), want)
    shuffled = pretraining_dataset(path, 8, 128, 20, is_training=True, seed=1)
    assert next(iter(shuffled))["input_ids"].shape == (8, 128)


def test_full_and_doc_sentence_packing(tmp_path):
    """RoBERTa's packings: sequences filled with whole sentences up to max_seq_length;
    FULL-SENTENCES crosses documents with a [SEP], DOC-SENTENCES never does."""
    tok = tokenizer()
    documents, _ = pd.read_documents([str(fixture_path("pretrain_public", "sample_text.txt"))],
                                     tok)
    sentences = sum(len(d) for d in documents)
    options = pd.InstanceOptions(max_seq_length=64, max_predictions_per_seq=10, dupe_factor=1)
    full = pd.create_packed_instances(
        [list(d) for d in documents], list(tok.vocab),
        dataclasses.replace(options, packing="full_sentences"), random.Random(3))
    doc = pd.create_packed_instances(
        [list(d) for d in documents], list(tok.vocab),
        dataclasses.replace(options, packing="doc_sentences"), random.Random(3))
    for instances in (full, doc):
        assert all(i.tokens[0] == "[CLS]" and i.tokens[-1] == "[SEP]" for i in instances)
        assert all(len(i.tokens) <= 64 and set(i.segment_ids) == {0} for i in instances)
        assert all(not i.is_random_next and 1 <= len(i.masked_lm_positions) <= 10
                   for i in instances)
    inner_seps = [i.tokens[1:-1].count("[SEP]") for i in full]
    assert sum(inner_seps) > 0 and all(i.tokens[1:-1].count("[SEP]") == 0 for i in doc)
    # Packing fills sequences: fewer sequences than sentences, most near full length.
    assert len(full) < sentences
    assert np.mean([len(i.tokens) for i in full]) > 45
    assert len(doc) >= len(full)


def test_sentence_order_prediction_swaps_segments_of_one_document(tmp_path):
    """SOP (ALBERT): label 1 means the same document's segments in swapped order, label 0
    the original order; half and half; B from another document only for one-sentence
    chunks (as ALBERT does), rare in documents of 20 sentences."""
    import re

    paragraphs = data_path("text", "big.txt").read_text(encoding="utf-8").splitlines()[:3000]
    sentences = [s for p in paragraphs for s in re.split(r"(?<=[.!?]) +", p) if s.strip()]
    documents_text = ["\n".join(sentences[i:i + 20]) for i in range(0, len(sentences), 20)]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(documents_text) + "\n", encoding="utf-8")
    tok = tokenizer()
    documents, _ = pd.read_documents([str(corpus)], tok)
    texts = [" ".join(" ".join(s) for s in d) for d in documents]
    instances = pd.create_training_instances(
        [list(d) for d in documents], list(tok.vocab),
        pd.InstanceOptions(dupe_factor=1, sentence_order=True, mask=False), random.Random(4))
    swapped = sum(i.is_random_next for i in instances)
    assert 0.45 < swapped / len(instances) < 0.55
    swapped_in_document = 0
    for instance in instances:
        sep = instance.tokens.index("[SEP]")
        a = " ".join(instance.tokens[1:sep][:4])
        b = " ".join(instance.tokens[sep + 1:-1][:4])
        same = [t for t in texts if a in t and b in t]
        if not instance.is_random_next:  # in order, from one document
            assert any(t.find(b, t.index(a)) != -1 for t in same), " ".join(instance.tokens)
        elif any(t.find(a, t.index(b)) != -1 for t in same):
            swapped_in_document += 1
    # The other label-1 instances come from one-sentence chunks (a document's last one).
    assert swapped_in_document / swapped > 0.75


def test_ngram_masking_spans_follow_albert_distribution():
    """--ngram_masking=3 with whole words: masked positions come in runs of whole words;
    spans of 1, 2 and 3 words appear with frequencies near 6/11, 3/11, 2/11 (P(n) ~ 1/n),
    and the budget per sequence is kept."""
    tok = tokenizer()
    lines = data_path("text", "big.txt").read_text(encoding="utf-8").splitlines()[:3000]
    rng = random.Random(11)
    spans = {1: 0, 2: 0, 3: 0}
    for line in lines:
        words = line.split()
        if len(words) < 20:
            continue
        tokens = ["[CLS]", *words[:60], "[SEP]"]  # whole words as single tokens
        out, positions, labels = pd.create_masked_lm_predictions(
            tokens, 0.15, 20, list(tok.vocab), rng, do_whole_word_mask=True, max_ngram=3)
        assert 1 <= len(positions) <= min(20, max(1, round(len(tokens) * 0.15)))
        assert [tokens[p] for p in positions] == labels
        run = 1
        for a, b in zip(positions, positions[1:] + [None], strict=True):
            if b == a + 1:
                run += 1
            else:
                spans[min(run, 3)] += 1
                run = 1
    total = sum(spans.values())
    assert total > 500
    # Adjacent spans merge into longer runs, so 1-spans are a lower bound's worth.
    assert spans[1] / total == pytest.approx(6 / 11, abs=0.07)  # 0.58 measured; n=1: 0.87
    assert spans[2] / total > 0.18 and spans[3] / total > 0.12  # n=1 gives 0.12, 0.02
    # max_ngram=1 is the original procedure: the fixture bytes test covers it.


def test_without_cyclic_gc_restores_the_collector():
    import gc

    assert gc.isenabled()
    with pytest.raises(KeyError), pd.without_cyclic_gc():
        assert not gc.isenabled()
        raise KeyError("any failure")
    assert gc.isenabled()
