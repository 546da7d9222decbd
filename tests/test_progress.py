import io

from bert_tf.progress import Progress, format_seconds


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_in_a_log():
    log = io.StringIO()
    progress = Progress("writing", 25_000, "instances", stream=log)
    for done in range(1, 25_001):
        progress.update(done, "3.10 MB/s")
    progress.finish()
    lines = log.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "writing: 10000/25000 instances", "writing: 20000/25000 instances"]
    assert all("/s, ETA " in line and line.endswith("3.10 MB/s") for line in lines)
    assert "\r" not in log.getvalue() and "[" not in log.getvalue()


def test_a_live_bar_on_a_terminal():
    screen = Terminal()
    progress = Progress("features", 40, "examples", stream=screen)
    for _ in progress.counting(range(40)):
        pass
    progress.finish()
    drawn = screen.getvalue()
    assert drawn.startswith("\rfeatures [") and drawn.endswith("\x1b[K\n")
    final = drawn.split("\r")[-1]
    assert "[########################] 40/40 examples" in final and "ETA 0 s" in final
    assert drawn.count("\r") == 2  # the first update, then the finish (redraws are throttled)


def test_unknown_totals_and_durations():
    log = io.StringIO()
    progress = Progress("predict", None, "batches", log_every=100, stream=log)
    for done in range(1, 201):
        progress.update(done)
    assert log.getvalue().splitlines()[1].startswith("predict: 200 batches, ")
    assert "ETA" not in log.getvalue()
    assert [format_seconds(s) for s in (3, 125, 3840, float("inf"))] == [
        "3 s", "2 min 5 s", "1 h 4 min", "?"]
