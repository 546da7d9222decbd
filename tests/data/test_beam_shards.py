"""create_pretraining_data.py --runner=beam: Apache Beam's DirectRunner gives fast mode's
bytes, for every instance option, and commits no partial or duplicate shard."""

import hashlib
from pathlib import Path

import pytest
from conftest import data_path, fixture_path, run_script

beam = pytest.importorskip("apache_beam", reason="Apache Beam (the [beam] extra) not installed")

from bert_tf.data import beam_shards  # noqa: E402
from bert_tf.data import pretraining_data as pd  # noqa: E402
from bert_tf.data import pretraining_shards as ps  # noqa: E402

VOCAB = str(fixture_path("minilm_ckpt", "vocab.txt"))
SHARD_MB = 0.03


def corpus(tmp_path, lines=1500) -> str:
    text = data_path("text", "big.txt").read_text(encoding="utf-8").splitlines()[:lines]
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return str(path)


def digests(paths) -> list[str]:
    return [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths]


@pytest.mark.parametrize("options", [
    pd.InstanceOptions(dupe_factor=2),
    pd.InstanceOptions(dupe_factor=1, do_whole_word_mask=True, max_ngram=3,
                       sentence_order=True),
    pd.InstanceOptions(dupe_factor=1, mask=False, packing="full_sentences"),
], ids=["default", "whole_word_ngram_sop", "dynamic_packed"])
def test_beam_writes_fast_modes_bytes(tmp_path, options):
    path = corpus(tmp_path)
    worker_args = ((VOCAB, True, None), options, 7, False)
    fast, summaries = ps.create_sharded([path], f"{tmp_path}/fast/", VOCAB, True, options,
                                        seed=7, num_workers=2, shard_size_mb=SHARD_MB)
    beamed, counters = beam_shards.create_with_beam(
        [path], f"{tmp_path}/beam/", worker_args, shard_size_mb=SHARD_MB,
        clean_output=False, pipeline_options="--runner=DirectRunner")
    assert len(fast) > 2 and [Path(p).name for p in beamed] == [Path(p).name for p in fast]
    assert digests(beamed) == digests(fast)
    assert counters["instances"] == sum(s.instances for s in summaries)
    assert counters["documents"] == sum(s.documents for s in summaries)
    assert counters["bytes"] == Path(path).stat().st_size
    assert sorted(p.name for p in (tmp_path / "beam").iterdir()) == sorted(
        Path(p).name for p in beamed)  # no staging folder or attempt left


def test_commit_keeps_one_attempt_per_shard_and_removes_the_others(tmp_path):
    """What a retried or speculative bundle leaves: another attempt's temporary file for
    the same shard. Commit renames the kept one and deletes the rest."""
    finals = [str(tmp_path / f"part-{i}") for i in range(2)]
    staging = [str(tmp_path / ".bert_tf-staging" / f"part-{i}.run") for i in range(2)]
    (tmp_path / ".bert_tf-staging").mkdir()
    for index, prefix in enumerate(staging):
        Path(f"{prefix}.kept").write_bytes(b"records of shard %d" % index)
        Path(f"{prefix}.failed-attempt").write_bytes(b"partial")
    kept = [ps.ShardSummary(i, f"{staging[i]}.kept", documents=1) for i in range(2)]
    removed = list(beam_shards.Commit(finals, staging).process(kept))
    assert [Path(p).read_bytes() for p in finals] == [b"records of shard 0",
                                                      b"records of shard 1"]
    assert sorted(Path(p).name for p in removed) == ["part-0.run.failed-attempt",
                                                     "part-1.run.failed-attempt"]
    assert not list((tmp_path / ".bert_tf-staging").iterdir())
    with pytest.raises(pd.PretrainingDataError, match="1 of 2 shards were made"):
        list(beam_shards.Commit(finals, staging).process(kept[:1]))


def test_a_corpus_without_text_commits_nothing(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n\n")
    worker_args = ((VOCAB, True, None), pd.InstanceOptions(dupe_factor=1), 1, False)
    with pytest.raises(pd.PretrainingDataError, match="hold no text"):
        beam_shards.create_with_beam([str(empty)], f"{tmp_path}/out/", worker_args,
                                     shard_size_mb=SHARD_MB, clean_output=False,
                                     pipeline_options="--runner=DirectRunner")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_script_runner_beam_with_two_direct_workers(tmp_path):
    path = corpus(tmp_path, 800)
    common = [f"--input_file={path}", f"--vocab_file={VOCAB}", "--dupe_factor=1",
              f"--shard_size_mb={SHARD_MB}", "--random_seed=3"]
    run_script(["create_pretraining_data.py", "--mode=fast", "--num_workers=2", *common,
                f"--output_file={tmp_path}/fast/"])
    result = run_script([
        "create_pretraining_data.py", "--runner=beam", *common, f"--output_file={tmp_path}/b/",
        "--beam_pipeline_options=--runner=DirectRunner --direct_num_workers=2 "
        "--direct_running_mode=multi_processing"])
    assert "Beam: " in result.stdout and " documents, " in result.stdout
    assert "skipped lines" in result.stdout and "Total " in result.stdout
    fast = sorted((tmp_path / "fast").iterdir())
    assert digests(sorted((tmp_path / "b").iterdir())) == digests(fast) and len(fast) > 1


def test_replayed_bundles_leave_one_copy_of_each_shard(tmp_path):
    """The DirectRunner replays every bundle twice more (as a runner retries a failed
    bundle or runs a speculative copy): each shard is made three times, into three
    temporary files, and committed once, with the same bytes and nothing left behind."""
    path = corpus(tmp_path, 800)
    options = pd.InstanceOptions(dupe_factor=1)
    worker_args = ((VOCAB, True, None), options, 3, False)
    fast, summaries = ps.create_sharded([path], f"{tmp_path}/fast/", VOCAB, True, options,
                                        seed=3, num_workers=1, shard_size_mb=SHARD_MB)
    beamed, counters = beam_shards.create_with_beam(
        [path], f"{tmp_path}/beam/", worker_args, shard_size_mb=SHARD_MB, clean_output=False,
        pipeline_options="--runner=DirectRunner --direct_runner_bundle_repeat=2")
    assert digests(beamed) == digests(fast) and len(fast) > 1
    assert sorted(p.name for p in (tmp_path / "beam").iterdir()) == sorted(
        Path(p).name for p in beamed)
    # The counters count the committed attempt of each bundle, not the replays.
    assert counters["instances"] == sum(summary.instances for summary in summaries)
