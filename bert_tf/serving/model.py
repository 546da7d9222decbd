"""The model a server answers with: an export_model.py SavedModel, loaded once.

`--export_dir` is a SavedModel folder (served as version 1) or, as TF Serving lays them
out, a base folder of numeric version folders (the newest is served). Every signature of
the export is reachable by name (`serving_default`, `pair`, ...). `run` is blocking and
called from one worker thread only (serving/batching.py): the web server's event loop
never runs the model.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the exported tokenizer's ops)
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from bert_tf import file_io
from bert_tf.errors import BertTfError, UsageError

DEFAULT_SIGNATURE = "serving_default"


class RequestError(BertTfError, ValueError):
    """A request the model cannot answer; `status` is the HTTP status it gets."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Signature:
    """A signature's tensors: name -> dtype (a numpy dtype; strings are `object`)."""

    name: str
    inputs: dict[str, np.dtype]
    outputs: dict[str, np.dtype]


def find_version(export_dir: str) -> tuple[str, int]:
    """(the SavedModel folder to serve, its version): `export_dir` itself (version 1) or
    its newest numeric subfolder that holds a SavedModel."""
    if file_io.exists(os.path.join(export_dir, "saved_model.pb")):
        return export_dir, 1
    if not file_io.is_folder(export_dir):
        raise UsageError(f"export_dir: {export_dir} is not a folder (an export_model.py "
                         f"SavedModel, or a base folder of numeric versions)")
    versions = sorted(int(name) for name in os.listdir(export_dir) if name.isdigit()
                      and file_io.exists(os.path.join(export_dir, name, "saved_model.pb")))
    if not versions:
        raise UsageError(f"export_dir: {export_dir} holds no saved_model.pb, nor numeric "
                         f"version folders with one")
    return os.path.join(export_dir, str(versions[-1])), versions[-1]


class ServedModel:
    """A loaded export: its signatures and a blocking `run`."""

    def __init__(self, export_dir: str):
        self.path, self.version = find_version(export_dir)
        self.loaded = tf.saved_model.load(self.path)
        self.functions = dict(self.loaded.signatures)
        self.signatures = {name: describe(name, function)
                           for name, function in self.functions.items()}
        self.signature_defs = read_signature_defs(self.path)

    def signature(self, name: str | None) -> Signature:
        """The signature `name` (default `serving_default`); unknown: a 400."""
        name = name or DEFAULT_SIGNATURE
        if name not in self.signatures:
            raise RequestError(f"Serving signature name: \"{name}\" not found in signature "
                               f"def (has: {', '.join(sorted(self.signatures))})")
        return self.signatures[name]

    def run(self, signature: str, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The signature's outputs for a batch: columns name -> [B] values."""
        outputs = self.functions[signature](**{name: tf.constant(value)
                                               for name, value in columns.items()})
        return {name: value.numpy() for name, value in outputs.items()}

    def warm_up(self) -> None:
        """Runs every signature once on a short text (traces and allocates up front)."""
        for signature in self.signatures.values():
            self.run(signature.name, {name: np.array(["warm up"], object)
                                      for name in signature.inputs})


def describe(name: str, function) -> Signature:
    """A concrete function's input and output tensors."""
    _, inputs = function.structured_input_signature
    return Signature(
        name,
        {key: spec.dtype.as_numpy_dtype for key, spec in inputs.items()},
        {key: spec.dtype.as_numpy_dtype for key, spec in function.structured_outputs.items()},
    )


def read_signature_defs(path: str) -> dict[str, meta_graph_pb2.SignatureDef]:
    """The SignatureDefs of the SavedModel's serving meta graph (what TF Serving's
    metadata answers with)."""
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString(file_io.read_bytes(os.path.join(path, "saved_model.pb")))
    for meta_graph in saved_model.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return {name: signature for name, signature in meta_graph.signature_def.items()
                    if not name.startswith("__")}
    return {}
