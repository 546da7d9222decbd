"""The optimizer and schedule against the original's formulas (numpy re-statements)."""

import keras
import numpy as np
import pytest

from bert_tf.training.optimization import (
    AdamWeightDecay,
    Lamb,
    WarmupLinearDecay,
    clip_by_global_norm,
    create_optimizer,
)


def test_schedule_warmup_then_linear_decay_from_step_zero():
    schedule = WarmupLinearDecay(1e-3, num_train_steps=8, num_warmup_steps=3)
    rates = [float(schedule(step)) for step in range(10)]
    # Warmup: 0, 1/3, 2/3 of init_lr; then (1 - step/8) * init_lr, 0 from step 8 on.
    expected = [0.0, 1e-3 / 3, 2e-3 / 3, 1e-3 * 5 / 8, 1e-3 * 4 / 8, 1e-3 * 3 / 8,
                1e-3 * 2 / 8, 1e-3 / 8, 0.0, 0.0]
    np.testing.assert_allclose(rates, expected, rtol=1e-6, atol=1e-12)
    no_warmup = WarmupLinearDecay(2.0, num_train_steps=4)
    assert [float(no_warmup(s)) for s in range(5)] == [2.0, 1.5, 1.0, 0.5, 0.0]


def test_schedule_rejects_bad_steps():
    with pytest.raises(ValueError, match="num_train_steps"):
        WarmupLinearDecay(1e-3, 0)
    with pytest.raises(ValueError, match="num_warmup_steps"):
        WarmupLinearDecay(1e-3, 10, -1)


def _variables():
    rng = np.random.default_rng(0)
    variables = []
    for scope, name in [("dense", "kernel"), ("dense", "bias"), ("LayerNorm", "gamma")]:
        with keras.name_scope("layer"), keras.name_scope(scope):
            variables.append(keras.Variable(rng.normal(size=(3, 4)).astype("float32"), name=name))
    assert variables[2].path == "layer/LayerNorm/gamma"
    return variables


def test_adam_weight_decay_matches_the_original_update():
    variables = _variables()
    optimizer = AdamWeightDecay(learning_rate=0.1)
    optimizer.build(variables)
    assert [optimizer.uses_weight_decay(v.path) for v in variables] == [True, False, False]
    assert sorted(optimizer.slot_variables()) == sorted(
        f"{v.path}/{slot}" for v in variables for slot in ("adam_m", "adam_v")
    )
    values = [v.numpy() for v in variables]
    m = [np.zeros_like(v) for v in values]
    s = [np.zeros_like(v) for v in values]
    rng = np.random.default_rng(1)
    for _ in range(3):
        grads = [rng.normal(size=(3, 4)).astype("float32") for _ in variables]
        optimizer.apply(grads, variables)
        for i, g in enumerate(grads):
            m[i] = 0.9 * m[i] + 0.1 * g
            s[i] = 0.999 * s[i] + 0.001 * g * g
            update = m[i] / (np.sqrt(s[i]) + 1e-6)  # no bias correction
            if i == 0:
                update += 0.01 * values[i]
            values[i] = values[i] - 0.1 * update
    for variable, value in zip(variables, values, strict=True):
        np.testing.assert_allclose(variable.numpy(), value, rtol=1e-5, atol=1e-6)
    slots = optimizer.slot_variables()
    np.testing.assert_allclose(slots[f"{variables[0].path}/adam_m"].numpy(), m[0], rtol=1e-5)


def test_lamb_matches_the_paper_update():
    variables = _variables()
    optimizer = Lamb(learning_rate=0.01)
    values = [v.numpy() for v in variables]
    m = [np.zeros_like(v) for v in values]
    s = [np.zeros_like(v) for v in values]
    rng = np.random.default_rng(2)
    for step in range(1, 4):
        grads = [rng.normal(size=(3, 4)).astype("float32") for _ in variables]
        optimizer.apply(grads, variables)
        for i, g in enumerate(grads):
            m[i] = 0.9 * m[i] + 0.1 * g
            s[i] = 0.999 * s[i] + 0.001 * g * g
            update = (m[i] / (1 - 0.9**step)) / (np.sqrt(s[i] / (1 - 0.999**step)) + 1e-6)
            if i == 0:  # decayed and trust-ratio scaled; LayerNorm and bias are neither
                update += 0.01 * values[i]
                update *= np.linalg.norm(values[i]) / np.linalg.norm(update)
            values[i] = values[i] - 0.01 * update
    for variable, value in zip(variables, values, strict=True):
        np.testing.assert_allclose(variable.numpy(), value, rtol=1e-5, atol=1e-6)


def test_clip_by_global_norm_scales_only_above_the_limit():
    grads = [np.array([3.0, 0.0], "float32"), np.array([4.0], "float32")]
    clipped, norm = clip_by_global_norm(grads, 1.0)
    assert float(norm) == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate([np.asarray(g) for g in clipped]), [0.6, 0, 0.8])
    unchanged, _ = clip_by_global_norm(grads, 10.0)
    np.testing.assert_allclose(np.asarray(unchanged[1]), [4.0])


def test_create_optimizer_by_name():
    assert type(create_optimizer(1e-4, 10, 1)) is AdamWeightDecay
    assert type(create_optimizer(1e-4, 10, 1, "lamb")) is Lamb
    with pytest.raises(ValueError, match="adamw"):
        create_optimizer(1e-4, 10, 1, "sgd")
