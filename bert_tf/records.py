"""TFRecord framing without TensorFlow: the bytes tf.io.TFRecordWriter writes, so the data
scripts need not import TensorFlow, and every record writer of the package goes through
file_io's staged (atomic) outputs.

A record is: its length (uint64, little-endian), the length's masked CRC32C, the data,
the data's masked CRC32C.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

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
