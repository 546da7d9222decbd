"""Feature records read back: truncated files, other lengths and ids past the vocabulary
are named, before or during training."""

import json
import random
import shutil

import pytest
import tensorflow as tf
from conftest import TINY_CONFIG, fixture_path

from bert_tf.data import pretraining_data as pd
from bert_tf.data.tokenization import FullTokenizer
from bert_tf.training import loop
from bert_tf.training.input_pipeline import (
    RecordFormatError,
    find_unreadable_record_file,
    pretraining_dataset,
)

VOCAB = str(fixture_path("minilm_ckpt", "vocab.txt"))


SAMPLE = str(fixture_path("pretrain_public", "sample_text.txt"))


def test_records_truncated_or_of_other_lengths_are_named(tmp_path):
    good = fixture_path("pretrain_public", "sample_text_seed12345.tfrecord")
    truncated = tmp_path / "b.tfrecord"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2 + 7])
    found = find_unreadable_record_file([str(good), str(truncated)])
    assert found.startswith(f"{truncated}: truncated record at "), found
    assert find_unreadable_record_file([str(good)]) is None
    # A later file made with another max_seq_length fails before any step, named.
    shutil.copy(good, tmp_path / "a.tfrecord")
    tokenizer = FullTokenizer(VOCAB)
    documents, _ = pd.read_documents([SAMPLE], tokenizer)
    options = pd.InstanceOptions(max_seq_length=64, max_predictions_per_seq=10, dupe_factor=1)
    instances = pd.make_instances(documents, list(tokenizer.vocab), options, random.Random(1))
    pd.write_instances(instances, tokenizer, 64, 10, [str(tmp_path / "c.tfrecord")])
    truncated.unlink()
    with pytest.raises(RecordFormatError, match=r"c.tfrecord: record 0: feature 'input_ids' "
                                                r"has 64 values but 128"):
        pretraining_dataset(str(tmp_path / "*.tfrecord"), 8, 128, 20, is_training=True)


def test_records_of_a_larger_vocabulary_name_vocab_size_not_a_gather_index(tmp_path):
    from bert_tf.jobs.run_pretraining import PretrainingOptions, run

    config = tmp_path / "bert_config.json"
    config.write_text(json.dumps({**TINY_CONFIG, "max_position_embeddings": 128}))
    options = PretrainingOptions(
        bert_config_file=str(config), input_file=str(fixture_path("optimizer", "first8.tfrecord")),
        output_dir=str(tmp_path / "out"), do_train=True, train_batch_size=8, num_train_steps=1,
        num_warmup_steps=0, save_checkpoints_steps=1, iterations_per_loop=1)
    with pytest.raises(loop.InputDataError, match=r"an input id is out of range .* larger "
                                                      r"vocabulary than bert_config's vocab_size"):
        run(options, tf.distribute.get_strategy())
    assert not list((tmp_path / "out").glob("model.ckpt-*"))


def test_a_truncated_record_file_met_in_training_is_named(tmp_path):
    from bert_tf.jobs.run_pretraining import PretrainingOptions, run

    tiny = fixture_path("tiny_ckpt")
    good = fixture_path("optimizer", "first8.tfrecord")
    shutil.copy(good, tmp_path / "a.tfrecord")
    (tmp_path / "b.tfrecord").write_bytes(good.read_bytes()[: good.stat().st_size // 2 + 7])
    options = PretrainingOptions(
        bert_config_file=str(tiny / "bert_config.json"),
        input_file=str(tmp_path / "*.tfrecord"), output_dir=str(tmp_path / "out"),
        do_train=True, train_batch_size=8, num_train_steps=4, num_warmup_steps=0,
        save_checkpoints_steps=100, iterations_per_loop=4, seed=0)  # (not `deterministic`:
    # that turns op determinism on for the rest of this process, and a TF1-graph test here
    # then fails; 4 steps of 8 read every record of both files whatever the order)
    with pytest.raises(RecordFormatError, match=r"input_file: .*b.tfrecord: truncated record "
                                                r"at \d+; the file is truncated or corrupt"):
        run(options, tf.distribute.get_strategy())
