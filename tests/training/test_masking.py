"""Dynamic masking: statistics of the masks drawn in tf.data, whole words, freshness per
epoch and reproducibility per seed, on records written with --masking=dynamic."""

import random

import numpy as np
import pytest
from conftest import fixture_path

from bert_tf.data import pretraining_data as pd
from bert_tf.data.tokenization import FullTokenizer
from bert_tf.training.input_pipeline import pretraining_dataset
from bert_tf.training.masking import DynamicMasking


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """The original's sample text, unmasked instances (dupe 3), seq 128."""
    tokenizer = FullTokenizer(str(fixture_path("minilm_ckpt", "vocab.txt")), True)
    documents, _ = pd.read_documents([str(fixture_path("pretrain_public", "sample_text.txt"))],
                                     tokenizer)
    instances = pd.create_training_instances(
        documents, list(tokenizer.vocab), pd.InstanceOptions(dupe_factor=3, mask=False),
        random.Random(1))
    assert all(not i.masked_lm_positions for i in instances)
    path = tmp_path_factory.mktemp("dynamic") / "dynamic.tfrecord"
    pd.write_instances(instances, tokenizer, 128, 20, [str(path)])
    return str(path), tokenizer, len(instances)


def batches(path, masking, count, batch_size=16):
    dataset = pretraining_dataset(path, batch_size, 128, 20, is_training=True, shuffle=False,
                                  masking=masking)
    return [{k: v.numpy() for k, v in b.items()} for b in dataset.take(count)]


def test_rates_and_the_80_10_10_split(records):
    path, tokenizer, count = records
    masking = DynamicMasking.from_vocab(str(fixture_path("minilm_ckpt", "vocab.txt")), seed=5)
    unmasked = batches(path, None, 20)
    masked = batches(path, masking, 20)
    mask_id = tokenizer.vocab["[MASK]"]
    specials = {tokenizer.vocab[t] for t in ("[CLS]", "[SEP]")}
    chosen = kept = as_mask = 0
    for plain, drawn in zip(unmasked, masked, strict=True):
        for row in range(len(plain["input_ids"])):
            weights = drawn["masked_lm_weights"][row]
            n = int(weights.sum())
            candidates = int(plain["input_mask"][row].sum()) - 3  # [CLS] a [SEP] b [SEP]
            assert n == min(20, max(1, round(candidates * 0.15)))
            positions = drawn["masked_lm_positions"][row][:n]
            assert list(positions) == sorted(positions) and len(set(positions)) == n
            original = plain["input_ids"][row]
            assert not set(original[positions]) & specials
            np.testing.assert_array_equal(drawn["masked_lm_ids"][row][:n], original[positions])
            now = drawn["input_ids"][row][positions]
            chosen += n
            as_mask += int((now == mask_id).sum())
            kept += int((now == original[positions]).sum())
            untouched = np.setdiff1d(np.arange(128), positions)
            np.testing.assert_array_equal(drawn["input_ids"][row][untouched], original[untouched])
    assert chosen > 4000
    assert as_mask / chosen == pytest.approx(0.8, abs=0.03)
    assert kept / chosen == pytest.approx(0.1, abs=0.02)  # random replacements rarely hit it
    assert (chosen - as_mask - kept) / chosen == pytest.approx(0.1, abs=0.02)


def test_fresh_masks_per_epoch_and_the_same_for_the_same_seed(records):
    path, _, count = records
    vocab = str(fixture_path("minilm_ckpt", "vocab.txt"))
    first = batches(path, DynamicMasking.from_vocab(vocab, seed=5), count // 16 + 1)
    again = batches(path, DynamicMasking.from_vocab(vocab, seed=5), 1)
    other = batches(path, DynamicMasking.from_vocab(vocab, seed=6), 1)
    np.testing.assert_array_equal(first[0]["masked_lm_positions"], again[0]["masked_lm_positions"])
    assert not np.array_equal(first[0]["masked_lm_positions"], other[0]["masked_lm_positions"])
    # Record 0 comes back at position `count` of the stream, in the next epoch: same
    # sequence, another mask.
    batch, row = divmod(count, 16)
    plain = batches(path, None, batch + 1)
    np.testing.assert_array_equal(plain[0]["input_ids"][0], plain[batch]["input_ids"][row])
    assert not np.array_equal(first[0]["masked_lm_positions"][0],
                              first[batch]["masked_lm_positions"][row])


def test_whole_word_masking_takes_every_piece(records):
    path, tokenizer, _ = records
    masking = DynamicMasking.from_vocab(str(fixture_path("minilm_ckpt", "vocab.txt")),
                                        whole_word=True, seed=2)
    inverse = {i: t for t, i in tokenizer.vocab.items()}
    words_with_pieces = 0
    for plain, drawn in zip(batches(path, None, 10), batches(path, masking, 10), strict=True):
        for row in range(16):
            n = int(drawn["masked_lm_weights"][row].sum())
            assert 1 <= n <= 20
            chosen = set(drawn["masked_lm_positions"][row][:n])
            tokens = [inverse[int(i)] for i in plain["input_ids"][row]]
            for position in chosen:
                # the word's first piece and every continuation are chosen too
                start = position
                while tokens[start].startswith("##"):
                    start -= 1
                    assert start in chosen
                end = position + 1
                while end < 128 and tokens[end].startswith("##"):
                    assert end in chosen
                    end += 1
                    words_with_pieces += 1
    assert words_with_pieces > 10


def test_scripts_pretrain_roberta_style(tmp_path):
    """Unmasked FULL-SENTENCES records, dynamic whole-word masking, no NSP."""
    import subprocess
    import sys

    from conftest import REPO as repo
    from conftest import event_scalars
    vocab = fixture_path("tiny_ckpt", "vocab.txt")
    records = tmp_path / "dynamic.tfrecord"
    subprocess.run([sys.executable, str(repo / "create_pretraining_data.py"),
                    f"--input_file={fixture_path('pretrain_public', 'sample_text.txt')}",
                    f"--output_file={records}", f"--vocab_file={vocab}", "--masking=dynamic",
                    "--packing=full_sentences",
                    "--max_seq_length=64", "--max_predictions_per_seq=10", "--dupe_factor=2"],
                   check=True, capture_output=True)
    out = tmp_path / "out"
    subprocess.run([sys.executable, str(repo / "run_pretraining.py"), "--do_train", "--do_eval",
                    "--dynamic_masking", f"--vocab_file={vocab}", "--do_whole_word_mask",
                    "--nsp=false",
                    f"--bert_config_file={fixture_path('tiny_ckpt', 'bert_config.json')}",
                    f"--input_file={records}", f"--output_dir={out}", "--max_seq_length=64",
                    "--max_predictions_per_seq=10", "--train_batch_size=16",
                    "--num_train_steps=40", "--num_warmup_steps=4", "--learning_rate=2e-3",
                    "--iterations_per_loop=10", "--save_checkpoints_steps=40", "--seed=1",
                    "--max_eval_steps=2"],
                   check=True, capture_output=True)
    losses = event_scalars(out)
    assert len(losses) == 4 and losses[-1] < losses[0] - 1.0, losses
    results = (out / "eval_results.txt").read_text()
    assert "masked_lm_accuracy" in results and "next_sentence" not in results


def test_dynamic_ngram_masking_spans(records):
    """max_ngram=3 in graph: runs of 1/2/3 masked words near 6/11, 3/11, 2/11 (single-token
    masking gives mostly isolated positions), budget and specials respected."""
    path, tokenizer, _ = records
    vocab = str(fixture_path("minilm_ckpt", "vocab.txt"))
    specials = {tokenizer.vocab[t] for t in ("[CLS]", "[SEP]")}

    def runs(masking):
        counts = {1: 0, 2: 0, 3: 0}
        for plain, drawn in zip(batches(path, None, 20), batches(path, masking, 20), strict=True):
            for row in range(16):
                n = int(drawn["masked_lm_weights"][row].sum())
                candidates = int(plain["input_mask"][row].sum()) - 3
                assert 1 <= n <= min(20, max(1, round(candidates * 0.15)))
                positions = list(drawn["masked_lm_positions"][row][:n])
                assert not set(plain["input_ids"][row][positions]) & specials
                run = 1
                for a, b in zip(positions, positions[1:] + [None], strict=True):
                    if b == a + 1:
                        run += 1
                    else:
                        counts[min(run, 3)] += 1
                        run = 1
        total = sum(counts.values())
        return {k: v / total for k, v in counts.items()}

    ngram = runs(DynamicMasking.from_vocab(vocab, seed=5, max_ngram=3))
    single = runs(DynamicMasking.from_vocab(vocab, seed=5))
    assert ngram[1] == pytest.approx(6 / 11, abs=0.08), ngram
    assert ngram[2] > 0.18 and ngram[3] > 0.12, ngram
    assert single[1] > 0.8, single
