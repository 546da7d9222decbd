"""Output folders under a hostile but fair user (issue 26, round 3): an export never
deletes what is not an earlier export, only a folder's own checkpoints count, no link
leads a write or a delete out of an output folder, two runs into one folder always meet
at one lock, and a run's several outputs change together. Every case goes through the
scripts as a user runs them (docs/RELIABILITY.md lists them)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, fixture_path, one_line_error, run_script

from bert_tf import file_io
from bert_tf.interop import hub_export
from bert_tf.jobs import create_pretraining_data
from bert_tf.training import checkpoint as checkpoint_lib
from bert_tf.training import resume


def tiny(*parts: str) -> Path:
    return fixture_path("tiny_ckpt", *parts)


def copy_checkpoint(prefix: Path) -> str:
    """The tiny checkpoint under another prefix (e.g. out/model.ckpt-100)."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(tiny(f"bert_model.ckpt{suffix}"), f"{prefix}{suffix}")
    return str(prefix)


def export(export_dir: Path, init_checkpoint, *extra: str):
    return run_script(["export_model.py", f"--bert_config_file={tiny('bert_config.json')}",
                       f"--vocab_file={tiny('vocab.txt')}", f"--init_checkpoint={init_checkpoint}",
                       f"--export_dir={export_dir}", "--max_seq_length=16", *extra], check=False)


def listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def hold(code: str) -> subprocess.Popen:
    """A process that runs `code` (which prints "held" once it holds what it holds) and
    then sleeps until killed."""
    holder = subprocess.Popen([sys.executable, "-c", code + "\nimport time; time.sleep(300)"],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


# --- 1. exports replace only earlier exports --------------------------------------------


def test_export_refuses_a_folder_that_is_not_an_earlier_export(tmp_path):
    out = tmp_path / "out"
    checkpoint = copy_checkpoint(out / "model.ckpt-100")
    (out / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-100"\n')
    (out / "notes.txt").write_text("a user's file")
    before = listing(out)
    for extra in ([], ["--format=hub"]):
        result = export(out, checkpoint, *extra)
        one_line_error(result, f"export_dir: {out} holds checkpoint, model.ckpt-100",
                       "notes.txt", "not an earlier export")
        assert listing(out) == before  # the training folder, whole
    # A link at export_dir is refused, not replaced by a folder.
    (tmp_path / "serving").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "serving")
    one_line_error(export(tmp_path / "link", checkpoint), "is a symbolic link")
    # (An earlier export is replaced as a whole: test_export.py, in-process.)


def test_an_earlier_export_is_recognised_by_its_entries(tmp_path):
    """What `check_replaceable` accepts: absent, empty, or only an export's own entries
    (a SavedModel's; the hub pair's folders); anything else is named."""
    folder = tmp_path / "export"
    file_io.check_replaceable(str(folder), file_io.SAVED_MODEL_ENTRIES, "export_dir")
    folder.mkdir()
    (folder / file_io.LOCK_FILE).write_text("")
    file_io.check_replaceable(str(folder), file_io.SAVED_MODEL_ENTRIES, "export_dir")
    for name in ("saved_model.pb", "fingerprint.pb", "variables", "assets"):
        (folder / name).mkdir() if "." not in name else (folder / name).write_text("x")
    file_io.check_replaceable(str(folder), file_io.SAVED_MODEL_ENTRIES, "export_dir")
    with pytest.raises(file_io.OutputError, match="holds assets, fingerprint.pb, "
                                                  "saved_model.pb, variables, which"):
        file_io.check_replaceable(str(folder), hub_export.HUB_ENTRIES, "export_dir")
    hub = tmp_path / "hub"
    (hub / "encoder").mkdir(parents=True)
    (hub / "preprocessor").mkdir()
    file_io.check_replaceable(str(hub), hub_export.HUB_ENTRIES, "export_dir")
    (hub / "mine.txt").write_text("x")
    with pytest.raises(file_io.OutputError, match="holds mine.txt"):
        file_io.check_replaceable(str(hub), hub_export.HUB_ENTRIES, "export_dir")
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(file_io.OutputError, match="is a file, not an export folder"):
        file_io.check_replaceable(str(tmp_path / "a_file"), hub_export.HUB_ENTRIES, "export_dir")


def test_an_export_into_a_folder_a_training_run_holds_is_refused(tmp_path):
    """Training and export take the same lock (`<folder>/.bert_tf.lock`): an export into
    a folder a live run writes is refused, whatever that folder holds."""
    out = tmp_path / "out"
    holder = hold("from bert_tf import file_io\n"
                  f"held = file_io.holding_output({str(out)!r} + '/', 'output_dir')\n"
                  "held.__enter__(); print('held', flush=True)")
    try:
        result = export(out, tiny() / "bert_model.ckpt")
        one_line_error(result, f"export_dir: {out}/ is in use by another run (pid {holder.pid}")
        assert [p.name for p in out.iterdir()] == [file_io.LOCK_FILE]
    finally:
        holder.kill()
        holder.wait()


# --- 2. only a folder's own checkpoints count --------------------------------------------


def test_a_state_file_naming_a_checkpoint_elsewhere_is_ignored(tmp_path, caplog):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    own = copy_checkpoint(out / "model.ckpt-12")
    outside = copy_checkpoint(elsewhere / "model.ckpt-999")
    (out / "checkpoint").write_text(f'model_checkpoint_path: "{outside}"\n')
    assert checkpoint_lib.folder_checkpoints(str(out)) == [own]
    assert resume.latest_checkpoint(str(out)) == own
    assert checkpoint_lib.resolve_checkpoint(str(out)) == own
    assert "not in that folder" in caplog.text
    # Pruning keeps the folder's own checkpoint and never reaches the other folder.
    assert resume.prune_checkpoints(str(out), 12, 1) == ["model.ckpt-12"]
    assert len(list(elsewhere.iterdir())) == 2
    # With no checkpoint of its own, the folder holds none: export refuses it.
    for path in out.glob("model.ckpt-12.*"):
        path.unlink()
    result = export(tmp_path / "serving", out)
    one_line_error(result, f"{out}: directory holds no checkpoint")
    assert not (tmp_path / "serving" / "saved_model.pb").exists()


# --- 3. links never lead out of an output folder ----------------------------------------


def pretraining_data(output: Path, *extra: str, check: bool = False):
    return run_script(["create_pretraining_data.py",
                       f"--input_file={fixture_path('pretrain_public', 'sample_text.txt')}",
                       f"--output_file={output}", f"--vocab_file={tiny('vocab.txt')}",
                       "--dupe_factor=1", *extra], check=check)


def test_links_planted_at_the_lock_or_the_staging_folder_are_refused(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "important.txt").write_text("keep me")
    (victim / "out.tfrecord.1-deadbeef").write_text("not staging: a file of the victim")
    out = tmp_path / "out"
    out.mkdir()
    (out / file_io.LOCK_FILE).symlink_to(victim / "important.txt")
    one_line_error(pretraining_data(out / "out.tfrecord"),
                   f"{out / file_io.LOCK_FILE} is a symbolic link")
    (out / file_io.LOCK_FILE).unlink()
    (out / file_io.STAGING_FOLDER).symlink_to(victim)
    one_line_error(pretraining_data(out / "out.tfrecord"),
                   f"{out / file_io.STAGING_FOLDER}: is a symbolic link")
    assert (victim / "important.txt").read_text() == "keep me"
    assert sorted(p.name for p in victim.iterdir()) == ["important.txt",
                                                         "out.tfrecord.1-deadbeef"]
    assert not (out / "out.tfrecord").exists()
    # Training's folder too.
    (out / file_io.STAGING_FOLDER).unlink()
    (out / file_io.LOCK_FILE).symlink_to(victim / "important.txt")
    with pytest.raises(file_io.OutputError, match="is a symbolic link"):
        with file_io.holding_output(f"{out}/", "output_dir"):
            pass
    assert (victim / "important.txt").read_text() == "keep me"


# --- 6. two runs, one folder: one lock; outputs change together --------------------------


def test_data_runs_into_one_folder_share_its_lock(tmp_path):
    """Fast mode into `out/` and into `out/part` both own the folder: the second is refused
    (before, it took another lock and its stale sweep deleted the first's live shards).
    Two runs that write named files into one folder may share it."""
    out = tmp_path / "out"
    shard = str(out / "part-00000-of-00001.tfrecord")
    holder = hold("from bert_tf import file_io\n"
                  "from bert_tf.jobs import create_pretraining_data\n"
                  f"lock = create_pretraining_data.shards_folder_lock({str(out)!r} + '/')\n"
                  "lock.__enter__()\n"
                  f"file_io.staging_folder({str(out)!r})\n"
                  f"open(file_io.staging_path({shard!r}), 'w').close()\n"
                  "print('held', flush=True)")
    try:
        live = list((out / file_io.STAGING_FOLDER).iterdir())
        assert len(live) == 1
        for target in (f"{out}/part", f"{out}/"):
            one_line_error(pretraining_data(Path(target), "--mode=fast", "--num_workers=1"),
                           "is in use by another run", f"pid {holder.pid}")
        one_line_error(pretraining_data(out / "records.tfrecord"), "is in use by another run")
        assert list((out / file_io.STAGING_FOLDER).iterdir()) == live  # a live run's file
    finally:
        holder.kill()
        holder.wait()
    # Two runs that each write their own file into one folder share its lock.
    with file_io.output_lock(str(out / "a.tfrecord"), "output_file"):
        pretraining_data(out / "b.tfrecord", check=True)
        with pytest.raises(file_io.OutputError, match="in use by another run"):
            with create_pretraining_data.shards_folder_lock(f"{out}/"):
                pass
    # The dead holder's staged file is swept by the next run that owns the folder.
    pretraining_data(Path(f"{out}/"), "--mode=fast", "--num_workers=1", "--clean_output",
                     check=True)
    assert not (out / file_io.STAGING_FOLDER).exists()


def test_a_stale_sweep_spares_files_a_live_run_is_writing(tmp_path):
    staging = Path(file_io.staging_folder(str(tmp_path)))
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    try:
        live = staging / f"x.tfrecord.{sleeper.pid}-0123abcd"
        dead = staging / f"x.tfrecord.{finished.stdout.strip()}-0123abcd"
        beam = staging / f"x.tfrecord.{finished.stdout.strip()}-0123abcd.77aa"
        for path in (live, dead, beam):
            path.write_text("staged")
        assert sorted(file_io.remove_stale_staging(str(tmp_path))) == sorted(
            [str(dead), str(beam)])
        assert live.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


FAIL_SECOND_RENAME = """
import os, runpy, sys
from bert_tf import file_io
renames = []
original = file_io.rename
def rename(source, target):
    if file_io.STAGING_FOLDER in source and not file_io.is_unfinished(target):
        renames.append(target)
        if len(renames) == 2:
            raise OSError(5, "Input/output error", target)
    return original(source, target)
file_io.rename = rename
sys.argv = ["create_pretraining_data.py", *sys.argv[1:]]
runpy.run_path("create_pretraining_data.py", run_name="__main__")
"""


def test_several_outputs_change_together_or_not_at_all(tmp_path):
    """The original's multi-file output (`--output_file=a,b`): a failure between the
    renames puts the earlier files back, so a reader never sees new and old mixed."""
    a, b = tmp_path / "a.tfrecord", tmp_path / "b.tfrecord"
    a.write_bytes(b"earlier a")
    b.write_bytes(b"earlier b")
    flags = [f"--input_file={fixture_path('pretrain_public', 'sample_text.txt')}",
             f"--output_file={a},{b}", f"--vocab_file={tiny('vocab.txt')}", "--dupe_factor=1"]
    result = subprocess.run([sys.executable, "-c", FAIL_SECOND_RENAME, *flags], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    one_line_error(result, f"{b}: cannot write: [Errno 5] Input/output error")
    assert a.read_bytes() == b"earlier a" and b.read_bytes() == b"earlier b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tfrecord", "b.tfrecord"]
    # A folder where an output file goes is refused before any work.
    b.unlink()
    b.mkdir()
    result = run_script(["create_pretraining_data.py", *flags], check=False)
    one_line_error(result, f"{b}: cannot write: it is a folder")
    assert a.read_bytes() == b"earlier a"
    assert not os.path.exists(tmp_path / file_io.STAGING_FOLDER)
