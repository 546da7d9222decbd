"""The original optimizer: AdamWeightDecay with a warmup / linear-decay schedule; and LAMB.

As the original `optimization.py`:
- learning rate: `init_lr * step / num_warmup_steps` while `step < num_warmup_steps`, else
  `init_lr * (1 - min(step, num_train_steps) / num_train_steps)` (polynomial decay, power 1,
  to 0), where `step` is the global step *before* the update (so step 0 has rate 0);
- Adam without bias correction: `m = b1 m + (1-b1) g`, `v = b2 v + (1-b2) g^2`,
  `update = m / (sqrt(v) + eps) (+ decay * w)`, `w -= lr * update`;
- decoupled weight decay 0.01 except for variables whose name contains `LayerNorm`,
  `layer_norm` or `bias`;
- slots saved as `<var>/adam_m` and `<var>/adam_v`.

Gradient clipping to global norm 1.0 is done by the training driver after gradients are
summed over replicas (`clip_by_global_norm`), so that N replicas clip what one device would.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import keras
from keras import ops

from bert_tf.errors import UsageError

EXCLUDE_FROM_WEIGHT_DECAY = ("LayerNorm", "layer_norm", "bias")


class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to `init_lr` over `num_warmup_steps`, then linear decay to 0 at
    `num_train_steps` (decay measured from step 0, as the original)."""

    def __init__(self, init_lr: float, num_train_steps: int, num_warmup_steps: int = 0):
        if num_train_steps <= 0:
            raise UsageError(f"num_train_steps must be positive, got {num_train_steps}")
        if num_warmup_steps < 0:
            raise UsageError(f"num_warmup_steps must be >= 0, got {num_warmup_steps}")
        self.init_lr = float(init_lr)
        self.num_train_steps = int(num_train_steps)
        self.num_warmup_steps = int(num_warmup_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        done = ops.minimum(step, float(self.num_train_steps)) / float(self.num_train_steps)
        decayed = self.init_lr * (1.0 - done)
        if not self.num_warmup_steps:
            return decayed
        warmup = self.init_lr * (step / float(self.num_warmup_steps))
        return ops.where(step < float(self.num_warmup_steps), warmup, decayed)

    def get_config(self) -> dict:
        return {
            "init_lr": self.init_lr,
            "num_train_steps": self.num_train_steps,
            "num_warmup_steps": self.num_warmup_steps,
        }


def clip_by_global_norm(gradients: list, clip_norm: float = 1.0) -> tuple[list, object]:
    """Scales all gradients by `clip_norm / max(global_norm, clip_norm)`, as
    `tf.clip_by_global_norm`. Returns (clipped gradients, the global norm before clipping)."""
    norm = ops.sqrt(sum(ops.sum(ops.square(g)) for g in gradients))
    scale = clip_norm * ops.minimum(1.0 / norm, 1.0 / clip_norm)
    return [g * scale for g in gradients], norm


class AdamWeightDecay(keras.optimizers.Optimizer):
    """The original BERT optimizer (Adam without bias correction, decoupled weight decay)."""

    def __init__(
        self,
        learning_rate,
        *,
        weight_decay_rate: float = 0.01,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-6,
        exclude_from_weight_decay: Sequence[str] = EXCLUDE_FROM_WEIGHT_DECAY,
        name: str = "AdamWeightDecay",
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.weight_decay_rate = weight_decay_rate
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.exclude_from_weight_decay = tuple(exclude_from_weight_decay)

    def uses_weight_decay(self, variable_name: str) -> bool:
        """False for names matching one of `exclude_from_weight_decay` (as `re.search`)."""
        if not self.weight_decay_rate:
            return False
        patterns = self.exclude_from_weight_decay
        return not any(re.search(pattern, variable_name) for pattern in patterns)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        # Keras' own variable names cannot hold "/"; `slot_variables` gives checkpoint names.
        self.adam_m = [self.add_variable_from_reference(v, "adam_m") for v in variables]
        self.adam_v = [self.add_variable_from_reference(v, "adam_v") for v in variables]
        self._variable_paths = [v.path for v in variables]
        self._decays = [self.uses_weight_decay(v.path) for v in variables]

    # Under a tf.distribute strategy, Keras optimizers sum the replicas' gradients when
    # applying them, and so does this one in `fit`. The training driver sums (and clips)
    # them itself, as one device would, and turns this off.
    sums_replica_gradients = True

    def _all_reduce_sum_gradients(self, grads_and_vars):
        if self.sums_replica_gradients:
            return super()._all_reduce_sum_gradients(grads_and_vars)
        return grads_and_vars

    def slot_variables(self) -> dict[str, keras.Variable]:
        """`<var>/adam_m` and `<var>/adam_v` -> slot variable, the original checkpoint names."""
        slots = {}
        for path, m, v in zip(self._variable_paths, self.adam_m, self.adam_v, strict=True):
            slots[f"{path}/adam_m"] = m
            slots[f"{path}/adam_v"] = v
        return slots

    def _moments(self, gradient, variable):
        index = self._get_variable_index(variable)
        m, v = self.adam_m[index], self.adam_v[index]
        gradient = ops.cast(gradient, variable.dtype)
        next_m = self.beta_1 * m + (1.0 - self.beta_1) * gradient
        next_v = self.beta_2 * v + (1.0 - self.beta_2) * ops.square(gradient)
        self.assign(m, next_m)
        self.assign(v, next_v)
        return index, next_m, next_v

    def update_step(self, gradient, variable, learning_rate):
        index, next_m, next_v = self._moments(gradient, variable)
        update = next_m / (ops.sqrt(next_v) + self.epsilon)
        if self._decays[index]:
            update = update + self.weight_decay_rate * variable
        self.assign_sub(variable, ops.cast(learning_rate, variable.dtype) * update)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            weight_decay_rate=self.weight_decay_rate,
            beta_1=self.beta_1,
            beta_2=self.beta_2,
            epsilon=self.epsilon,
            exclude_from_weight_decay=list(self.exclude_from_weight_decay),
        )
        return config


class Lamb(AdamWeightDecay):
    """LAMB (You et al. 2019): Adam with bias correction and weight decay, each variable's
    update rescaled by the trust ratio `||w|| / ||update||` (1 where either norm is 0, and for
    the variables excluded from weight decay, as in the paper's BERT setup)."""

    def __init__(self, learning_rate, name: str = "Lamb", **kwargs):
        super().__init__(learning_rate, name=name, **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        index, next_m, next_v = self._moments(gradient, variable)
        step = ops.cast(self.iterations + 1, variable.dtype)
        m_hat = next_m / (1.0 - ops.power(self.beta_1, step))
        v_hat = next_v / (1.0 - ops.power(self.beta_2, step))
        update = m_hat / (ops.sqrt(v_hat) + self.epsilon)
        if self._decays[index]:
            update = update + self.weight_decay_rate * variable
            weight_norm = ops.sqrt(ops.sum(ops.square(variable)))
            update_norm = ops.sqrt(ops.sum(ops.square(update)))
            trust_ratio = ops.where(
                (weight_norm > 0) & (update_norm > 0), weight_norm / update_norm, 1.0
            )
            update = trust_ratio * update
        self.assign_sub(variable, ops.cast(learning_rate, variable.dtype) * update)


def create_optimizer(
    init_lr: float,
    num_train_steps: int,
    num_warmup_steps: int,
    optimizer: str = "adamw",
    **keras_options,
) -> AdamWeightDecay:
    """The original `create_optimizer` (minus the train op): schedule + optimizer by name.

    Args:
      init_lr: the peak learning rate, reached after the warm-up.
      num_train_steps: steps to the end of the linear decay (the rate is 0 from there).
      num_warmup_steps: steps of linear warm-up from 0.
      optimizer: "adamw" (the original's AdamWeightDecay) or "lamb".
      **keras_options: passed to the Keras optimizer, e.g. `global_clipnorm=1.0` for `fit`
        (the training loop clips by itself).

    Returns:
      The optimizer, with the original's weight decay (0.01, not on LayerNorm or biases),
      betas and epsilon.
    """
    schedule = WarmupLinearDecay(init_lr, num_train_steps, num_warmup_steps)
    if optimizer == "adamw":
        return AdamWeightDecay(schedule, **keras_options)
    if optimizer == "lamb":
        return Lamb(schedule, **keras_options)
    raise UsageError(f"optimizer must be 'adamw' or 'lamb', got {optimizer!r}")
