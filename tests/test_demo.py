import subprocess
import sys


def test_demo_runs_end_to_end(tmp_path):
    """README's first command runs this module; every stage checks its own result."""
    result = subprocess.run(
        [sys.executable, "-m", "bert_tf.demo", f"--output_dir={tmp_path}"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Demo finished" in result.stdout
    assert (tmp_path / "bert_model.ckpt.index").exists()
    assert (tmp_path / "pretraining.tfrecord").stat().st_size > 0
    assert (tmp_path / "pretraining" / "model.ckpt-40.index").exists()
    assert "masked_lm_accuracy" in (tmp_path / "pretraining" / "eval_results.txt").read_text()
    assert "eval_accuracy" in (tmp_path / "classifier" / "eval_results.txt").read_text()
    assert "eval_f1_NP" in (tmp_path / "ner" / "eval_results.txt").read_text()
