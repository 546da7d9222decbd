"""TFRecords of tf.train.Example without TensorFlow: the bytes `Example.SerializeToString`
and `tf.io.TFRecordWriter` write, so the data scripts need not import TensorFlow, and every
record writer of the package goes through file_io's staged (atomic) outputs.

An Example is a map from feature name to a list of int64 or float values; here a feature
is `(INT64, packed varints)` or `(FLOAT, packed little-endian float32s)` (`int64s`,
`floats`), and `serialize_example` writes the map's entries in the order asked for. A
`RecordLayout` declares one kind of record once: its writer serializes with it and the
`tf.data` reader parses with it (training/input_pipeline.parsing_spec).
(TensorFlow's own serializer orders map entries by a hash seeded per process, so its bytes
for one Example vary from run to run; these do not.)
A record is: its length (uint64, little-endian), the length's masked CRC32C, the data,
the data's masked CRC32C.
"""

from __future__ import annotations

import dataclasses
import functools
import struct
from collections.abc import Iterable, Mapping, Sequence

import google_crc32c

from bert_tf import file_io


def _masked_crc(data: bytes) -> bytes:
    """TFRecord's checksum: CRC32C rotated right by 15 bits plus a constant, little-endian."""
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def tfrecord(data: bytes) -> bytes:
    """One TFRecord: length, its checksum, the data, its checksum."""
    length = struct.pack("<Q", len(data))
    return length + _masked_crc(length) + data + _masked_crc(data)


def write_tfrecords(path: str, records: Iterable[bytes]) -> int:
    """Writes serialized records to `path` atomically; returns how many."""
    count = 0
    with file_io.StagedOutputs([path], "wb") as (handle,):
        for record in records:
            handle.write(tfrecord(record))
            count += 1
    return count


INT64, FLOAT = b"\x1a", b"\x12"  # the tags of Feature.int64_list and Feature.float_list


@functools.cache
def varint(value: int) -> bytes:
    """Protobuf base-128 varint of an int (negative int64 as 10 bytes); cached, since ids,
    positions and masks repeat across records."""
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def int64s(values: Iterable[int]) -> tuple[bytes, bytes]:
    """An int64 feature for serialize_example."""
    return INT64, b"".join(varint(int(value)) for value in values)


def floats(values: Sequence[float]) -> tuple[bytes, bytes]:
    """A float (float32) feature for serialize_example."""
    return FLOAT, struct.pack(f"<{len(values)}f", *values)


@functools.cache
def _entry_header(name: str, list_tag: bytes, packed_length: int) -> bytes:
    """The wire bytes of one feature-map entry (Features.feature, field 1) up to its packed
    values: entry tag and length, key, Feature tag and length, list tag and length, the
    list's `value` field (1) tag and length. Cached: a few shapes recur in every record."""
    values_field = b"\x0a" + varint(packed_length)
    list_length = len(values_field) + packed_length
    feature = list_tag + varint(list_length) + values_field
    feature_length = len(list_tag + varint(list_length)) + list_length
    key = b"\x0a" + varint(len(name.encode())) + name.encode()
    entry = key + b"\x12" + varint(feature_length)
    entry_length = len(entry) + feature_length
    return b"\x0a" + varint(entry_length) + entry + feature


def serialize_example(order: Sequence[str], features: dict[str, tuple[bytes, bytes]]) -> bytes:
    """tf.train.Example wire bytes of `features` (name -> `int64s(...)` or `floats(...)`):
    the names in `order` first, then the others in insertion order."""
    names = [name for name in order if name in features]
    names += [name for name in features if name not in order]
    parts = []
    for name in names:
        list_tag, packed = features[name]
        parts += (_entry_header(name, list_tag, len(packed)), packed)
    body = b"".join(parts)
    return b"\x0a" + varint(len(body)) + body


@dataclasses.dataclass(frozen=True)
class RecordLayout:
    """One kind of feature record: name -> values per record, in the order written (0: one
    value, read back as a scalar); int64 unless named in `floats` (float32)."""

    lengths: Mapping[str, int]
    floats: frozenset[str] = frozenset()

    def serialize(self, values: Mapping[str, Sequence]) -> bytes:
        """One record's tf.train.Example bytes: `values[name]` for every feature, in the
        layout's order (the same values always give the same bytes)."""
        features = {}
        for name, length in self.lengths.items():
            value = values[name]
            if len(value) != max(length, 1):
                raise ValueError(f"record feature {name}: {len(value)} values, the layout "
                                 f"holds {max(length, 1)}")
            features[name] = floats(value) if name in self.floats else int64s(value)
        return serialize_example((), features)
