"""One function from flags to a tf.distribute strategy.

- `use_tpu` (the original flag) or `distribution_strategy="tpu"`: a `TPUClusterResolver` from
  `tpu_name` (or `master`), `tpu_zone`, `gcp_project`, then `TPUStrategy`.
- `"mirrored"`: `MirroredStrategy` over the local GPUs; with `num_cpu_devices > 1` over that
  many logical CPU devices instead (CPU hosts, and how the tests run it on 2 cores).
- `"multi_worker"`: `MultiWorkerMirroredStrategy`; the cluster comes from `TF_CONFIG`.
- `"one_device"`: the first GPU, else the CPU.
- `""` (default): TPU when `use_tpu`, else TensorFlow's default strategy (one device).
"""

from __future__ import annotations

import json
import os

import tensorflow as tf
from absl import logging

from bert_tf.errors import BertTfError
from bert_tf.options import STRATEGIES


class DistributionError(BertTfError, ValueError):
    """Flags that do not describe a usable strategy."""


def get_strategy(
    distribution_strategy: str = "",
    *,
    use_tpu: bool = False,
    tpu_name: str | None = None,
    tpu_zone: str | None = None,
    gcp_project: str | None = None,
    master: str | None = None,
    num_cpu_devices: int = 0,
) -> tf.distribute.Strategy:
    """The strategy the flags ask for (see the module docstring)."""
    if distribution_strategy not in STRATEGIES:
        raise DistributionError(
            f"distribution_strategy: unknown {distribution_strategy!r}; expected one of "
            f"{', '.join(repr(s) for s in STRATEGIES)}"
        )
    if use_tpu and distribution_strategy not in ("", "tpu"):
        raise DistributionError(
            f"use_tpu=True contradicts distribution_strategy={distribution_strategy!r}"
        )
    if use_tpu or distribution_strategy == "tpu":
        return tpu_strategy(tpu_name or master, tpu_zone, gcp_project)
    if distribution_strategy == "mirrored":
        if num_cpu_devices > 1:
            return tf.distribute.MirroredStrategy(split_cpu(num_cpu_devices))
        return tf.distribute.MirroredStrategy()
    if distribution_strategy == "multi_worker":
        if "TF_CONFIG" in os.environ:
            try:
                json.loads(os.environ["TF_CONFIG"])
            except json.JSONDecodeError as error:
                raise DistributionError(f"TF_CONFIG is not valid JSON: {error}") from None
        else:
            logging.warning("multi_worker without TF_CONFIG: this process is the only worker")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if distribution_strategy == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    return tf.distribute.get_strategy()


def tpu_strategy(tpu: str | None, zone: str | None, project: str | None) -> tf.distribute.Strategy:
    """Resolves, connects to and initializes the TPU system, then returns a TPUStrategy."""
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=tpu, zone=zone, project=project
        )
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise DistributionError(
            f"use_tpu: cannot reach the TPU (tpu_name={tpu!r}, tpu_zone={zone!r}, "
            f"gcp_project={project!r}): {error}"
        ) from None
    return tf.distribute.TPUStrategy(resolver)


def split_cpu(count: int) -> list[str]:
    """Splits the host CPU into `count` logical devices (before TensorFlow initializes its
    devices) and returns their names."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    existing = tf.config.get_logical_device_configuration(cpu)
    if not existing or len(existing) != count:
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * count
            )
        except RuntimeError as error:
            raise DistributionError(
                f"num_cpu_devices={count}: the CPU must be split before TensorFlow starts "
                f"running ops ({error})"
            ) from None
    return [f"/cpu:{index}" for index in range(count)]
