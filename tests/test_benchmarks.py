"""The GPU benchmark's CPU dry run (bench/gpu.sh), so the script cannot rot without a GPU,
and the FLOP count its MFU figures rest on."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))


def test_model_flops_count_every_matmul_of_bert_base():
    """BERT-Base at 128 with 20 predictions: 6 x 85.0M encoder parameters x 128 positions,
    attention 12 x 12 x 128^2 x 768, pooler + NSP, and the masked-LM head on 20 positions."""
    import bench_training

    from bert_tf import BertConfig

    config = BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12,
                        num_attention_heads=12, intermediate_size=3072)
    encoder = 12 * (4 * 768 * 768 + 4 * 768 + 2 * 768 * 3072 + 3072 + 768 + 4 * 768)
    assert encoder == 85_054_464  # BERT-Base's 110M less its 23.8M embeddings and pooler
    expected = (6 * encoder * 128 + 6 * (768 * 768 + 3 * 768 + 2)
                + 12 * 12 * 128 * 128 * 768 + 6 * 20 * (768 * 768 + 768 * 30522))
    assert bench_training.model_flops(config, 128) == expected


@pytest.mark.slow
def test_gpu_benchmark_dry_run_on_the_cpu():
    result = subprocess.run(["bash", "bench/gpu.sh", "--dry_run"], cwd=REPO, text=True,
                            capture_output=True, timeout=600,
                            env={**os.environ, "PYTHON": sys.executable})
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 3 * 2  # header, 3 precisions x XLA off/on
    assert "matmul peak" in result.stdout and "bucketed" in result.stdout


def test_side_by_side_ratios_pair_rounds_and_skip_failed_ones(capsys):
    """A ratio to the original is the median of per-round ratios: a slow round slows both
    sides of its pair; a round where the original failed to run drops out."""
    import types

    import bench_training

    rates = {"fp32 tf.function": [10.0, 20.0, 30.0],
             bench_training.ORIGINAL: [5.0, None, 20.0],
             bench_training.ORIGINAL_POOLED: [10.0, 10.0, 10.0],
             "raw TF graph (reference)": [10.0, 10.0, 10.0]}
    config = types.SimpleNamespace(hidden_size=256, num_hidden_layers=4,
                                   intermediate_size=1024, vocab_size=30522)
    args = types.SimpleNamespace(shape="tiny", batch=16, seq=128, steps=10, rounds=3)
    bench_training.print_table(rates, config, args, {"": 1e11, "bf16": 1e11})
    row = next(line for line in capsys.readouterr().out.splitlines()
               if line.startswith("| fp32 tf.function"))
    cells = [cell.strip() for cell in row.split("|")[1:-1]]
    # per round vs the original: 2.0, (failed), 1.5 -> median of two = the upper, 2.0
    assert cells[1:6] == ["20.00", "10.00 / 20.00 / 30.00", "2.00", "2.00", "2.00"]
