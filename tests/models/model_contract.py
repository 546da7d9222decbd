"""The contract every model of the package keeps, as one check a new head's test calls:

- it builds from a BertConfig, with variable paths in Google's layout (the expected head
  variables, everything else under `bert/`);
- its outputs have the documented shapes;
- saved as a Google-layout checkpoint and loaded into a fresh model, it gives identical
  outputs, and the checkpoint holds exactly the model's variables; the same through a
  `.keras` file and `keras.models.load_model`;
- an encoder-only checkpoint leaves exactly `HEAD_VARIABLES` missing (what fine-tuning
  may add).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from bert_tf.training import checkpoint


def tiny_batch(config, batch: int = 2, seq: int = 8, seed: int = 0, **extra) -> dict:
    """Random ids, a mask with padding in the first row, two segments; plus `extra`."""
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, seq), "int32")
    mask[0, seq // 2:] = 0
    return {
        "input_ids": rng.integers(0, config.vocab_size, (batch, seq)).astype("int32"),
        "input_mask": mask,
        "segment_ids": np.repeat([[0] * (seq // 2) + [1] * (seq - seq // 2)], batch, 0),
        **extra,
    }


def named_outputs(outputs) -> dict:
    """A model's outputs as a dict: a lone tensor (the classifiers' logits) as "logits"."""
    return outputs if isinstance(outputs, dict) else {"logits": outputs}


def check_model_contract(make_model: Callable, inputs: dict, head_paths: dict[str, tuple],
                         output_shapes: dict[str, tuple], tmp_path) -> None:
    """`make_model()` -> a fresh model. `head_paths`: variable path -> shape of every
    variable outside `bert/`. `output_shapes`: output name -> shape on `inputs`."""
    model = make_model()
    shapes = {variable.path: tuple(variable.shape) for variable in model.weights}
    outside_bert = {path: shape for path, shape in shapes.items()
                    if not path.startswith("bert/")}
    assert outside_bert == head_paths
    assert "bert/encoder/layer_0/attention/self/query/kernel" in shapes
    outputs = named_outputs(model(inputs))
    assert {name: tuple(outputs[name].shape) for name in output_shapes} == output_shapes

    prefix = checkpoint.save_checkpoint(model, str(tmp_path / "model.ckpt"))
    assert checkpoint.list_variables(prefix) == {path: list(s) for path, s in shapes.items()}
    again = make_model()
    checkpoint.require_complete(checkpoint.load_checkpoint(again, prefix))
    keras_file = str(tmp_path / "model.keras")
    model.save(keras_file)
    from_keras_file = keras.models.load_model(keras_file)
    assert type(from_keras_file) is type(model)
    for reloaded in (named_outputs(again(inputs)), named_outputs(from_keras_file(inputs))):
        for name in output_shapes:
            np.testing.assert_array_equal(np.asarray(outputs[name]), np.asarray(reloaded[name]))

    encoder_only = checkpoint.save_tensors(str(tmp_path / "encoder.ckpt"), {
        path: variable.numpy() for path, variable in
        ((v.path, v) for v in model.weights) if path.startswith("bert/")
    })
    report = checkpoint.load_checkpoint(make_model(), encoder_only)
    assert sorted(report.missing) == sorted(head_paths)
    head = tuple(getattr(model, "HEAD_VARIABLES", ()))
    assert all(name.startswith(head) for name in report.missing)
