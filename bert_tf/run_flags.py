"""Flags every training script shares: the original's run/TPU flags and this port's additions.

Original (names and defaults kept): `save_checkpoints_steps`, `iterations_per_loop`,
`use_tpu`, `tpu_name`, `tpu_zone`, `gcp_project`, `master`, `num_tpu_cores`.

Additions (defaults keep the original's behaviour):
- `distribution_strategy` ("" | tpu | mirrored | multi_worker | one_device) and
  `num_cpu_devices` (mirror over that many logical CPU devices);
- `mixed_precision` ("" | bf16 | fp16, the latter with dynamic loss scaling);
- `jit_compile` (XLA-compile every train/eval/predict step);
- `deterministic` (records in file order, seeded, deterministic TF ops) and `seed`;
- `keep_checkpoint_max` (how many `model.ckpt-N` to keep; 0 keeps all);
- `gradient_accumulation_steps` (the same update from slices of each replica's batch).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from absl import flags

from bert_tf import distribution, errors


def define_run_flags() -> None:
    """Defines the shared flags on absl's global FLAGS."""
    flags.DEFINE_integer("save_checkpoints_steps", 1000, "How often to save the model checkpoint.")
    flags.DEFINE_integer("iterations_per_loop", 1000,
                         "How many steps to make in each estimator call.")
    flags.DEFINE_bool("use_tpu", False, "Whether to use TPU or GPU/CPU.")
    flags.DEFINE_string("tpu_name", None, "The Cloud TPU to use for training.")
    flags.DEFINE_string("tpu_zone", None, "GCE zone where the Cloud TPU is located in.")
    flags.DEFINE_string("gcp_project", None, "Project name for the Cloud TPU-enabled project.")
    flags.DEFINE_string("master", None, "[Optional] TensorFlow master URL.")
    flags.DEFINE_integer("num_tpu_cores", 8, "Only used if `use_tpu` is True (the TPU topology "
                         "decides the replica count under TPUStrategy).")
    flags.DEFINE_enum("distribution_strategy", "", list(distribution.STRATEGIES),
                      "'' (TPU if use_tpu, else one device), tpu, mirrored, multi_worker "
                      "(TF_CONFIG) or one_device.")
    flags.DEFINE_integer("num_cpu_devices", 0, "With mirrored: split the CPU into this many "
                         "logical devices and mirror over them.")
    flags.DEFINE_enum("mixed_precision", "", ["", "bf16", "fp16"],
                      "Compute in bfloat16 or float16 (float32 variables; fp16 scales the loss).")
    flags.DEFINE_bool("jit_compile", False, "XLA-compile every train/eval/predict step.")
    flags.DEFINE_bool("deterministic", False, "Read records in file order without shuffling, "
                      "fix seeds and make TF ops deterministic.")
    flags.DEFINE_integer("seed", None, "Random seed (Python, NumPy, TF, Keras, tf.data).")
    flags.DEFINE_integer("keep_checkpoint_max", 5, "Checkpoints to keep (0: all).")
    flags.DEFINE_integer("gradient_accumulation_steps", 1, "Split each replica's batch into "
                         "this many slices and apply their summed gradient (same update, "
                         "less memory).")


def strategy_from_flags(values: flags.FlagValues):
    """The tf.distribute strategy the shared flags describe."""
    return distribution.get_strategy(
        values.distribution_strategy, use_tpu=values.use_tpu, tpu_name=values.tpu_name,
        tpu_zone=values.tpu_zone, gcp_project=values.gcp_project, master=values.master,
        num_cpu_devices=values.num_cpu_devices,
    )


def options_from_flags(options_class, values: flags.FlagValues):
    """An options dataclass filled from the flags of the same names."""
    names = [field.name for field in dataclasses.fields(options_class)]
    return options_class(**{name: values[name].value for name in names})


def run_job(script: str, options_class, run: Callable, values: flags.FlagValues) -> None:
    """The main of a training script: flags -> options -> strategy -> `run(options,
    strategy)`, holding the output folder (errors.run_script reports failures)."""

    def main():
        from bert_tf import training

        options = options_from_flags(options_class, values)
        strategy = strategy_from_flags(values)
        with training.output_folder(strategy, options.output_dir):
            run(options, strategy)

    errors.run_script(script, main)
