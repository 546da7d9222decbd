"""Job options: one dataclass per script, the only place its flags are declared.

Each field is the absl flag of the same name: `option(default, help)` gives its default
and help text, `choices=` makes it an enum flag, `required=True` a flag the script insists
on. A script defines its flags from its class (`define_flags`) and reads them back into it
(`from_flags`), so a flag exists only where a job reads it, and the flags the scripts
share are declared once, in the base classes below:

- `JobOptions`: the base of every job's options (create_pretraining_data.py's too);
- `DeviceOptions`: where to run (the original's TPU flags, `distribution_strategy`,
  `num_cpu_devices`) and `jit_compile`;
- `TrainingOptions`: what every training script has (checkpoints, batch, optimizer,
  precision, determinism, checkpoint rotation, gradient accumulation);
- `FineTuningOptions`: what run_classifier.py and run_squad.py add (vocabulary, epochs,
  warmup proportion, predict batch).

The original flags keep their names, defaults and help; additions default to the
original's behaviour. This module imports nothing of the package: it is the bottom layer
every job builds on (jobs/script.py turns flags into options and runs a job).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence

from absl import flags

# distribution_strategy values (distribution.get_strategy makes them).
STRATEGIES = ("", "tpu", "mirrored", "multi_worker", "one_device")


def option(default=None, help: str = "", *, choices: Sequence[str] | None = None,  # noqa: A002
           required: bool = False):
    """A dataclass field that is also a flag (see the module docstring)."""
    metadata = {"help": help, "choices": choices, "required": required}
    if required:
        return dataclasses.field(metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)



def bucketing_option(default: str = "eval", changes: str = ""):
    """The `--bucketing` flag of every script that batches fine-tuning inputs
    (bucketing.py). A script's default reproduces the original's outputs: where bucketing
    can change one (`changes` says what), the default is "none" and bucketing is opt-in."""
    return option(default, "Pad each batch only to its length bucket (a multiple of "
                           "max_seq_length / 8), not to max_seq_length: none (the original), "
                           "eval (evaluation and prediction) or all (training too)." + changes,
                  choices=("none", "eval", "all"))


@dataclasses.dataclass(kw_only=True)
class JobOptions:
    """The base of every job's options."""


@dataclasses.dataclass(kw_only=True)
class DeviceOptions(JobOptions):
    """Where a job runs: the original's TPU flags and this port's strategies."""

    use_tpu: bool = option(False, "Whether to use TPU or GPU/CPU.")
    tpu_name: str | None = option(None, "The Cloud TPU to use for training.")
    tpu_zone: str | None = option(None, "GCE zone where the Cloud TPU is located in.")
    gcp_project: str | None = option(None, "Project name for the Cloud TPU-enabled project.")
    master: str | None = option(None, "[Optional] TensorFlow master URL.")
    num_tpu_cores: int = option(8, "Only used if `use_tpu` is True (the TPU topology decides "
                                   "the replica count under TPUStrategy; a different count "
                                   "is reported).")
    distribution_strategy: str = option(
        "", "'' (TPU if use_tpu, else one device), tpu, mirrored, multi_worker (TF_CONFIG) or "
        "one_device.", choices=STRATEGIES)
    num_cpu_devices: int = option(0, "With mirrored: split the CPU into this many logical "
                                     "devices and mirror over them.")
    jit_compile: bool = option(False, "XLA-compile every train/eval/predict step.")


@dataclasses.dataclass(kw_only=True)
class TrainingOptions(DeviceOptions):
    """The flags every training script has (run_pretraining, run_classifier, run_squad)."""

    bert_config_file: str = option(help="The config json file of the pre-trained model.",
                                   required=True)
    output_dir: str = option(help="The output directory for checkpoints and results.",
                             required=True)
    init_checkpoint: str | None = option(
        None, "Initial checkpoint (usually a pre-trained model).")
    max_seq_length: int = option(128, "Maximum total input sequence length.")
    do_train: bool = option(False, "Whether to run training.")
    train_batch_size: int = option(32, "Total batch size for training.")
    learning_rate: float = option(5e-5, "The initial learning rate for Adam.")
    save_checkpoints_steps: int = option(1000, "How often to save the model checkpoint.")
    iterations_per_loop: int = option(1000, "How many steps to make in each estimator call.")
    # Additions.
    optimizer: str = option("adamw", "AdamWeightDecay (original) or LAMB.",
                            choices=("adamw", "lamb"))
    mixed_precision: str = option("", "Compute in bfloat16 or float16 (float32 variables; "
                                      "fp16 scales the loss).", choices=("", "bf16", "fp16"))
    deterministic: bool = option(False, "Read records in file order without shuffling, fix "
                                        "seeds and make TF ops deterministic.")
    seed: int | None = option(None, "Random seed (Python, NumPy, TF, Keras, tf.data).")
    keep_checkpoint_max: int = option(5, "Checkpoints to keep (0: all).")
    gradient_accumulation_steps: int = option(
        1, "Split each replica's batch into this many slices and apply their summed gradient "
        "(same update, less memory).")
    gradient_checkpointing: bool = option(
        False, "Recompute each transformer layer's activations in the backward pass instead "
        "of keeping them (same gradients, less memory, about a third more compute).")


@dataclasses.dataclass(kw_only=True)
class FineTuningOptions(TrainingOptions):
    """What the fine-tuning scripts add to the training flags."""

    vocab_file: str = option(help="The vocabulary file that the BERT model was trained on.",
                             required=True)
    do_lower_case: bool = option(True, "Whether to lower case the input text.")
    predict_batch_size: int = option(8, "Total batch size for predict.")
    num_train_epochs: float = option(3.0, "Total number of training epochs to perform.")
    warmup_proportion: float = option(0.1, "Proportion of training for linear warmup.")
    bucketing: str = bucketing_option()


def _flag_type(hint) -> type:
    """`str | None` -> str; `int` -> int."""
    kinds = [kind for kind in typing.get_args(hint) if kind is not type(None)] or [hint]
    return kinds[0]


_DEFINE = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer, float: flags.DEFINE_float,
           str: flags.DEFINE_string}


def define_flags(options_class: type, values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines one absl flag per field of `options_class` on `values`."""
    hints = typing.get_type_hints(options_class)
    for field in dataclasses.fields(options_class):
        help_text, choices = field.metadata["help"], field.metadata["choices"]
        default = None if field.default is dataclasses.MISSING else field.default
        if choices:
            flags.DEFINE_enum(field.name, default, list(choices), help_text, flag_values=values)
        else:
            define = _DEFINE[_flag_type(hints[field.name])]
            define(field.name, default, help_text, flag_values=values)
        if field.metadata["required"]:
            flags.mark_flag_as_required(field.name, flag_values=values)


def from_flags(options_class: type, values: flags.FlagValues = flags.FLAGS):
    """An `options_class` filled from the parsed flags of the same names."""
    names = [field.name for field in dataclasses.fields(options_class)]
    return options_class(**{name: values[name].value for name in names})
