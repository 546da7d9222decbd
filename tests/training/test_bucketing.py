"""Length-bucketed batches: the plan, the datasets, and outputs equal to the padded run."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from bert_tf.jobs import stages
from bert_tf.models.heads import BertClassifier, BertTokenClassifier
from bert_tf.models.objectives import ClassificationObjective, TokenClassificationObjective
from bert_tf.options import FineTuningOptions
from bert_tf.tasks import ner
from bert_tf.training import bucketing
from bert_tf.training.input_pipeline import feature_dataset, parsing_spec


def test_bucket_widths_and_lengths():
    assert [bucketing.bucket_width(n) for n in (32, 128, 200, 384, 512)] == [16, 16, 32, 48, 64]
    assert [bucketing.bucket_length(n, 128) for n in (0, 1, 16, 17, 100, 128)] == [
        16, 16, 16, 32, 112, 128]
    assert bucketing.bucket_length(195, 200) == 200  # capped at max_seq_length
    assert int(bucketing.bucket_length(tf.constant(17), 128)) == 32


def test_plan_sorts_by_length_and_keeps_whole_batches():
    lengths = np.array([50, 3, 120, 3, 40, 17, 90, 60])
    batches = bucketing.plan(lengths, 2, 128)
    assert [list(rows) for rows, _ in batches] == [[1, 3], [5, 4], [0, 7], [6, 2]]
    assert [length for _, length in batches] == [16, 48, 64, 128]
    assert "4 batches in 4 bucket lengths" in bucketing.describe(batches, 128)
    with pytest.raises(ValueError, match="not a whole number of batches of 3"):
        bucketing.plan(lengths, 3, 128)


def random_rows(count: int, max_seq_length: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Feature rows with random real lengths (1..max_seq_length) and random ids."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, max_seq_length + 1, count)
    mask = (np.arange(max_seq_length)[None] < lengths[:, None]).astype(np.int32)
    return {"input_ids": rng.integers(1, 99, (count, max_seq_length)).astype(np.int32) * mask,
            "input_mask": mask, "segment_ids": np.zeros_like(mask),
            "label_ids": rng.integers(0, 3, count).astype(np.int32)}


def test_eval_batches_deal_each_row_once_cut_to_its_bucket():
    arrays = random_rows(24, 64)
    context = tf.distribute.InputContext(num_replicas_in_sync=2)
    seen = []
    batches = list(bucketing.eval_batches(arrays, 8, context, 64).as_numpy_iterator())
    assert len(batches) == 6  # 3 global batches of 8, 4 rows per replica
    for first, second in zip(batches[::2], batches[1::2], strict=True):
        assert first["input_ids"].shape == second["input_ids"].shape  # one length a step
        rows = np.concatenate([first["example_index"], second["example_index"]])
        longest = arrays["input_mask"][rows].sum(1).max()
        assert first["input_ids"].shape[1] == bucketing.bucket_length(longest, 64)
    for batch in batches:
        rows = batch["example_index"]
        length = batch["input_ids"].shape[1]
        np.testing.assert_array_equal(batch["input_ids"], arrays["input_ids"][rows, :length])
        np.testing.assert_array_equal(batch["label_ids"], arrays["label_ids"][rows])
        assert not arrays["input_mask"][rows, length:].any()  # only padding was cut
        seen.extend(rows)
    assert sorted(seen) == list(range(24))


def test_training_batches_sort_chunks_of_the_stream():
    """16 global batches' examples at a time are sorted by length and cut into batches that
    leave in a shuffled order; every example of a chunk is in one of its batches, each
    batch is cut to the bucket of its longest example, and replicas share a length."""
    chunk = bucketing.SORTED_CHUNK * 8
    arrays = {**random_rows(2 * chunk, 64, seed=1), "row": np.arange(2 * chunk)}
    context = tf.distribute.InputContext(num_replicas_in_sync=2)

    def global_batches(seed):
        batches = bucketing.training_batches(
            tf.data.Dataset.from_tensor_slices(arrays), 8, 64, context, seed)
        pairs = zip(*[iter(batches.as_numpy_iterator())] * 2, strict=True)
        return [{name: np.concatenate([a[name], b[name]]) for name in a} for a, b in pairs]

    batches = global_batches(seed=3)
    assert len(batches) == 2 * bucketing.SORTED_CHUNK
    for batch in batches:
        length = batch["input_ids"].shape[1]
        real = batch["input_mask"].sum(1)
        assert length == bucketing.bucket_length(real.max(), 64) and length in (16, 32, 48, 64)
        np.testing.assert_array_equal(batch["input_ids"],
                                      arrays["input_ids"][batch["row"], :length])
    for start in (0, bucketing.SORTED_CHUNK):
        chunk_batches = batches[start:start + bucketing.SORTED_CHUNK]
        rows = np.concatenate([batch["row"] for batch in chunk_batches])
        assert sorted(rows) == list(range(start * 8, start * 8 + chunk))
        spans = sorted((b["input_mask"].sum(1).min(), b["input_mask"].sum(1).max())
                       for b in chunk_batches)
        assert all(high <= low for (_, high), (low, _) in zip(spans[:-1], spans[1:], strict=True))
        longest = [batch["input_mask"].sum(1).max() for batch in chunk_batches]
        assert longest != sorted(longest)  # the batch order is shuffled
    again = global_batches(seed=3)
    assert all((a["row"] == b["row"]).all() for a, b in zip(batches, again, strict=True))
    other = global_batches(seed=4)
    assert any((a["row"] != b["row"]).any() for a, b in zip(batches, other, strict=True))


def test_token_batches_share_their_chunks_label_count():
    """A length-sorted NER batch is normalized by its chunk's mean labelled positions per
    batch, not its own count: short and long batches weigh each token alike."""
    chunk = bucketing.SORTED_CHUNK * 4
    arrays = random_rows(chunk, 64, seed=5)
    arrays["label_weights"] = arrays["input_mask"] * (np.arange(64) % 2)
    batches = list(bucketing.training_batches(
        tf.data.Dataset.from_tensor_slices(arrays), 4, 64,
        tf.distribute.InputContext()).as_numpy_iterator())
    mean_per_batch = arrays["label_weights"].sum() / bucketing.SORTED_CHUNK
    objective = TokenClassificationObjective()
    counts = [float(objective.normalizers(batch)["labels"]) for batch in batches]
    np.testing.assert_allclose(counts, mean_per_batch, rtol=1e-6)
    assert min(b["label_weights"].sum() for b in batches) < mean_per_batch / 2


def test_rows_come_back_in_order():
    batches = [{"id": np.array([2, 0]), "x": np.array([20, 0])},
               {"id": np.array([3, 1]), "x": np.array([30, 10])}]
    assert [int(row["x"]) for row in bucketing.rows_in_order(batches, "id")] == [0, 10, 20, 30]
    with pytest.raises(ValueError, match="without the rows before them"):
        list(bucketing.rows_in_order(batches[:1], "id"))


def options_for(tmp_path, mode: str) -> FineTuningOptions:
    return FineTuningOptions(bert_config_file="", vocab_file="", output_dir=str(tmp_path),
                             max_seq_length=64, bucketing=mode)


def predict_both_ways(tmp_path, model, predict_fn, path, layout, batch_size=8):
    """stages.predict's outputs with `--bucketing=none` and `eval`."""
    strategy = tf.distribute.get_strategy()
    return [stages.predict(strategy, model, predict_fn, stages.record_batches(
                options_for(tmp_path, mode), path, layout, batch_size, False),
                options_for(tmp_path, mode))
            for mode in ("none", "eval")]


def test_ner_predictions_equal_the_padded_run(tmp_path, tiny_config):
    """Per-position outputs come back [N, max_seq_length] in file order, equal to the
    padded run's at every labelled position."""
    arrays = random_rows(21, 64, seed=2)
    features = [ner.NerFeatures(list(ids), list(mask), list(mask * 2), list(mask), {})
                for ids, mask in zip(arrays["input_ids"], arrays["input_mask"], strict=True)]
    path = str(tmp_path / "ner.tf_record")
    ner.write_features(iter(features), path, 64, pad_to_multiple=8)
    model = BertTokenClassifier(tiny_config, 5)
    padded, bucketed = predict_both_ways(tmp_path, model, TokenClassificationObjective().predict,
                                         path, ner.ner_layout(64))
    assert bucketed["predictions"].shape == padded["predictions"].shape == (24, 64)
    np.testing.assert_array_equal(bucketed["label_weights"], padded["label_weights"])
    weights = padded["label_weights"].astype(bool)
    np.testing.assert_array_equal(bucketed["predictions"][weights],
                                  padded["predictions"][weights])
    np.testing.assert_allclose(bucketed["per_token_loss"], padded["per_token_loss"], atol=1e-5)


def test_a_bucketed_training_batch_has_the_padded_batchs_gradients(tiny_config):
    """Cutting padding changes no loss or gradient: padded positions reach a real one only
    through attention weights of exactly 0."""
    keras.utils.set_random_seed(3)
    arrays = random_rows(8, 64, seed=3)
    arrays["input_mask"][:, 40:] = 0
    arrays["input_ids"][:, 40:] = 0
    model = BertClassifier(tiny_config, 3)
    objective = ClassificationObjective(False)

    def loss_and_gradients(length):
        batch = {name: value[:, :length] if value.ndim == 2 else value
                 for name, value in arrays.items()}
        batch["is_real_example"] = np.ones(8, np.int32)
        with tf.GradientTape() as tape:
            loss = objective.loss(model(batch), batch, objective.normalizers(batch))
        return loss, tape.gradient(loss, model.trainable_variables)

    (padded_loss, padded), (cut_loss, cut) = loss_and_gradients(64), loss_and_gradients(48)
    np.testing.assert_allclose(cut_loss, padded_loss, atol=1e-6)
    for variable, a, b in zip(model.trainable_variables, padded, cut, strict=True):
        np.testing.assert_allclose(tf.convert_to_tensor(b), tf.convert_to_tensor(a),
                                   atol=1e-6, err_msg=variable.path)


def test_feature_dataset_trains_on_bucketed_batches(tmp_path):
    arrays = random_rows(40, 64, seed=4)
    features = [ner.NerFeatures(list(ids), list(mask), list(mask), list(mask), {})
                for ids, mask in zip(arrays["input_ids"], arrays["input_mask"], strict=True)]
    path = str(tmp_path / "train.tf_record")
    ner.write_features(iter(features), path, 64)
    dataset = feature_dataset(path, parsing_spec(ner.ner_layout(64)), 8, True, seed=1,
                              bucketing=bucketing.Bucketing("all", 64))
    lengths = set()
    for batch in dataset.take(12):
        length = batch["input_ids"].shape[1]
        assert int(tf.reduce_max(tf.reduce_sum(batch["input_mask"], 1))) <= length
        lengths.add(length)
    assert len(lengths) > 1 and lengths <= {16, 32, 48, 64}
