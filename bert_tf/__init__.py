"""bert-tf: Google's BERT on TensorFlow 2 / Keras 3, with the original's checkpoints and numbers.

The names below are imported on first use, so `import bert_tf.data.tokenization` or the data
scripts do not pay for importing TensorFlow and Keras.
"""

import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow's pooling (BFC) allocator for host memory instead of malloc: a training step
# allocates tensors of tens of MB (the masked-LM head's [B*P, V] logits and their gradients,
# XLA's temporary buffer), which malloc gives back to the system and page-faults in again
# on every step. Pooled, the XLA step is ~25% faster and steady from run to run, the graph
# step a few % (docs/BENCHMARKS.md, issue 17); prediction is no slower within this
# machine's noise (measured again for issue 15). Read when TensorFlow creates its
# CPU device, so it applies where bert_tf is imported first; TF_CPU_ALLOCATOR_USE_BFC=false
# turns it off.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

_EXPORTS = {
    "BertConfig": "bert_tf.config",
    "BertConfigError": "bert_tf.config",
    "BertModel": "bert_tf.models.modeling",
    "BertPreprocessor": "bert_tf.text.preprocessing",
    "BertPretrainer": "bert_tf.models.heads",
    "checkpoint": "bert_tf.training.checkpoint",  # modules, as the README uses them
    "tokenization": "bert_tf.data.tokenization",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'bert_tf' has no attribute {name!r}")
    module = importlib.import_module(_EXPORTS[name])
    return module if module.__name__.endswith(f".{name}") else getattr(module, name)
