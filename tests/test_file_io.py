import tensorflow as tf

from bert_tf import file_io


def test_local_glob_orders_files_as_tensorflow_does(tmp_path):
    """Input order decides the document shuffle, so it must be tf.io.gfile.glob's."""
    for name in ["b.txt", "a10.txt", "a2.txt", "A.txt", "_x.txt", "z/1.txt", "y/2.txt", "y/0.txt",
                 "q/3.txt"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x")
    for pattern in ["*.txt", "a*", "b.txt", "nothing*"]:
        path = str(tmp_path / pattern)
        assert file_io.glob(path) == tf.io.gfile.glob(path), pattern
    # Across directories TensorFlow's order changes from run to run (it lists them in
    # parallel), so the original had no fixed order there; the same files are found.
    path = str(tmp_path / "*/*.txt")
    assert sorted(file_io.glob(path)) == sorted(tf.io.gfile.glob(path))


def test_rename_replaces_and_open_reads_text(tmp_path):
    (tmp_path / "new").write_text("new")
    (tmp_path / "old").write_text("old")
    file_io.rename(str(tmp_path / "new"), str(tmp_path / "old"))
    with file_io.open_file(str(tmp_path / "old")) as handle:
        assert handle.read() == "new"
    assert not file_io.exists(str(tmp_path / "new"))
