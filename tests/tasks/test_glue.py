"""GLUE reading, features, metrics and run_classifier.py against the original's MRPC run."""



import numpy as np
import pytest
from conftest import data_path, fixture_path

from bert_tf.data.tokenization import FullTokenizer
from bert_tf.tasks import glue


@pytest.mark.parametrize(
    "task_name, split, count, first",
    [
        ("MRPC", "train", 3667, "Amrozi accused his brother"),  # header (with BOM) skipped
        ("MRPC", "test", 1725, "PCCW 's chief operating officer"),
        ("CoLA", "train", 8551, "Our friends won't buy this analysis"),  # no header
        ("CoLA", "test", 1063, "Bill whistled past the house."),  # header
        ("SST-2", "dev", 872, "it 's a charming and often affecting journey ."),
        ("STS-B", "dev", 1500, "A man with a hard hat is dancing."),
        ("RTE", "dev", 277, "Dana Reeve, the widow of the actor Christopher Reeve"),
        ("QNLI", "dev", 5463, "What came into force after the new constitution was herald?"),
        ("WNLI", "train", 635, "I stuck a pin through a carrot."),
    ],
)
def test_reads_the_real_glue_files(task_name, split, count, first):
    task = glue.get_task(task_name)
    examples = glue.read_examples(task, str(data_path("glue", task_name)), split)
    assert len(examples) == count
    assert examples[0].text_a.startswith(first)
    if split != "test":
        assert all(
            isinstance(e.label, float) if task.is_regression else e.label in task.labels
            for e in examples
        )
    else:
        assert all(e.label is None for e in examples)


def test_mrpc_pairs_and_features_match_the_original_layout():
    task = glue.get_task("mrpc")
    example = glue.read_examples(task, str(data_path("glue", "MRPC")), "dev")[0]
    assert example.label == "1"
    assert example.text_b.startswith('" The foodservice pie business does')
    tokenizer = FullTokenizer(str(fixture_path("minilm_ckpt", "vocab.txt")), True)
    features = glue.convert_example(example, task, 24, tokenizer)
    tokens_a = tokenizer.tokenize(example.text_a)
    tokens_b = tokenizer.tokenize(example.text_b)
    # 24 - 3 slots, longest-first: both sides cut to 11 / 10 word pieces.
    kept_a, kept_b = (11, 10) if len(tokens_a) >= len(tokens_b) else (10, 11)
    expected = ["[CLS]", *tokens_a[:kept_a], "[SEP]", *tokens_b[:kept_b], "[SEP]"]
    assert features.input_ids == tokenizer.convert_tokens_to_ids(expected)
    assert features.segment_ids == [0] * (kept_a + 2) + [1] * (kept_b + 1)
    assert features.input_mask == [1] * 24 and features.label_id == 1
    single = glue.convert_example(glue.InputExample("x", "a b", None, "0"),
                                  glue.get_task("cola"), 6, tokenizer)
    assert single.input_mask == [1, 1, 1, 1, 0, 0] and single.segment_ids == [0] * 6


def test_bad_task_files_name_file_line_and_expectation(tmp_path):
    task = glue.get_task("rte")
    with pytest.raises(glue.GlueDataError, match="known tasks: cola, mnli, mrpc"):
        glue.get_task("squad")
    with pytest.raises(glue.GlueDataError, match="no such file"):
        glue.read_examples(task, str(tmp_path), "train")
    (tmp_path / "train.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\tonly two\n")
    with pytest.raises(glue.GlueDataError, match=r"train.tsv:2: expected at least 4 .* found 2"):
        glue.read_examples(task, str(tmp_path), "train")
    (tmp_path / "train.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n")
    with pytest.raises(glue.GlueDataError, match=r"train.tsv:2: label 'maybe' is not one of"):
        glue.read_examples(task, str(tmp_path), "train")
    (tmp_path / "train.tsv").write_text("index\tsentence1\tsentence2\tlabel\n")
    with pytest.raises(glue.GlueDataError, match="no examples in the train split"):
        glue.read_examples(task, str(tmp_path), "train")
    (tmp_path / "train.tsv").write_bytes(b"index\ts1\ts2\tlabel\n0\t\xff\tb\tentailment\n")
    with pytest.raises(glue.GlueDataError, match=r"train.tsv:2: not valid UTF-8"):
        glue.read_examples(task, str(tmp_path), "train")


def test_metrics_against_hand_computed_values():
    outputs = {
        "probabilities": np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.5, 0.5]]),
        "label_ids": np.array([1, 1, 0, 0, 0]),
        "per_example_loss": np.array([1.0, 2.0, 3.0, 4.0, 99.0]),
        "is_real_example": np.array([1, 1, 1, 1, 0]),  # the last is padding
    }
    mrpc = glue.compute_metrics(glue.get_task("mrpc"), outputs, batch_size=2)
    # Predictions 1,0,1,0 vs labels 1,1,0,0: tp 1, fp 1, fn 1, tn 1.
    assert mrpc["eval_accuracy"] == 0.5 and mrpc["f1"] == 0.5
    assert mrpc["eval_loss"] == 2.5 and mrpc["loss"] == pytest.approx(2.5)
    cola = glue.compute_metrics(glue.get_task("cola"), outputs, batch_size=2)
    assert cola["mcc"] == 0.0
    outputs["label_ids"] = np.array([1, 0, 1, 0, 0])
    assert glue.compute_metrics(glue.get_task("cola"), outputs, 2)["mcc"] == 1.0
    regression = {
        "predictions": np.array([1.0, 2.0, 3.0, 5.0]),
        "label_ids": np.array([1.0, 3.0, 2.0, 4.0]),
        "per_example_loss": np.zeros(4), "is_real_example": np.ones(4),
    }
    stsb = glue.compute_metrics(glue.get_task("sts-b"), regression, 4)
    assert stsb["spearman"] == pytest.approx(0.8)  # 1 - 6*2/(4*15)
    assert stsb["pearson"] == pytest.approx(np.corrcoef([1, 2, 3, 5], [1, 3, 2, 4])[0, 1])














def test_mnli_and_xnli_file_formats(tmp_path):
    """The original's MNLI (text in columns 8 and 9, label last; matched and mismatched dev)
    and XNLI (MultiNLI's translated train with 'contradictory'; dev filtered by language)."""
    mnli_row = ["0", "1", "2", "g", "p1", "p2", "p3", "p4", "A man eats.", "Someone eats.",
                "x", "entailment"]
    header = "\t".join(f"c{i}" for i in range(12)) + "\n"
    for name in ("train.tsv", "dev_matched.tsv", "dev_mismatched.tsv"):
        (tmp_path / name).write_text(header + "\t".join(mnli_row) + "\n")
    mnli = glue.get_task("MNLI")
    matched = glue.read_examples(mnli, str(tmp_path), "dev")
    mismatched = glue.read_examples(mnli, str(tmp_path), "dev_mismatched")
    assert matched[0].text_a == "A man eats." and mismatched[0].label == "entailment"

    (tmp_path / "multinli").mkdir()
    (tmp_path / "multinli" / "multinli.train.zh.tsv").write_text(
        "premise\thypo\tlabel\n他在吃饭。\t有人在吃。\tcontradictory\n", encoding="utf-8")
    dev_header = "language\tgold_label\t" + "\t".join(f"c{i}" for i in range(2, 8)) + "\n"
    rows = [["zh", "neutral", "", "", "", "", "句子一", "句子二"],
            ["de", "neutral", "", "", "", "", "Satz eins", "Satz zwei"]]
    (tmp_path / "xnli.dev.tsv").write_text(
        dev_header + "".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
    xnli = glue.get_task("XNLI")
    assert glue.read_examples(xnli, str(tmp_path), "train")[0].label == "contradiction"
    dev = glue.read_examples(xnli, str(tmp_path), "dev")
    assert [(e.text_a, e.label) for e in dev] == [("句子一", "neutral")]
    german = glue.read_examples(glue.get_task("xnli", "de"), str(tmp_path), "dev")
    assert [e.text_a for e in german] == ["Satz eins"]


def test_tsv_fields_keep_unicode_line_separators_as_the_original_reads_them(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes("a\u2028b\tc\x0cd\x85e\r\nsecond\trow\n".encode())
    assert glue.read_tsv(str(path)) == [["a\u2028b", "c\x0cd\x85e"], ["second", "row"]]
    path.write_bytes(b"ok\trow\nbad\rfield\tx\n")
    with pytest.raises(glue.GlueDataError, match=r"train.tsv:2: new-line character"):
        glue.read_tsv(str(path))
