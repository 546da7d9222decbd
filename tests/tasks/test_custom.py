"""run_classifier.py --task_name=custom: CSV, pair TSV and multi-label files (GoEmotions as
shipped) with no code; the files it writes; bad input named by file, line and column."""

import dataclasses
import json
import re

import numpy as np
import pytest
from conftest import fixture_path

from bert_tf.data.tokenization import FullTokenizer
from bert_tf.tasks import custom, glue
from bert_tf.tasks.glue import GlueDataError

BAD_FILES = {
    "missing column": ("train.csv", "sentence,label\nhi,a\n", {},
                       "train.csv:2: no column 'text' (found: sentence, label); --text_a_column"),
    "unknown label": ("train.csv", "text,label\nhi,a\nho,c\n", {"labels": ("a", "b")},
                      "train.csv:3: label 'c' in column 'label' is not one of the task's labels"),
    "empty text": ("train.tsv", "text\tlabel\nhi\ta\n \tb\n", {},
                   "train.tsv:3: column 'text' is empty"),
    "several labels": ("train.jsonl", '{"text": "hi", "label": ["a", "b"]}\n', {},
                       "train.jsonl:1: column 'label' holds several labels"),
    "separator in a label": ("train.csv", "text,label\nhi,a|b\n", {},
                             "train.csv:2: column 'label' holds several labels ('a|b') in a "
                             "single-label task; pass --multi_label"),
    "malformed JSON": ("train.jsonl", '{"text": "a", "label": "x"}\n{"text": "b",\n', {},
                       "train.jsonl:2: not valid JSON"),
    "unbalanced quotes": ("train.csv", 'text,label\n"hi,a\nho,b\n', {},
                          "train.csv:2: not valid CSV"),
    "short row": ("train.csv", "text,label\nhi\n", {}, "train.csv:2: 1 fields, but the header"),
    "not UTF-8": ("train.csv", b"text,label\ncaf\xe9,a\n", {}, "train.csv:2: not valid UTF-8"),
    "regression": ("train.csv", "text,label\nhi,high\n", {"labels": None},
                   "train.csv:2: column 'label' holds 'high', expected a number"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_name_file_line_and_column(tmp_path, case):
    name, content, fields, message = BAD_FILES[case]
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    task = custom.CustomTask(**{"labels": (), **fields})
    with pytest.raises(GlueDataError, match=re.escape(message)):
        custom.read_examples(task, str(tmp_path), "train")




def test_long_text_windows_cover_the_text_and_average_their_logits(tmp_path):
    tokenizer = FullTokenizer(str(fixture_path("minilm_ckpt", "vocab.txt")), True)
    task = custom.CustomTask(labels=("a", "b"))
    short = glue.InputExample("0", "a short text", None, "b")
    long = glue.InputExample("1", " ".join(f"word{i}" for i in range(40)), None, "a")
    features, owners = custom.window_features([short, long], task, 16, tokenizer, 8)
    # A text that fits is one window, the truncating path's own features.
    plain = glue.convert_example(short, task, 16, tokenizer)
    assert owners[0] == 0 and owners.count(0) == 1 and features[0] == plain
    pieces = tokenizer.tokenize(long.text_a)
    windows = [f.input_ids[1:1 + sum(f.input_mask) - 2] for f in features[1:]]
    assert windows[0] == tokenizer.convert_tokens_to_ids(pieces[:14])
    assert windows[-1][-1] == tokenizer.convert_tokens_to_ids(pieces)[-1]  # reaches the end
    assert all(f.label_id == 0 for f in features[1:]) and len(windows) > 2
    # Evaluation and prediction average each example's window logits.
    logits = np.array([[0.0, 2.0], [1.0, 0.0], [3.0, 0.0], [-1.0, 1.0], [9.0, 9.0]])
    outputs = {"logits": logits, "label_ids": np.array([1, 0, 0, 0, 0])}
    averaged = custom.average_windows(task, outputs, [0, 1, 1, 1], 2)  # last: padding
    mean = np.array([[0.0, 2.0], [1.0, 1 / 3]])
    expected = np.exp(mean) / np.exp(mean).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(averaged["probabilities"], expected, rtol=1e-12)
    np.testing.assert_allclose(averaged["per_example_loss"],
                               -np.log(expected[[0, 1], [1, 0]]), rtol=1e-12)
    assert averaged["label_ids"].tolist() == [1, 0]
    multi = dataclasses.replace(task, multi_label=True)
    outputs = {"logits": logits[:2], "label_ids": np.array([[1.0, 0.0], [1.0, 0.0]])}
    averaged = custom.average_windows(multi, outputs, [0, 0], 1)
    np.testing.assert_allclose(averaged["probabilities"], [1 / (1 + np.exp(-np.array(
        [0.5, 1.0])))], rtol=1e-12)


def test_a_pair_tsv_and_jsonl_read_as_the_flags_say(tmp_path):
    (tmp_path / "train.tsv").write_text("first\tsecond\tanswer\nA cat.\tA feline.\tsame\n"
                                        "A dog.\tThe sea.\tdifferent\n")
    task = custom.CustomTask(labels=(), text_a_column="first", text_b_column="second",
                             label_column="answer")
    examples = custom.read_examples(task, str(tmp_path), "train")
    assert [(e.text_a, e.text_b, e.label) for e in examples] == [
        ("A cat.", "A feline.", "same"), ("A dog.", "The sea.", "different")]
    assert custom.labels_of(examples) == ("different", "same")
    (tmp_path / "dev.jsonl").write_text(
        json.dumps({"text": "joy and fear", "label": ["joy", "fear"]}) + "\n\n"
        + json.dumps({"text": "nothing", "label": []}) + "\n")
    task = custom.CustomTask(labels=("fear", "joy", "sad"), multi_label=True)
    examples = custom.read_examples(task, str(tmp_path), "dev")
    assert [e.label for e in examples] == [["fear", "joy"], []]
    assert [task.label_id(e.label) for e in examples] == [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
