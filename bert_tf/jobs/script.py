"""Every script's entry: flags -> options -> strategy -> output lock -> run -> one-line errors.

    if __name__ == "__main__":
        script.main("run_classifier.py", ClassifierOptions, run, stages.hold_output_dir)

The flags are the fields of the options class (options.py). A job whose options are
`DeviceOptions` runs as `run(options, strategy)` on the strategy they describe, any other
as `run(options)`. `output_lock(options[, strategy])`, when given, is held around the run
(a training job holds its `output_dir`, an export its `export_dir`). This module imports no
TensorFlow: the data script starts without it, and the strategy is made on first use.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from absl import app, logging

from bert_tf import errors
from bert_tf.options import DeviceOptions, define_flags, from_flags


def main(script: str, options_class: type, run: Callable,
         output_lock: Callable[..., contextlib.AbstractContextManager] | None = None) -> None:
    """A script's `__main__` (see the module docstring); the package's errors become a
    one-line exit (errors.run_script)."""
    define_flags(options_class)

    def job() -> None:
        options = from_flags(options_class)
        if not isinstance(options, DeviceOptions):
            with output_lock(options) if output_lock else contextlib.nullcontext():
                run(options)
            return
        strategy = make_strategy(options)
        with output_lock(options, strategy) if output_lock else contextlib.nullcontext():
            run(options, strategy)

    app.run(lambda argv: errors.run_script(script, job))


def make_strategy(options: DeviceOptions):
    """The tf.distribute strategy the device flags describe."""
    from bert_tf.training import distribution  # TensorFlow: only jobs that run on devices

    strategy = distribution.get_strategy(
        options.distribution_strategy, use_tpu=options.use_tpu, tpu_name=options.tpu_name,
        tpu_zone=options.tpu_zone, gcp_project=options.gcp_project, master=options.master,
        num_cpu_devices=options.num_cpu_devices,
    )
    replicas = strategy.num_replicas_in_sync
    if options.use_tpu and options.num_tpu_cores != replicas:
        logging.warning("num_tpu_cores=%d, but the TPU has %d cores: all %d are used",
                        options.num_tpu_cores, replicas, replicas)
    return strategy
