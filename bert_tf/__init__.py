"""bert-tf: Google's BERT on TensorFlow 2 / Keras 3, with the original's checkpoints and numbers."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bert_tf import checkpoint, tokenization  # noqa: E402
from bert_tf.config import BertConfig, BertConfigError  # noqa: E402
from bert_tf.heads import BertPretrainer  # noqa: E402
from bert_tf.modeling import BertModel  # noqa: E402

__all__ = [
    "BertConfig",
    "BertConfigError",
    "BertModel",
    "BertPretrainer",
    "checkpoint",
    "tokenization",
]
