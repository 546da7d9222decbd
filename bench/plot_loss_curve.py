"""Plots the training loss (and learning rate) that run_pretraining.py logged to TensorBoard.

    .venv/bin/python bench/plot_loss_curve.py OUTPUT_DIR docs/pretraining_loss.png [--title T]

Needs the `bench` extra (matplotlib).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def read_scalars(output_dir: str, tag: str) -> tuple[list[int], list[float]]:
    import tensorflow as tf

    values = {}
    for path in sorted(Path(output_dir).glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == tag:
                    values[event.step] = float(tf.make_ndarray(value.tensor))
    steps = sorted(values)
    return steps, [values[step] for step in steps]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("output_dir")
    parser.add_argument("png")
    parser.add_argument("--title", default="run_pretraining.py: training loss")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, losses = read_scalars(args.output_dir, "loss")
    rate_steps, rates = read_scalars(args.output_dir, "learning_rate")
    figure, loss_axis = plt.subplots(figsize=(7, 4), dpi=100)
    loss_axis.plot(steps, losses, color="tab:blue", label="loss (masked LM + NSP)")
    loss_axis.set_xlabel("global step")
    loss_axis.set_ylabel("loss")
    rate_axis = loss_axis.twinx()
    rate_axis.plot(rate_steps, rates, color="tab:gray", linestyle="--", label="learning rate")
    rate_axis.set_ylabel("learning rate")
    loss_axis.set_title(args.title)
    figure.legend(loc="upper right", bbox_to_anchor=(0.88, 0.88))
    figure.tight_layout()
    figure.savefig(args.png)
    print(f"{args.png}: {len(steps)} points, loss {losses[0]:.3f} -> {losses[-1]:.3f}")


if __name__ == "__main__":
    main()
