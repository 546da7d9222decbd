"""Fast mode of create_pretraining_data.py: shards, parallel workers, determinism, the same
distribution of features as fidelity mode, bounded memory, bad input."""

import hashlib
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO, data_path, fixture_path

from bert_tf.data import pretraining_data as pd
from bert_tf.data import pretraining_shards as ps
from bert_tf.data.tokenization import FullTokenizer

ROOT = REPO
VOCAB = str(fixture_path("minilm_ckpt", "vocab.txt"))


def corpus(tmp_path, lines: int = 12000, name: str = "corpus.txt") -> Path:
    """The first `lines` lines of the real corpus (about 0.7 MB for 12,000)."""
    text = data_path("text", "big.txt").read_text(encoding="utf-8").splitlines()[:lines]
    path = tmp_path / name
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path


def make_fast(inputs, output, workers=2, seed=12345, dupe_factor=2, shard_size_mb=0.1):
    return ps.create_sharded(
        [str(path) for path in inputs], str(output), VOCAB, True,
        pd.InstanceOptions(dupe_factor=dupe_factor), seed=seed, num_workers=workers,
        shard_size_mb=shard_size_mb,
    )


def feature_stats(paths) -> dict:
    """Distribution summaries of the records in `paths`."""
    mask_id = FullTokenizer(VOCAB).vocab["[MASK]"]
    lengths, nsp, masked, kept, replaced, predictions = [], [], 0, 0, 0, 0
    for record in tf.data.TFRecordDataset([str(p) for p in paths]).as_numpy_iterator():
        example = tf.train.Example.FromString(record).features.feature
        ids = np.array(example["input_ids"].int64_list.value)
        count = int(sum(example["masked_lm_weights"].float_list.value))
        positions = np.array(example["masked_lm_positions"].int64_list.value)[:count]
        labels = np.array(example["masked_lm_ids"].int64_list.value)[:count]
        lengths.append(int(sum(example["input_mask"].int64_list.value)))
        nsp.append(example["next_sentence_labels"].int64_list.value[0])
        predictions += count
        masked += int(np.sum(ids[positions] == mask_id))
        kept += int(np.sum(ids[positions] == labels))
        replaced += int(np.sum((ids[positions] != mask_id) & (ids[positions] != labels)))
    lengths = np.array(lengths)
    return {
        "instances": len(lengths),
        "lengths": lengths,
        "masked_per_token": predictions / lengths.sum(),
        "mask": masked / predictions,
        "keep": kept / predictions,
        "random": replaced / predictions,
        "random_next": float(np.mean(nsp)),
    }


def sha256(paths) -> list[str]:
    return [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths]


def test_shards_cut_files_at_blank_lines_and_cover_them(tmp_path):
    path = corpus(tmp_path, 3000)
    data = path.read_bytes()
    shards = ps.plan_shards([str(path)], shard_size_mb=0.05)
    assert len(shards) == len(data) // 50_000 + 1
    assert all(shard.end - shard.start >= 50_000 for shard in shards[:-1])
    assert shards[0].start == 0 and shards[-1].end == len(data)
    for before, after in zip(shards, shards[1:], strict=False):
        assert before.end == after.start
        previous_line = data[: after.start - 1].rsplit(b"\n", 1)[-1]  # the line just cut after
        assert data[after.start - 1 : after.start] == b"\n" and not previous_line.strip()
    assert [s.index for s in shards] == list(range(len(shards)))


def test_output_paths():
    assert ps.output_paths("out/part-%05d.tfrecord", 2) == [
        "out/part-00000.tfrecord", "out/part-00001.tfrecord"]
    assert ps.output_paths("out/", 2) == [
        "out/part-00000-of-00002.tfrecord", "out/part-00001-of-00002.tfrecord"]
    assert ps.output_paths("out/data", 2) == ["out/data-00000-of-00002", "out/data-00001-of-00002"]
    with pytest.raises(pd.PretrainingDataError, match="same name"):
        ps.output_paths("out/part%.0s.tfrecord", 2)
    with pytest.raises(pd.PretrainingDataError, match="%-pattern"):
        ps.output_paths("out/%s-%d", 2)


def test_the_same_bytes_for_a_seed_with_any_number_of_workers(tmp_path):
    path = corpus(tmp_path, 4000)
    first, summaries = make_fast([path], tmp_path / "a/", workers=2)
    one, _ = make_fast([path], tmp_path / "b/", workers=1)
    three, _ = make_fast([path], tmp_path / "c/", workers=3)
    other_seed, _ = make_fast([path], tmp_path / "d/", seed=1)
    assert len(first) == len(ps.plan_shards([str(path)], 0.1)) > 3
    assert sha256(first) == sha256(one) == sha256(three)
    assert sha256(first) != sha256(other_seed)
    assert [s.instances for s in summaries] == [
        sum(1 for _ in tf.data.TFRecordDataset(p)) for p in first]
    assert not list(tmp_path.glob("**/*.incomplete-*"))


def test_same_feature_distribution_as_fidelity_mode(tmp_path):
    """Masking rate, 80/10/10, NSP balance and the length distribution, on 0.7 MB of the
    real corpus: fast mode against the original's algorithm (fidelity mode)."""
    path = corpus(tmp_path)
    tokenizer = FullTokenizer(VOCAB)
    documents, _ = pd.read_documents([str(path)], tokenizer)
    instances = pd.make_instances(documents, list(tokenizer.vocab), pd.InstanceOptions(
        dupe_factor=2), random.Random(12345))
    pd.write_instances(instances, tokenizer, 128, 20, [str(tmp_path / "fidelity.tfrecord")])
    fidelity = feature_stats([tmp_path / "fidelity.tfrecord"])
    fast_paths, _ = make_fast([path], tmp_path / "fast/")
    fast = feature_stats(fast_paths)

    assert fast["instances"] == pytest.approx(fidelity["instances"], rel=0.02)
    assert fast["masked_per_token"] == pytest.approx(fidelity["masked_per_token"], abs=0.002)
    for key in ("mask", "keep", "random"):
        assert fast[key] == pytest.approx(fidelity[key], abs=0.01), key
    assert fast["mask"] == pytest.approx(0.8, abs=0.01)
    assert fast["random_next"] == pytest.approx(fidelity["random_next"], abs=0.03)
    assert fast["lengths"].mean() == pytest.approx(fidelity["lengths"].mean(), rel=0.02)
    grid = np.arange(5, 129)
    cdf = [np.searchsorted(np.sort(s["lengths"]), grid, side="right") / s["instances"]
           for s in (fast, fidelity)]
    assert np.max(np.abs(cdf[0] - cdf[1])) < 0.03  # two-sample KS distance of the lengths


def test_memory_is_bounded_by_a_shard_not_the_corpus(tmp_path):
    """With a fixed shard size, the largest process's peak RSS stays flat when the corpus
    grows four-fold; fidelity mode, which holds the corpus, grows (so the probe can see it)."""
    one = corpus(tmp_path, 12000, "one.txt")
    four = tmp_path / "four.txt"
    four.write_bytes(one.read_bytes() * 4)

    def peak_rss_kb(path: Path, *flags: str) -> int:
        out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
        argv = [sys.executable, "create_pretraining_data.py", "--dupe_factor=2", *flags,
                f"--input_file={path}", f"--output_file={out}/data", f"--vocab_file={VOCAB}"]
        code = (
            f"import resource, subprocess\nsubprocess.run({argv!r}, check=True, "
            "stdout=subprocess.DEVNULL)\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        )
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                                text=True, check=True)
        return int(result.stdout.split()[-1])

    fast = ["--mode=fast", "--num_workers=2", "--shard_size_mb=0.05"]
    fast_one, fast_four = peak_rss_kb(one, *fast), peak_rss_kb(four, *fast)
    fidelity_one, fidelity_four = peak_rss_kb(one), peak_rss_kb(four)
    assert fast_four < fast_one * 1.15, (fast_one, fast_four)
    assert fidelity_four > fidelity_one * 1.5, (fidelity_one, fidelity_four)


def test_invalid_utf8_names_the_line_in_a_later_shard(tmp_path):
    path = corpus(tmp_path, 3000)
    lines = path.read_bytes().split(b"\n")
    lines[2500] = b"caf\xe9 au lait"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(pd.PretrainingDataError, match=rf"{path.name}: line 2501 is not valid"):
        make_fast([path], tmp_path / "out/")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    paths, summaries = ps.create_sharded(
        [str(path)], str(tmp_path / "skip/"), VOCAB, True, pd.InstanceOptions(dupe_factor=1),
        seed=1, num_workers=2, skip_invalid_utf8=True, shard_size_mb=0.05,
    )
    assert sum(s.skipped_lines for s in summaries) == 1 and len(paths) > 1


def test_script_fast_mode_summary_and_errors(tmp_path):
    path = corpus(tmp_path, 2000)
    base = [sys.executable, "create_pretraining_data.py", "--mode=fast", "--num_workers=2",
            f"--input_file={path}", f"--vocab_file={VOCAB}", "--dupe_factor=1"]
    result = subprocess.run([*base, "--shard_size_mb=0.02",
                             f"--output_file={tmp_path}/out/part-%03d.tfrecord"],
                            cwd=ROOT, capture_output=True, text=True, check=True)
    shards = len(ps.plan_shards([str(path)], 0.02))
    assert f"shard: {shards}/{shards} shards" in result.stdout and " instances, " in result.stdout
    assert "Wrote" in result.stdout and "mean tokens" in result.stdout
    assert (tmp_path / "out" / f"part-{shards - 1:03d}.tfrecord").exists()
    one = subprocess.run([*base, f"--output_file={tmp_path}/one/"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    assert "Only 1 shards for 2 workers: a smaller --shard_size_mb" in one.stdout
    bad = subprocess.run([*base, f"--output_file={tmp_path}/a,{tmp_path}/b"], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "one file per shard" in bad.stderr
    bad = subprocess.run([*base, "--shard_size_mb=0", f"--output_file={tmp_path}/z/"],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode != 0 and "shard_size_mb must be > 0" in bad.stderr
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    result = subprocess.run([*base[:4], f"--input_file={empty}", f"--vocab_file={VOCAB}",
                             f"--output_file={tmp_path}/e/"], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode != 0 and "hold no text" in result.stderr
    assert not (tmp_path / "e").exists() or not list((tmp_path / "e").iterdir())
