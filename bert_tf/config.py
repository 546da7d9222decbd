"""BertConfig: the fields of the original `bert_config.json`, validated.

Like the original, a config read from JSON keeps every field it finds, including ones this
code does not use (the published Chinese config carries `directionality`, `pooler_type`,
...), and fields that are absent take the original defaults. Unlike the original, values
are checked when the config is made, so a bad file fails here with its name and the field,
not later inside the model.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import tensorflow as tf

from bert_tf.errors import BertTfError

# The activations the original `modeling.get_activation` accepts (case-insensitive); an
# empty string also means linear there.
ACTIVATIONS = ("gelu", "relu", "tanh", "linear")

_INT_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
)
_PROBABILITY_FIELDS = ("hidden_dropout_prob", "attention_probs_dropout_prob")


def physical_memory() -> int:
    """This machine's memory in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


class BertConfigError(BertTfError, ValueError):
    """A bert_config.json (or config values) that cannot describe a BERT model."""


class BertConfig:
    """Configuration of a `BertModel`, with the original field names and defaults."""

    def __init__(
        self,
        vocab_size: int | None,
        *,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        intermediate_size: int = 3072,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.1,
        max_position_embeddings: int = 512,
        type_vocab_size: int = 16,
        initializer_range: float = 0.02,
        **extra_fields: Any,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range
        # Unknown fields are kept (to_dict writes them back); one named like a method or
        # property of this class (e.g. "validate") is kept aside so it cannot replace it.
        clashing = {key for key in extra_fields if hasattr(BertConfig, key)}
        self._clashing_fields = {key: extra_fields[key] for key in sorted(clashing)}
        self.__dict__.update({k: v for k, v in extra_fields.items() if k not in clashing})
        self.validate()

    @property
    def attention_head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def validate(self) -> None:
        """Raises BertConfigError naming the field if a value cannot describe a model."""

        def fail(field: str, message: str) -> None:
            raise BertConfigError(f"field '{field}' {message}")

        if self.vocab_size is None:
            fail("vocab_size", "is missing; it must be the number of lines in vocab.txt")
        for field in _INT_FIELDS:
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                fail(field, f"must be a positive integer, found {value!r}")
        for field in _PROBABILITY_FIELDS:
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | float) or not (
                0.0 <= value < 1.0
            ):
                fail(field, f"must be a number in [0, 1), found {value!r}")
        value = self.initializer_range
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            fail("initializer_range", f"must be a positive number, found {value!r}")
        act = self.hidden_act
        if not isinstance(act, str) or (act and act.lower() not in ACTIVATIONS):
            fail("hidden_act", f"must be one of {', '.join(ACTIVATIONS)}, found {act!r}")
        if self.hidden_size % self.num_attention_heads:
            fail(
                "hidden_size",
                f"({self.hidden_size}) must be a multiple of num_attention_heads "
                f"({self.num_attention_heads})",
            )
        memory = physical_memory()
        if 4 * self.num_parameters() > memory:
            fail("num_hidden_layers",
                 f"({self.num_hidden_layers}), hidden_size ({self.hidden_size}), "
                 f"intermediate_size ({self.intermediate_size}) and vocab_size "
                 f"({self.vocab_size}) describe {self.num_parameters() / 1e9:.1f}B parameters: "
                 f"{4 * self.num_parameters() / 2**30:.1f} GiB of float32 weights alone, more "
                 f"than this machine's {memory / 2**30:.1f} GiB of memory")

    def num_parameters(self) -> int:
        """About how many weights the model has (embeddings, encoder layers, pooler); an
        ALBERT config (`num_hidden_groups`) counts its shared layers once."""
        hidden, inner = self.hidden_size, self.intermediate_size
        width = getattr(self, "embedding_size", None) or hidden
        rows = self.vocab_size + self.max_position_embeddings + self.type_vocab_size
        embeddings = rows * width + (width * hidden if width != hidden else 0)
        per_layer = 4 * hidden * hidden + 2 * hidden * inner + 9 * hidden + inner
        layers = self.num_hidden_layers
        groups = getattr(self, "num_hidden_groups", None)
        if isinstance(groups, int) and groups > 0:
            layers = groups * int(getattr(self, "inner_group_num", 1) or 1)
        return embeddings + layers * per_layer + hidden * hidden + hidden

    @classmethod
    def from_dict(cls, json_object: dict[str, Any], source: str = "config") -> BertConfig:
        """Builds a config from a dict; unknown keys are kept, missing ones take defaults."""
        if not isinstance(json_object, dict):
            raise BertConfigError(
                f"{source}: expected a JSON object of config fields, "
                f"found {type(json_object).__name__}"
            )
        try:
            return cls(**{"vocab_size": None, **json_object})
        except BertConfigError as error:
            raise BertConfigError(f"{source}: {error}") from None

    @classmethod
    def from_json_file(cls, json_file: str) -> BertConfig:
        """Reads a `bert_config.json` (local or any path tf.io.gfile reads, e.g. gs://)."""
        if not tf.io.gfile.exists(json_file):
            raise BertConfigError(f"{json_file}: config file not found")
        with tf.io.gfile.GFile(json_file, "rb") as reader:
            data = reader.read()
        try:
            json_object = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError as error:
            raise BertConfigError(
                f"{json_file}: not valid UTF-8 (byte {error.start}); expected a JSON text"
            ) from None
        except json.JSONDecodeError as error:
            raise BertConfigError(
                f"{json_file}: not valid JSON (line {error.lineno}, column {error.colno}: "
                f"{error.msg}); expected a bert_config.json object"
            ) from None
        return cls.from_dict(json_object, source=json_file)

    def to_dict(self) -> dict[str, Any]:
        fields = {k: v for k, v in self.__dict__.items() if k != "_clashing_fields"}
        return copy.deepcopy({**fields, **self._clashing_fields})

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, json_file: str) -> None:
        with tf.io.gfile.GFile(json_file, "w") as writer:
            writer.write(self.to_json_string())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BertConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"BertConfig({self.to_dict()})"
