"""Converting between Google's checkpoint layout and a keras-hub `BertBackbone` preset.

A keras-hub preset folder holds `config.json` (the backbone's Keras config),
`model.weights.h5`, `metadata.json` and, with a tokenizer, `tokenizer.json` and
`assets/tokenizer/vocabulary.txt`. Google's layout: `bert_config.json`, `vocab.txt` and a
TF1 checkpoint `bert_model.ckpt`. The encoder's tensors are the same numbers in both; only
names and shapes differ (keras-hub keeps attention kernels per head, [H, N, D] and
[N, D, H], where Google has [H, H]). Pretraining heads (`cls/*`) are not part of a
backbone and are not converted.

    python -m bert_tf.interop.keras_hub_conversion to_google PRESET_DIR OUT_DIR
    python -m bert_tf.interop.keras_hub_conversion to_keras_hub GOOGLE_DIR OUT_DIR [--cased]

Numerics: both compute GELU with the tanh approximation and LayerNorm with epsilon 1e-12.
keras-hub masks padding with Keras' softmax mask and computes LayerNorm as
`(x - mean) * rsqrt(var + eps) * gamma + beta`; the original adds -10000 to masked scores
and rounds LayerNorm differently, so the outputs agree to float32 rounding, not bit for
bit: on the MiniLM weights (L6 H384) and the fixture's inputs, keras-hub's sequence output
is within 3.7e-6 of the original code's (this package's: 2.9e-6), the pooled output within
2.6e-7. The converted tensors are exact both ways.
"""

from __future__ import annotations

import argparse
import os

import keras
import keras_hub
import numpy as np
from absl import logging

from bert_tf import file_io
from bert_tf.config import BertConfig
from bert_tf.data import tokenization
from bert_tf.errors import BertTfError, run_script
from bert_tf.models.modeling import BertModel, shares_layers
from bert_tf.training import checkpoint

# What keras-hub's save_to_preset writes (preset_utils' file names): a folder holding these
# alone is an earlier preset, which a conversion replaces.
PRESET_ENTRIES = frozenset({"config.json", "model.weights.h5", "model.weights.json",
                            "metadata.json", "tokenizer.json", "preprocessor.json",
                            "task.json", "task.weights.h5", "assets", "README.md"})


class ConversionError(BertTfError, ValueError):
    """A model that the other layout cannot hold."""


def bert_config(backbone: keras_hub.models.BertBackbone) -> BertConfig:
    """The Google `bert_config.json` fields of a keras-hub backbone."""
    return BertConfig(
        vocab_size=backbone.vocabulary_size, hidden_size=backbone.hidden_dim,
        num_hidden_layers=backbone.num_layers, num_attention_heads=backbone.num_heads,
        intermediate_size=backbone.intermediate_dim, hidden_act="gelu",
        hidden_dropout_prob=backbone.dropout, attention_probs_dropout_prob=backbone.dropout,
        max_position_embeddings=backbone.max_sequence_length,
        type_vocab_size=backbone.num_segments)


def backbone_arguments(config: BertConfig, source: str) -> dict:
    """`BertBackbone(**arguments)` for a Google config; ConversionError for what keras-hub's
    BERT cannot be (another activation, ALBERT's shared layers or factorized embeddings)."""
    if config.hidden_act != "gelu":
        raise ConversionError(f"{source}: hidden_act {config.hidden_act!r}; keras-hub's "
                              f"BertBackbone computes 'gelu' (the tanh form) only")
    if shares_layers(config) or getattr(config, "embedding_size", None):
        raise ConversionError(f"{source}: an ALBERT config; keras-hub's BertBackbone has "
                              f"neither shared layers nor factorized embeddings")
    if config.attention_probs_dropout_prob != config.hidden_dropout_prob:
        logging.warning("%s: keras-hub has one dropout rate; using hidden_dropout_prob %s "
                        "for attention too (was %s)", source, config.hidden_dropout_prob,
                        config.attention_probs_dropout_prob)
    return dict(vocabulary_size=config.vocab_size, num_layers=config.num_hidden_layers,
                num_heads=config.num_attention_heads, hidden_dim=config.hidden_size,
                intermediate_dim=config.intermediate_size, dropout=config.hidden_dropout_prob,
                max_sequence_length=config.max_position_embeddings,
                num_segments=config.type_vocab_size)


def variable_pairs(backbone: keras_hub.models.BertBackbone) -> list[tuple[str, keras.Variable]]:
    """(Google name, the backbone's variable) for every encoder variable."""
    def layer(name: str):
        return backbone.get_layer(name)

    pairs = [
        ("bert/embeddings/word_embeddings", layer("token_embedding").embeddings),
        ("bert/embeddings/position_embeddings", layer("position_embedding").position_embeddings),
        ("bert/embeddings/token_type_embeddings", layer("segment_embedding").embeddings),
        ("bert/embeddings/LayerNorm/gamma", layer("embeddings_layer_norm").gamma),
        ("bert/embeddings/LayerNorm/beta", layer("embeddings_layer_norm").beta),
    ]
    for index in range(backbone.num_layers):
        block = layer(f"transformer_layer_{index}")
        attention = block._self_attention_layer
        prefix = f"bert/encoder/layer_{index}/"
        dense_layers = {
            "attention/self/query": attention.query_dense,
            "attention/self/key": attention.key_dense,
            "attention/self/value": attention.value_dense,
            "attention/output/dense": attention.output_dense,
            "intermediate/dense": block._feedforward_intermediate_dense,
            "output/dense": block._feedforward_output_dense,
        }
        for name, dense in dense_layers.items():
            pairs += [(f"{prefix}{name}/kernel", dense.kernel),
                      (f"{prefix}{name}/bias", dense.bias)]
        for name, norm in (("attention/output/LayerNorm", block._self_attention_layer_norm),
                           ("output/LayerNorm", block._feedforward_layer_norm)):
            pairs += [(f"{prefix}{name}/gamma", norm.gamma), (f"{prefix}{name}/beta", norm.beta)]
    pooler = layer("pooled_dense")
    return pairs + [("bert/pooler/dense/kernel", pooler.kernel),
                    ("bert/pooler/dense/bias", pooler.bias)]


def copy_weights(backbone: keras_hub.models.BertBackbone, model: BertModel, *,
                 to_google: bool) -> None:
    """Copies every encoder tensor from one model to the other, reshaped (exact)."""
    ours = checkpoint.model_variables(model)
    pairs = variable_pairs(backbone)
    if sorted(name for name, _ in pairs) != sorted(ours):
        raise ConversionError("the backbone's variables do not map one-to-one onto bert/*: "
                              f"{sorted(set(ours) ^ {name for name, _ in pairs})[:5]}")
    for name, theirs in pairs:
        source, target = (theirs, ours[name]) if to_google else (ours[name], theirs)
        target.assign(np.reshape(keras.ops.convert_to_numpy(source), target.shape))


def keras_hub_to_google(preset_dir: str, out_dir: str) -> str:
    """Converts a keras-hub `BertBackbone` preset to Google's layout.

    Args:
      preset_dir: a keras-hub preset folder (a `BertBackbone`, optionally its tokenizer).
      out_dir: where `bert_config.json`, `bert_model.ckpt` and `vocab.txt` (when the preset
        has a tokenizer) are written.

    Returns:
      The checkpoint prefix, `out_dir/bert_model.ckpt`.
    """
    backbone = keras_hub.models.BertBackbone.from_preset(preset_dir)
    config = bert_config(backbone)
    model = BertModel(config)
    copy_weights(backbone, model, to_google=True)
    file_io.makedirs(out_dir)
    if file_io.exists(os.path.join(preset_dir, "tokenizer.json")):
        vocabulary = keras_hub.models.BertTokenizer.from_preset(preset_dir).get_vocabulary()
        file_io.write_atomically(os.path.join(out_dir, "vocab.txt"),
                                 "".join(token + "\n" for token in vocabulary))
    else:
        logging.warning("%s: no tokenizer.json; no vocab.txt written", preset_dir)
    file_io.write_atomically(os.path.join(out_dir, "bert_config.json"),
                             config.to_json_string())
    return checkpoint.save_checkpoint(model, os.path.join(out_dir, "bert_model.ckpt"))


def google_to_keras_hub(google_dir: str, out_dir: str, do_lower_case: bool = True) -> str:
    """Converts a Google-layout checkpoint to a keras-hub preset.

    Args:
      google_dir: a folder with `bert_config.json`, `vocab.txt` and a complete checkpoint.
      out_dir: the preset folder to write (a `BertBackbone` and a `BertTokenizer`),
        replaced as a whole.
      do_lower_case: the tokenizer's `lowercase`.

    Returns:
      `out_dir`.
    """
    config_file = os.path.join(google_dir, "bert_config.json")
    config = BertConfig.from_json_file(config_file)
    model = BertModel(config)
    checkpoint.require_complete(checkpoint.load_checkpoint(model, google_dir))
    backbone = keras_hub.models.BertBackbone(**backbone_arguments(config, config_file))
    copy_weights(backbone, model, to_google=False)
    vocab_file = os.path.join(google_dir, "vocab.txt")
    tokenizer = None
    if file_io.exists(vocab_file):
        vocabulary = list(tokenization.load_vocab(vocab_file))
        tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary,
                                                   lowercase=do_lower_case)

    def write(folder: str) -> None:
        backbone.save_to_preset(folder)
        if tokenizer is not None:
            tokenizer.save_to_preset(folder)

    return file_io.write_folder_atomically(out_dir, write, PRESET_ENTRIES, "output_dir")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Convert BERT: Google <-> keras-hub preset.")
    parser.add_argument("direction", choices=["to_google", "to_keras_hub"])
    parser.add_argument("source")
    parser.add_argument("output_dir")
    parser.add_argument("--cased", action="store_true",
                        help="to_keras_hub: a cased vocabulary (the tokenizer keeps case)")
    args = parser.parse_args(argv)

    def convert() -> None:
        if args.direction == "to_google":
            with file_io.holding_output(os.path.join(args.output_dir, ""), "output_dir"):
                print(f"wrote {keras_hub_to_google(args.source, args.output_dir)}")
            return
        with file_io.holding_export(args.output_dir, "output_dir", PRESET_ENTRIES):
            print(f"wrote {google_to_keras_hub(args.source, args.output_dir, not args.cased)}")

    run_script("keras_hub_conversion", convert)


if __name__ == "__main__":
    main()
