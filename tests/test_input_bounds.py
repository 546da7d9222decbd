"""Bad flags and inputs through the scripts (issue 26, round 3): every length, stride and
size is checked before any work, and every case ends in one line naming the flag or the
file, never a traceback, a hang or a silent wrong result."""

import io
import json
import zipfile

import keras
import numpy as np
import pytest
from conftest import TINY_CONFIG, fixture_path, one_line_error, run_script

import bert_tf
from bert_tf.config import BertConfigError
from bert_tf.models.heads import BertClassifier


def tiny(*parts: str):
    return fixture_path("tiny_ckpt").joinpath(*parts)


def model_flags(tmp_path, config=None, **flags) -> list[str]:
    values = dict(bert_config_file=config or tiny("bert_config.json"),
                  vocab_file=tiny("vocab.txt"), init_checkpoint=tiny() / "bert_model.ckpt",
                  output_dir=tmp_path / "out")
    values.update(flags)
    return [f"--{key}={value}" for key, value in values.items()]


@pytest.fixture(scope="module")
def ner_data(tmp_path_factory):
    data = tmp_path_factory.mktemp("ner")
    sentence = "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\n\n"
    for split in ("train", "dev", "test"):
        (data / f"{split}.txt").write_text(sentence * 4)
    return data


@pytest.fixture(scope="module")
def mrpc_data(tmp_path_factory):
    data = tmp_path_factory.mktemp("mrpc")
    header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    row = "1\t1\t2\tThe cat sat.\tA cat was sitting.\n"
    for split in ("train", "dev"):
        (data / f"{split}.tsv").write_text(header + row * 8)
    return data


def test_sequence_lengths_and_strides_are_checked_up_front(tmp_path, ner_data, mrpc_data):
    # run_ner --max_seq_length=2 used to allocate until the kernel killed it.
    result = run_script(["run_ner.py", f"--data_dir={ner_data}", "--do_train",
                         *model_flags(tmp_path, max_seq_length=2)], check=False)
    one_line_error(result, "max_seq_length=2 is too short", "[CLS] a [SEP]", "takes 3")
    result = run_script(["run_ner.py", f"--data_dir={ner_data}", "--do_train",
                         *model_flags(tmp_path, max_seq_length=8, doc_stride=0)], check=False)
    one_line_error(result, "doc_stride must be at least 1, found 0")
    # run_classifier --max_seq_length=0 / 2 (IndexError before); pairs need 5.
    for length, expected in (("0", "takes 3"), ("4", "[CLS] a [SEP] b [SEP]")):
        result = run_script(["run_classifier.py", "--task_name=mrpc", f"--data_dir={mrpc_data}",
                             "--do_train", *model_flags(tmp_path, max_seq_length=length)],
                            check=False)
        one_line_error(result, f"max_seq_length={length} is too short", expected)
    # extract_features --max_seq_length=0 wrote `[CLS] [SEP]` and dropped the text.
    (tmp_path / "input.txt").write_text("hello world\n")
    result = run_script(["extract_features.py", f"--input_file={tmp_path / 'input.txt'}",
                         f"--output_file={tmp_path / 'features.jsonl'}",
                         f"--bert_config_file={tiny('bert_config.json')}",
                         f"--vocab_file={tiny('vocab.txt')}",
                         f"--init_checkpoint={tiny() / 'bert_model.ckpt'}", "--max_seq_length=0"],
                        check=False)
    one_line_error(result, "max_seq_length=0 is too short")
    assert not (tmp_path / "features.jsonl").exists()


def test_training_flags_that_would_divide_by_zero_fail_through_the_scripts(tmp_path, mrpc_data):
    result = run_script(["run_classifier.py", "--task_name=mrpc", f"--data_dir={mrpc_data}",
                         "--do_train", *model_flags(tmp_path, max_seq_length=16,
                                                    gradient_accumulation_steps=0)],
                        check=False)
    one_line_error(result, "gradient_accumulation_steps must be at least 1, found 0")
    result = run_script(["run_pretraining.py", "--do_train",
                         f"--bert_config_file={tiny('bert_config.json')}",
                         f"--init_checkpoint={tiny() / 'bert_model.ckpt'}",
                         f"--input_file={fixture_path('optimizer', 'first8.tfrecord')}",
                         f"--output_dir={tmp_path / 'pretraining'}",
                         "--max_predictions_per_seq=0"], check=False)
    one_line_error(result, "max_predictions_per_seq must be at least 1")


def test_config_sizes_are_bounded_before_any_model_is_built(tmp_path, mrpc_data):
    config = tmp_path / "bert_config.json"
    config.write_text(json.dumps({**json.loads(tiny("bert_config.json").read_text()),
                                  "num_hidden_layers": 10000}))
    result = run_script(["run_classifier.py", "--task_name=mrpc", f"--data_dir={mrpc_data}",
                         "--do_train", *model_flags(tmp_path, config=config, max_seq_length=16)],
                        check=False)
    one_line_error(result, f"{config}: num_hidden_layers=10000, but", "holds 2 layers")
    with pytest.raises(BertConfigError, match=r"field 'num_hidden_layers' \(100000\).*GiB of "
                                              r"float32 weights alone, more than this machine"):
        bert_tf.BertConfig(30522, num_hidden_layers=100_000)
    base = bert_tf.BertConfig.from_json_file(str(fixture_path("minilm_ckpt", "bert_config.json")))
    assert 22_000_000 < base.num_parameters() < 23_000_000  # MiniLM-L6: 22.7M weights


def test_a_conll_line_missing_its_entity_column_is_named(tmp_path, ner_data):
    data = tmp_path / "data"
    data.mkdir()
    for split in ("dev", "test"):
        (data / f"{split}.txt").write_text((ner_data / f"{split}.txt").read_text())
    text = (ner_data / "train.txt").read_text().splitlines()
    text[1] = "rejects VBZ B-VP"  # the NE column is missing: B-VP would read as a VP entity
    (data / "train.txt").write_text("\n".join(text) + "\n")
    result = run_script(["run_ner.py", f"--data_dir={data}", "--do_train",
                         *model_flags(tmp_path, max_seq_length=16)], check=False)
    one_line_error(result, f"{data / 'train.txt'}:2: 3 columns, but line 1 has 4")


def test_bad_beam_pipeline_options_are_one_line(tmp_path):
    pytest.importorskip("apache_beam")
    cases = {"--runner=Bogus": "Unexpected pipeline runner: Bogus",
             "--direct_num_workers=abc": "invalid int value: 'abc'",
             "--bogus_flag=1": "unknown option --bogus_flag",
             "'unbalanced": "No closing quotation"}
    for options, message in cases.items():
        result = run_script(["create_pretraining_data.py", "--runner=beam",
                             f"--input_file={fixture_path('pretrain_public', 'sample_text.txt')}",
                             f"--output_file={tmp_path}/", f"--vocab_file={tiny('vocab.txt')}",
                             f"--beam_pipeline_options={options}"], check=False)
        one_line_error(result, "beam_pipeline_options: ", message)
    assert not list(tmp_path.iterdir())


def test_a_damaged_keras_file_never_loads_silently_wrong(tmp_path):
    """Keras' .keras is a zip whose members carry CRC-32s, checked as they are read: a
    flipped bit anywhere either fails the load or leaves the weights as they were."""
    model = BertClassifier(bert_tf.BertConfig(**TINY_CONFIG), 2)
    inputs = {"input_ids": np.ones((1, 8), "int32"), "input_mask": np.ones((1, 8), "int32"),
              "segment_ids": np.zeros((1, 8), "int32")}
    expected = np.asarray(model(inputs))
    model.save(tmp_path / "model.keras")
    data = (tmp_path / "model.keras").read_bytes()
    members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    weights = next(m for m in members if m.filename.endswith(".h5"))
    start = weights.header_offset + 30 + len(weights.filename)
    positions = [start + weights.compress_size * k // 8 for k in range(1, 8)]
    positions += [m.header_offset + 30 + len(m.filename) for m in members]  # each member
    for position in positions:
        damaged = bytearray(data)
        damaged[position] ^= 0x08
        (tmp_path / "damaged.keras").write_bytes(bytes(damaged))
        try:
            loaded = keras.models.load_model(tmp_path / "damaged.keras")
        except Exception:  # a refusal (Bad CRC-32, unreadable config) is the right outcome
            continue
        np.testing.assert_array_equal(np.asarray(loaded(inputs)), expected)


def test_a_squad_file_without_windows_is_predicted_under_bucketing(tmp_path):
    """Every context empty: no window to run (KeyError 'input_mask' under bucketing
    before); the original's "empty" prediction for each question, scored 0."""
    data = {"data": [{"title": "t", "paragraphs": [
        {"context": "", "qas": [{"id": "q1", "question": "who?",
                                 "answers": [{"text": "x", "answer_start": 0}]}]}]}]}
    (tmp_path / "dev.json").write_text(json.dumps(data))
    run_script(["run_squad.py", *model_flags(tmp_path, max_seq_length=32, doc_stride=8,
                                             max_query_length=8),
                f"--predict_file={tmp_path / 'dev.json'}", "--do_predict", "--bucketing=eval",
                f"--init_checkpoint={fixture_path('squad', 'tiny_squad_ckpt') / 'model.ckpt'}"])
    assert json.loads((tmp_path / "out" / "predictions.json").read_text()) == {"q1": "empty"}
