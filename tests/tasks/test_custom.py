"""run_classifier.py --task_name=custom: CSV, pair TSV and multi-label files (GoEmotions as
shipped) with no code; the files it writes; bad input named by file, line and column."""

import csv
import dataclasses
import json
import re
import sys

import numpy as np
import pytest
from conftest import REPO, data_path, fixture_path, read_results, run_script

from bert_tf.data.tokenization import FullTokenizer
from bert_tf.tasks import custom, glue
from bert_tf.tasks.glue import GlueDataError

sys.path.insert(0, str(REPO / "bench"))
import bench_long_text  # noqa: E402


def run_custom(tmp_path, data_dir, *flags: str, check: bool = True):
    tiny = fixture_path("tiny_ckpt")
    return run_script([
        "run_classifier.py", "--task_name=custom", f"--data_dir={data_dir}",
        f"--bert_config_file={tiny / 'bert_config.json'}", f"--vocab_file={tiny / 'vocab.txt'}",
        f"--init_checkpoint={tiny / 'bert_model.ckpt'}", f"--output_dir={tmp_path / 'out'}",
        "--max_seq_length=32", "--train_batch_size=16", "--learning_rate=1e-3",
        "--num_train_epochs=1", "--eval_batch_size=16", "--predict_batch_size=16", *flags,
    ], check=check)


def predictions(path) -> list[str]:
    lines = path.read_text().split("\n")
    assert lines[0] == "index\tprediction" and lines[-1] == ""
    return [line.split("\t", 1)[1] for line in lines[1:-1]]


def sst2_csv(data_dir, split: str, count: int, labeled: bool = True) -> list[dict]:
    """SST-2 dev sentences as a CSV with quoting (commas, quotes, a line break)."""
    examples = glue.read_examples(glue.get_task("sst-2"), str(data_path("glue", "SST-2")),
                                  "dev")[:count]
    rows = [{"id": i, "text": e.text_a, "label": ["negative", "positive"][int(e.label)]}
            for i, e in enumerate(examples)]
    rows[0]["text"] = 'He said "fine, thanks",\nthen left.'
    with open(data_dir / f"{split}.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["id", "text", "label"] if labeled else ["id", "text"])
        writer.writeheader()
        writer.writerows(rows if labeled else [{k: r[k] for k in ("id", "text")} for r in rows])
    return rows


def test_a_csv_trains_evaluates_and_predicts_with_label_names(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    sst2_csv(data, "train", 96)
    dev = sst2_csv(data, "dev", 40)
    sst2_csv(data, "test", 24, labeled=False)  # the test file may lack the label
    run_custom(tmp_path, data, "--do_train", "--do_eval", "--do_predict")
    out = tmp_path / "out"
    assert (out / "label_list.txt").read_text() == "negative\npositive\n"
    results = read_results(out / "eval_results.txt")
    assert {"eval_accuracy", "macro_f1", "f1_negative", "f1_positive", "eval_loss",
            "global_step"} <= set(results)
    dev_predicted = predictions(out / "dev_predictions.tsv")
    assert len(dev_predicted) == 40 and set(dev_predicted) <= {"negative", "positive"}
    accuracy = np.mean([p == r["label"] for p, r in zip(dev_predicted, dev, strict=True)])
    assert results["eval_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    probabilities = np.loadtxt(out / "test_results.tsv", ndmin=2)
    assert probabilities.shape == (24, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    test_predicted = predictions(out / "test_predictions.tsv")
    assert test_predicted == [["negative", "positive"][i] for i in probabilities.argmax(1)]
    # Evaluation alone reads the labels back from label_list.txt: the same numbers.
    (out / "eval_results.txt").unlink()
    run_custom(tmp_path, data, "--do_eval")
    assert read_results(out / "eval_results.txt") == results


@pytest.mark.slow
def test_goemotions_as_shipped_is_a_multi_label_task(tmp_path):
    """GoEmotions' TSV (no header; text, comma-separated label ids, id) with flags only:
    a sigmoid per label, micro/macro F1, subset accuracy, predictions joined by ","."""
    data = tmp_path / "data"
    data.mkdir()
    lines = data_path("goemotions", "dev.tsv").read_text(encoding="utf-8").splitlines()
    (data / "train.tsv").write_text("\n".join(lines[:256]) + "\n", encoding="utf-8")
    (data / "dev.tsv").write_text("\n".join(lines[256:320]) + "\n", encoding="utf-8")
    (data / "test.tsv").write_text("\n".join(lines[320:352]) + "\n", encoding="utf-8")
    labels = ",".join(str(i) for i in range(28))
    run_custom(tmp_path, data, "--do_train", "--do_eval", "--do_predict", "--multi_label",
               "--no_header", "--text_a_column=0", "--label_column=1", "--label_separator=,",
               f"--labels={labels}", "--threshold=0.3", "--num_train_epochs=2")
    out = tmp_path / "out"
    results = read_results(out / "eval_results.txt")
    assert {"micro_f1", "macro_f1", "subset_accuracy", "f1_0", "f1_27"} <= set(results)
    probabilities = np.loadtxt(out / "test_results.tsv", ndmin=2)
    assert probabilities.shape == (32, 28)
    assert not np.allclose(probabilities.sum(axis=1), 1, atol=1e-3)  # sigmoids, no softmax
    expected = [",".join(str(i) for i in np.flatnonzero(row >= 0.3)) for row in probabilities]
    assert predictions(out / "test_predictions.tsv") == expected
    # The metrics recomputed from the dev predictions written.
    truth = [set(line.split("\t")[1].split(",")) for line in lines[256:320]]
    dev_predicted = [set(p.split(",")) - {""} for p in predictions(out / "dev_predictions.tsv")]
    exact = np.mean([t == p for t, p in zip(truth, dev_predicted, strict=True)])
    assert results["subset_accuracy"] == pytest.approx(exact, abs=1e-6)


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


def test_bad_input_through_the_script_is_one_line(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text('{"text": "a", "label": "x"}\n{"text": "b"}\n')
    result = run_custom(tmp_path, data, "--do_train", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith(
        "train.jsonl:2: no column 'label' (found: text); --label_column names it")
    (data / "train.csv").write_text("text,label\nhi,a\n")
    result = run_custom(tmp_path, data, "--do_train", check=False)
    assert "expected one train file" in result.stderr.strip().splitlines()[-1]


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


def test_long_documents_train_and_predict_through_the_script(tmp_path):
    """CoNLL-2003 documents (hundreds of words) labelled with the entity types they
    mention: a multi-label long-text task; windows cover every word."""
    data = tmp_path / "data"
    data.mkdir()
    documents = bench_long_text.conll_documents(data_path("conll2003", "train.txt"), 24)
    assert min(len(text.split()) for text, _ in documents) > 30  # several windows of 32
    for split, part in (("train", documents[:16]), ("dev", documents[16:20]),
                        ("test", documents[20:])):
        bench_long_text.write_jsonl(data / f"{split}.jsonl", part)
    result = run_custom(tmp_path, data, "--do_train", "--do_eval", "--do_predict",
                        "--multi_label", "--long_text=windows", "--doc_stride=16",
                        "--labels=LOC,MISC,ORG,PER")
    assert "examples in" in result.stderr and "windows" in result.stderr
    out = tmp_path / "out"
    assert len(predictions(out / "dev_predictions.tsv")) == 4
    assert np.loadtxt(out / "test_results.tsv", ndmin=2).shape == (4, 4)
    assert {"micro_f1", "macro_f1", "subset_accuracy"} <= set(read_results(
        out / "eval_results.txt"))
