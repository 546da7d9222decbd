"""records.py writes the Examples TensorFlow's serializer does (the same message; TF orders
map entries by a per-process hash, records.py in a fixed order) and the same framing."""

import numpy as np
import tensorflow as tf

from bert_tf.data import records
from bert_tf.tasks import glue, squad


def tf_example(features: dict) -> bytes:
    def feature(values):
        if isinstance(values[0], float):
            return tf.train.Feature(float_list=tf.train.FloatList(value=values))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    return tf.train.Example(features=tf.train.Features(
        feature={name: feature(values) for name, values in features.items()}
    ))


def same_example(ours: bytes, expected: tf.train.Example) -> bool:
    """The same message (map entries compared by key, whatever their order)."""
    return tf.train.Example.FromString(ours) == expected


def test_glue_records_equal_tensorflow_serialization():
    feature = glue.InputFeatures([101, 7592, 102, 0], [1, 1, 1, 0], [0, 0, 0, 0], 2)
    expected = tf_example({"input_ids": feature.input_ids, "input_mask": feature.input_mask,
                           "segment_ids": feature.segment_ids, "label_ids": [2],
                           "is_real_example": [1]})
    assert same_example(glue.record_bytes(feature, glue.get_task("mnli")), expected)
    feature.label_id = 3.25
    expected = tf_example({"input_ids": feature.input_ids, "input_mask": feature.input_mask,
                           "segment_ids": feature.segment_ids, "label_ids": [3.25],
                           "is_real_example": [1]})
    assert same_example(glue.record_bytes(feature, glue.get_task("sts-b")), expected)


def test_squad_records_equal_tensorflow_serialization():
    ids, mask, segments = [101, 2054, 102, 300000], [1, 1, 1, 1], [0, 0, 1, 1]
    assert same_example(squad.record_bytes(1000000007, ids, mask, segments), tf_example(
        {"unique_ids": [1000000007], "input_ids": ids, "input_mask": mask,
         "segment_ids": segments}))
    assert same_example(squad.record_bytes(1000000007, ids, mask, segments, (3, 3, False)),
                        tf_example(
        {"unique_ids": [1000000007], "input_ids": ids, "input_mask": mask,
         "segment_ids": segments, "start_positions": [3], "end_positions": [3],
         "is_impossible": [0]}))


def test_varints_floats_and_framing(tmp_path):
    for value in (0, 1, 127, 128, 300, 2**31, 2**63 - 1, -1, -(2**63)):
        parsed = tf.train.Int64List.FromString(b"\x0a" + records.varint(len(
            records.varint(value))) + records.varint(value))
        assert list(parsed.value) == [value]
    example = records.serialize_example((), {"x": records.floats([0.5, -1e-3, 3e38])})
    assert example == tf_example({"x": [0.5, -1e-3, 3e38]}).SerializeToString()
    path = str(tmp_path / "r.tfrecord")
    records.write_tfrecords(path, [example, b"", example])
    read = [r.numpy() for r in tf.data.TFRecordDataset(path)]
    assert read == [example, b"", example]
    np.testing.assert_allclose(
        tf.io.parse_single_example(read[0], {"x": tf.io.FixedLenFeature([3], tf.float32)})["x"],
        np.float32([0.5, -1e-3, 3e38]))
