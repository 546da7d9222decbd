"""Converting checkpoints between Google's layout and the HF transformers BERT layout.

HF layout: a directory with `config.json` and `model.safetensors` whose tensors are named
like `encoder.layer.0.attention.self.query.weight` (optionally under `bert.`), with
`[out, in]` dense weights and `weight`/`bias` LayerNorm parameters; pretraining heads as
`cls.predictions.*` and `cls.seq_relationship.*`. Google layout: `bert_config.json` and a
TF1 checkpoint named like `bert/encoder/layer_0/attention/self/query/kernel` with
`[in, out]` kernels and `gamma`/`beta`.

    python -m bert_tf.interop.hf_conversion to_google HF_DIR OUT_DIR  # bert_config.json, ckpt
    python -m bert_tf.interop.hf_conversion to_hf GOOGLE_DIR OUT_DIR  # config.json, safetensors

Activation: HF's `"gelu"` is the exact erf form and `"gelu_new"` the tanh form; Google's
`"gelu"` (this package's) is the tanh form, which BERT checkpoints were trained with. Both HF
names map to `"gelu"` here, and Google's `"gelu"` maps to HF's `"gelu_new"`, which is what the
network computes. (On real weights the two forms differ by ~4e-3 in the outputs.)

safetensors is read and written here directly (an 8-byte header length, a JSON header,
then raw little-endian tensors), so no extra package is needed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import struct

import numpy as np
import tensorflow as tf

from bert_tf import file_io
from bert_tf.config import BertConfig
from bert_tf.errors import BertTfError, run_script
from bert_tf.models.modeling import BertModel
from bert_tf.training import checkpoint as checkpoint_lib

_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64,
           "I32": np.int32}
_CONFIG_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                  "intermediate_size", "hidden_dropout_prob", "attention_probs_dropout_prob",
                  "max_position_embeddings", "type_vocab_size", "initializer_range")
# HF name pattern -> Google name, for every variable whose layout differs only by name.
_NAME_RULES = [
    (r"embeddings\.(word|position|token_type)_embeddings\.weight",
     r"bert/embeddings/\1_embeddings"),
    (r"embeddings\.LayerNorm\.(weight|gamma)", "bert/embeddings/LayerNorm/gamma"),
    (r"embeddings\.LayerNorm\.(bias|beta)", "bert/embeddings/LayerNorm/beta"),
    (r"encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.(weight|bias)",
     r"bert/encoder/layer_\1/attention/self/\2/\3"),
    (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)",
     r"bert/encoder/layer_\1/attention/output/dense/\2"),
    (r"encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.(weight|gamma)",
     r"bert/encoder/layer_\1/attention/output/LayerNorm/gamma"),
    (r"encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.(bias|beta)",
     r"bert/encoder/layer_\1/attention/output/LayerNorm/beta"),
    (r"encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)",
     r"bert/encoder/layer_\1/intermediate/dense/\2"),
    (r"encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)",
     r"bert/encoder/layer_\1/output/dense/\2"),
    (r"encoder\.layer\.(\d+)\.output\.LayerNorm\.(weight|gamma)",
     r"bert/encoder/layer_\1/output/LayerNorm/gamma"),
    (r"encoder\.layer\.(\d+)\.output\.LayerNorm\.(bias|beta)",
     r"bert/encoder/layer_\1/output/LayerNorm/beta"),
    (r"pooler\.dense\.(weight|bias)", r"bert/pooler/dense/\1"),
    (r"cls\.predictions\.transform\.dense\.(weight|bias)", r"cls/predictions/transform/dense/\1"),
    (r"cls\.predictions\.transform\.LayerNorm\.(weight|gamma)",
     "cls/predictions/transform/LayerNorm/gamma"),
    (r"cls\.predictions\.transform\.LayerNorm\.(bias|beta)",
     "cls/predictions/transform/LayerNorm/beta"),
    (r"cls\.predictions\.bias", "cls/predictions/output_bias"),
    (r"cls\.seq_relationship\.weight", "cls/seq_relationship/output_weights"),
    (r"cls\.seq_relationship\.bias", "cls/seq_relationship/output_bias"),
]
# Not variables of the original model: position-id buffers and the decoder tied to the
# word embeddings.
_HF_SKIPPED = re.compile(r"(.*position_ids|cls\.predictions\.decoder\.(weight|bias))$")


class ConversionError(BertTfError, ValueError):
    """A file that is not a BERT checkpoint of the layout asked for."""


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    """Name -> array of a safetensors file. Refuses a header that is not a JSON object, a
    header length past the file, and tensors whose byte ranges run past the data, overlap,
    or do not match their dtype and shape, naming the tensor."""
    with tf.io.gfile.GFile(path, "rb") as handle:
        data = handle.read()
    if len(data) < 8:
        raise ConversionError(f"{path}: too short to be a safetensors file")
    (size,) = struct.unpack("<Q", data[:8])
    if size > len(data) - 8:
        raise ConversionError(
            f"{path}: header length {size} runs past the end of the {len(data)}-byte file"
        )
    try:
        header = json.loads(data[8:8 + size])
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConversionError(f"{path}: the safetensors header is not JSON") from None
    if not isinstance(header, dict):
        raise ConversionError(
            f"{path}: the safetensors header is a JSON {type(header).__name__}, expected an "
            f"object of name -> {{dtype, shape, data_offsets}}"
        )
    payload = len(data) - 8 - size
    tensors, spans = {}, []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        start, end, dtype, shape = _tensor_entry(path, name, entry)
        if not 0 <= start <= end <= payload:
            raise ConversionError(f"{path}: tensor {name}: data_offsets [{start}, {end}] run "
                                  f"outside the {payload} bytes of data")
        if (end - start) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise ConversionError(f"{path}: tensor {name}: {end - start} bytes do not hold "
                                  f"shape {shape} of {entry['dtype']}")
        spans.append((start, end, name))
        array = np.frombuffer(data[8 + size + start:8 + size + end], dtype)
        tensors[name] = array.reshape(shape).copy()
    spans.sort()
    for (_, end, first), (start, _, second) in zip(spans, spans[1:], strict=False):
        if start < end:
            raise ConversionError(f"{path}: tensors {first} and {second} overlap in the data")
    return tensors


def _tensor_entry(path: str, name: str, entry) -> tuple[int, int, np.dtype, list[int]]:
    """(start, end, dtype, shape) of one header entry, or a ConversionError naming it."""
    try:
        dtype = _DTYPES[entry["dtype"]]
        start, end = (int(offset) for offset in entry["data_offsets"])
        shape = [int(dim) for dim in entry["shape"]]
    except KeyError as error:
        if isinstance(entry, dict) and "dtype" in entry and entry["dtype"] not in _DTYPES:
            raise ConversionError(
                f"{path}: {name} has unsupported dtype {entry['dtype']}"
            ) from None
        raise ConversionError(f"{path}: tensor {name}: no {error}") from None
    except (TypeError, ValueError):
        raise ConversionError(
            f"{path}: tensor {name}: expected {{dtype, shape: [ints], data_offsets: "
            f"[start, end]}}, found {str(entry)[:100]}"
        ) from None
    if min(shape, default=0) < 0:
        raise ConversionError(f"{path}: tensor {name}: negative dimension in {shape}")
    return start, end, np.dtype(dtype), shape


def write_safetensors(path: str, tensors: dict[str, np.ndarray]) -> None:
    """Writes float32/int tensors in name order (atomically: temp file, then rename)."""
    codes = {np.dtype(v): k for k, v in _DTYPES.items()}
    header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        raw = array.astype(array.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": codes[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # align the data to 8 bytes
    file_io.write_atomically(path, struct.pack("<Q", len(encoded)) + encoded + b"".join(chunks))


def _is_dense_weight(google_name: str) -> bool:
    """Dense kernels are stored [in, out] by Google and [out, in] by HF."""
    return google_name.endswith("/kernel")


def hf_to_google_tensors(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """HF tensor names and layouts -> Google checkpoint names and layouts."""
    converted = {}
    for name, value in tensors.items():
        short = name[5:] if name.startswith("bert.") else name
        if _HF_SKIPPED.match(short):
            continue
        for pattern, replacement in _NAME_RULES:
            match = re.fullmatch(pattern, short)
            if match:
                target = match.expand(replacement).replace("/weight", "/kernel")
                converted[target] = value.T if _is_dense_weight(target) else value
                break
        else:
            raise ConversionError(f"{name}: not a tensor of HF's BERT layout")
    return converted


def google_to_hf_tensors(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The reverse of `hf_to_google_tensors` (names under `bert.` and `cls.`, as HF's
    BertForPreTraining), plus the tied decoder when the masked-LM head is present."""
    reverse = {}
    for name, value in tensors.items():
        if checkpoint_lib.is_training_state(name):
            continue
        hf = _google_to_hf_name(name)
        reverse[hf] = value.T if _is_dense_weight(name) else value
    if "cls.predictions.bias" in reverse:
        reverse["cls.predictions.decoder.weight"] = reverse[
            "bert.embeddings.word_embeddings.weight"]
        reverse["cls.predictions.decoder.bias"] = reverse["cls.predictions.bias"]
    return reverse


def _google_to_hf_name(name: str) -> str:
    fixed = {
        "cls/predictions/output_bias": "cls.predictions.bias",
        "cls/seq_relationship/output_weights": "cls.seq_relationship.weight",
        "cls/seq_relationship/output_bias": "cls.seq_relationship.bias",
    }
    if name in fixed:
        return fixed[name]
    parts = name.split("/")
    if parts[0] not in ("bert", "cls"):
        raise ConversionError(f"{name}: not a variable of Google's BERT layout")
    mapped = []
    for part in parts:
        mapped.append({"kernel": "weight", "gamma": "weight", "beta": "bias"}.get(part, part))
        if part.startswith("layer_"):
            mapped[-1] = f"layer.{part[6:]}"
    if name.startswith("bert/embeddings/") and name.endswith("_embeddings"):
        mapped.append("weight")
    return ".".join(mapped)


def hf_to_google(hf_dir: str, out_dir: str) -> str:
    """Converts an HF transformers BERT to Google's layout.

    Args:
      hf_dir: an HF BERT folder: `config.json` and `model.safetensors` (and `vocab.txt`).
      out_dir: where `bert_config.json`, `bert_model.ckpt` and `vocab.txt` (when the HF
        folder has one) are written.

    Returns:
      The checkpoint prefix, `out_dir/bert_model.ckpt`.
    """
    with tf.io.gfile.GFile(os.path.join(hf_dir, "config.json")) as handle:
        hf_config = json.load(handle)
    if hf_config.get("model_type", "bert") != "bert":
        raise ConversionError(f"{hf_dir}/config.json: model_type {hf_config['model_type']!r}, "
                              f"expected 'bert'")
    config = {field: hf_config[field] for field in _CONFIG_FIELDS if field in hf_config}
    if hf_config.get("hidden_act", "gelu") not in ("gelu", "gelu_new", "gelu_pytorch_tanh"):
        config["hidden_act"] = hf_config["hidden_act"]
    else:
        config["hidden_act"] = "gelu"
    tensors = hf_to_google_tensors(read_safetensors(os.path.join(hf_dir, "model.safetensors")))
    tf.io.gfile.makedirs(out_dir)
    with tf.io.gfile.GFile(os.path.join(out_dir, "bert_config.json"), "w") as handle:
        json.dump(config, handle, indent=2)
    if tf.io.gfile.exists(os.path.join(hf_dir, "vocab.txt")):
        tf.io.gfile.copy(os.path.join(hf_dir, "vocab.txt"), os.path.join(out_dir, "vocab.txt"),
                         overwrite=True)
    prefix = os.path.join(out_dir, "bert_model.ckpt")
    return checkpoint_lib.save_tensors(prefix, tensors)


def google_to_hf(google_dir: str, out_dir: str) -> str:
    """Converts a Google-layout checkpoint to HF transformers' BERT layout.

    Args:
      google_dir: a folder with `bert_config.json` and a complete checkpoint.
      out_dir: where `config.json` and `model.safetensors` are written.

    Returns:
      The path of `model.safetensors`.
    """
    with tf.io.gfile.GFile(os.path.join(google_dir, "bert_config.json")) as handle:
        config = json.load(handle)
    model = BertModel(BertConfig.from_dict(config))
    checkpoint_lib.require_complete(checkpoint_lib.load_checkpoint(model, google_dir))
    prefix = checkpoint_lib.resolve_checkpoint(google_dir)
    reader = tf.train.load_checkpoint(prefix)
    tensors = google_to_hf_tensors(
        {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
    )
    hf_config = {field: config[field] for field in _CONFIG_FIELDS if field in config}
    act = config.get("hidden_act", "gelu")
    hf_config.update(model_type="bert", architectures=["BertForPreTraining"],
                     hidden_act="gelu_new" if act == "gelu" else act, layer_norm_eps=1e-12)
    tf.io.gfile.makedirs(out_dir)
    with tf.io.gfile.GFile(os.path.join(out_dir, "config.json"), "w") as handle:
        json.dump(hf_config, handle, indent=2)
    path = os.path.join(out_dir, "model.safetensors")
    write_safetensors(path, tensors)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Convert BERT checkpoints: Google <-> HF.")
    parser.add_argument("direction", choices=["to_google", "to_hf"])
    parser.add_argument("source")
    parser.add_argument("output_dir")
    args = parser.parse_args(argv)
    convert = hf_to_google if args.direction == "to_google" else google_to_hf
    run_script("hf_conversion", lambda: print(f"wrote {convert(args.source, args.output_dir)}"))


if __name__ == "__main__":
    main()
