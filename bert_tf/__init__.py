"""bert-tf: Google's BERT on TensorFlow 2 / Keras 3, with the original's checkpoints and numbers.

The names below are imported on first use, so `import bert_tf.tokenization` or the data
scripts do not pay for importing TensorFlow and Keras.
"""

import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_EXPORTS = {
    "BertConfig": "bert_tf.config",
    "BertConfigError": "bert_tf.config",
    "BertModel": "bert_tf.modeling",
    "BertPretrainer": "bert_tf.heads",
    "checkpoint": None,
    "tokenization": None,
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'bert_tf' has no attribute {name!r}")
    module = importlib.import_module(_EXPORTS[name] or f"bert_tf.{name}")
    return module if _EXPORTS[name] is None else getattr(module, name)
