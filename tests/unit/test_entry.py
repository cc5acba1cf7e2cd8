"""core.entry: the exit status, one-line errors, one BLAS thread, the log format, leaving."""

import contextlib
import gc
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sklearn  # noqa: F401 (loads the BLAS and OpenMP runtimes threadpoolctl reports on)
from threadpoolctl import threadpool_info, threadpool_limits

from churn.core import entry
from churn.core.errors import ChurnError


@pytest.mark.parametrize(("returned", "status"), [(None, 0), (0, 0), (3, 3)])
def test_the_exit_status_is_what_main_returns_none_meaning_0(capsys, returned, status):
    """A stage's ``main`` returns None on success; a checker may return its own status."""
    assert entry.run(lambda: returned) == status
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(("kwargs", "status"), [({}, 1), ({"error_status": 2}, 2)])
def test_bad_input_is_one_line_on_stderr_and_the_error_status(capsys, kwargs, status):
    """A ChurnError is the user's mistake: no traceback, one ``error:`` line, stdout untouched."""

    def main():
        raise ChurnError("params.yaml: source.item: missing")

    assert entry.run(main, **kwargs) == status
    assert capsys.readouterr() == ("", "error: params.yaml: source.item: missing\n")


def test_any_other_exception_is_a_bug_and_keeps_its_traceback():
    def main():
        raise KeyError("bug")

    with pytest.raises(KeyError, match="bug"):
        entry.run(main)


def threads() -> dict[str, set[int]]:
    """Thread counts of the loaded thread pools, by API (blas, openmp)."""
    found: dict[str, set[int]] = {}
    for pool in threadpool_info():
        found.setdefault(pool["user_api"], set()).add(pool["num_threads"])
    return found


def test_main_runs_with_one_blas_thread_and_openmp_untouched():
    """Outputs are bit-identical only with one BLAS thread; other pools keep their threads.

    The limit ends with ``main``. Two threads outside, so the test means the same anywhere.
    """
    seen = {}
    with threadpool_limits(limits=2):
        assert threads() == {"blas": {2}, "openmp": {2}}
        assert entry.run(lambda: seen.update(threads())) == 0
        assert threads() == {"blas": {2}, "openmp": {2}}
    assert seen == {"blas": {1}, "openmp": {2}}


def test_one_blas_thread_sets_openblas_to_one_thread_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    entry.one_blas_thread()
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    entry.one_blas_thread()
    assert os.environ["OPENBLAS_NUM_THREADS"] == "3"


@contextlib.contextmanager
def unconfigured_logging():
    """The root logger as a fresh process has it (no handlers, WARNING); restored after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    for handler in handlers:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


def test_stage_logs_reach_stderr_as_level_name_message_from_info_up(capsys):
    """What a stage logs is its progress report: INFO lines on stderr, DEBUG kept quiet."""

    def main():
        log = logging.getLogger("churn.fetch")
        log.info("wrote %s: %d rows", "data/raw.csv", 3)
        log.debug("not shown")

    with unconfigured_logging():
        entry.run(main)
    assert capsys.readouterr() == ("", "INFO churn.fetch: wrote data/raw.csv: 3 rows\n")


# --------------------------------------------------------------------------- leave
# A fresh interpreter each: leave() ends the process it runs in. The child imports
# churn from wherever this process did (under mutation testing, the mutated copy).
SRC = str(Path(entry.__file__).parents[2])

LEAVING = """
import atexit, logging, sys, threading, time
from pathlib import Path
from churn.core import entry

out = Path(sys.argv[1])
atexit.register(lambda: (out / "atexit").write_text("ran"))
handler = logging.FileHandler(out / "log.txt", delay=True)
logging.getLogger().addHandler(handler)
logging.getLogger().warning("logged")

def late():
    time.sleep(0.3)
    (out / "thread").write_text("done")

threading.Thread(target=late).start()
print("no newline, so still in the buffer", end="")
entry.leave(int(sys.argv[2]))
"""


def leave_in_child(tmp_path: Path, status: int, stdout: Any = subprocess.PIPE):
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run(
        [sys.executable, "-c", LEAVING, str(tmp_path), str(status)],
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("status", [0, 3])
def test_leave_exits_with_the_status_after_what_a_normal_exit_does(tmp_path, status):
    """Threads joined, atexit handlers run, logging and stdout flushed; then the status."""
    done = leave_in_child(tmp_path, status)
    assert (done.returncode, done.stderr) == (status, b"")
    assert done.stdout == b"no newline, so still in the buffer"
    assert (tmp_path / "thread").read_text() == "done"
    assert (tmp_path / "atexit").read_text() == "ran"
    assert (tmp_path / "log.txt").read_text() == "logged\n"


def run_child(script: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": SRC},
        timeout=60,
        check=False,
    )


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_leave_exits_120_when_stdout_cannot_be_flushed():
    """As Python's own exit: output that never got written is not a success."""
    script = (
        "import sys; from churn.core import entry; "
        "sys.stdout = open('/dev/full', 'w', buffering=65536); "
        "print('lost', end=''); entry.leave(0)"
    )
    assert run_child(script).returncode == 120


def test_leave_skips_a_closed_stdout():
    """A closed stream has nothing left to flush: no error, the status stands."""
    done = run_child("import sys; from churn.core import entry; sys.stdout.close(); entry.leave(4)")
    assert (done.returncode, done.stderr) == (4, b"")


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            PermissionError(13, "Permission denied", "data/raw.csv"),
            "data/raw.csv: Permission denied",
        ),
        (IsADirectoryError(21, "Is a directory", "out.csv"), "out.csv: Is a directory"),
        (
            IsADirectoryError(21, "Is a directory", ".out.csv.tmp", None, "out.csv"),
            "out.csv: Is a directory",
        ),
        (OSError(36, "File name too long", "x" * 300), "x" * 300 + ": File name too long"),
        (
            OSError(36, "File name too long", "x" * 400),
            "x" * 300 + "... (400 characters): File name too long",
        ),
    ],
)
def test_a_file_that_cannot_be_read_or_written_is_one_line(capsys, error, line):
    """An OSError naming a file is the user's environment: one line, the error status."""

    def main():
        raise error

    assert entry.run(main, error_status=2) == 2
    assert capsys.readouterr() == ("", f"error: {line}\n")


def test_an_os_error_naming_no_file_is_a_bug_and_keeps_its_traceback():
    def main():
        raise OSError(5, "Input/output error")

    with pytest.raises(OSError, match="Input/output error"):
        entry.run(main)


def test_import_frozen_holds_the_collector_during_the_import_and_freezes_what_it_left(
    tmp_path, monkeypatch
):
    """The module's own import runs with the collector off; then it is on again.

    Every object that existed is in the permanent generation, skipped by collections.
    """
    (tmp_path / "frozen_probe.py").write_text(
        "import gc\nCOLLECTING = gc.isenabled()\nBOX = [[]]\nBOX[0].append(BOX)  # a cycle\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    gc.unfreeze()
    try:
        module = entry.import_frozen("frozen_probe")
        assert module.COLLECTING is False
        assert gc.isenabled()
        # The module's objects are tracked but in no generation a collection walks.
        assert gc.is_tracked(module.BOX)
        assert not any(obj is module.BOX for obj in gc.get_objects())
        assert gc.get_freeze_count() > 1000  # pytest's and the imports' objects too
    finally:
        gc.unfreeze()
        sys.modules.pop("frozen_probe", None)


def test_import_frozen_turns_the_collector_back_on_when_the_import_fails(tmp_path, monkeypatch):
    (tmp_path / "broken_probe.py").write_text("raise ValueError('broken at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(ValueError, match="broken at import"):
            entry.import_frozen("broken_probe")
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


TERMINATED = """
import sys, time
from pathlib import Path
from churn.core import entry

out = Path(sys.argv[1])

def main():
    try:
        (out / "started").write_text("yes")
        time.sleep(60)
    finally:
        (out / "cleaned").write_text("yes")  # a temp file or a worktree removed here

sys.exit(entry.run(main))
"""


def test_sigterm_unwinds_the_command_so_its_finally_blocks_run(tmp_path):
    import signal
    import time

    env = {**os.environ, "PYTHONPATH": SRC}
    child = subprocess.Popen([sys.executable, "-c", TERMINATED, str(tmp_path)], env=env)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=30) == 143
    finally:
        child.kill()
    assert (tmp_path / "cleaned").read_text() == "yes"


def test_the_sigterm_handler_is_only_there_while_the_command_runs():
    import signal

    before = [signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)]
    seen = []
    handlers = lambda: [signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)]  # noqa: E731
    assert entry.run(lambda: seen.append(handlers())) == 0
    assert seen == [[entry._exit_on_signal, entry._exit_on_signal]]
    assert handlers() == before
    for sig, status in [(signal.SIGTERM, 143), (signal.SIGHUP, 129)]:
        with pytest.raises(SystemExit) as exited:
            entry._exit_on_signal(sig, None)
        assert exited.value.code == status
    inside = []

    def in_a_thread():
        with entry.terminated_as_exit():
            inside.append(signal.getsignal(signal.SIGTERM))

    import threading

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert inside == [before[0]]  # no handler from another thread: Python refuses it there


def test_ctrl_c_is_one_line_and_130_after_the_finally_blocks(capsys):
    cleaned = []

    def main() -> None:
        try:
            raise KeyboardInterrupt
        finally:
            cleaned.append(True)

    assert entry.run(main) == 130
    assert capsys.readouterr().err == "error: interrupted\n"
    assert cleaned == [True]


@pytest.mark.parametrize(
    ("errno_", "text"),
    [(28, "No space left on device"), (122, "Disk quota exceeded"), (27, "File too large")],
)
def test_a_full_disk_naming_no_file_is_one_line(capsys, errno_, text):
    def main() -> None:
        raise OSError(errno_, text)

    assert entry.run(main, error_status=2) == 2
    assert capsys.readouterr().err == f"error: {text}\n"


def test_another_os_error_naming_no_file_keeps_its_traceback():
    def main() -> None:
        raise OSError(5, "Input/output error")

    with pytest.raises(OSError, match="Input/output error"):
        entry.run(main)


def test_text_the_terminal_cannot_encode_is_escaped(tmp_path):
    """An ASCII locale's stdout: '…' was a UnicodeEncodeError traceback."""
    # The escape, not the character, in the child's source: an ASCII locale cannot pass
    # '…' in argv to a Python started with PYTHONUTF8=0.
    code = "from churn.core import entry; entry.run(lambda: print('a \\u2026 b'))"
    env = {**os.environ, "PYTHONPATH": SRC, "PYTHONIOENCODING": "ascii", "PYTHONUTF8": "0"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, check=False, timeout=60
    )
    assert (done.returncode, done.stdout) == (0, b"a \\u2026 b\n")


def test_the_output_streams_escape_what_their_encoding_lacks(monkeypatch):
    """In process: an ASCII stdout gets the escape, not a UnicodeEncodeError."""
    import io as stdio

    raw = stdio.BytesIO()
    ascii_out = stdio.TextIOWrapper(raw, encoding="ascii", errors="strict")
    monkeypatch.setattr(sys, "stdout", ascii_out)
    assert entry.run(lambda: print("a \u2026 b")) == 0  # noqa: T201 (the output under test)
    ascii_out.flush()
    assert raw.getvalue() == b"a \\u2026 b\n"


@pytest.mark.parametrize("stream", ["no reconfigure", "closed"])
def test_streams_that_cannot_be_reconfigured_are_left_alone(monkeypatch, stream):
    import io as stdio

    if stream == "closed":
        target = stdio.TextIOWrapper(stdio.BytesIO(), encoding="utf-8")
        target.close()  # reconfigure() raises ValueError
    else:
        target = stdio.StringIO()  # has no reconfigure()
    monkeypatch.setattr(sys, "stdout", target)
    assert entry.run(lambda: 7) == 7


@pytest.fixture
def interruptible():
    """SIGINT raises KeyboardInterrupt, as in a terminal; restored afterwards.

    Also where the suite was started with SIGINT ignored (a shell's background job, nohup).
    """
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_stop_during_a_deferred_block_takes_effect_when_it_ends(interruptible):
    import signal

    steps = []

    def block(*stops: int) -> None:
        with entry.terminated_as_exit(), entry.stops_deferred():
            for stop in stops:
                signal.raise_signal(stop)
            steps.append(len(stops))

    with pytest.raises(KeyboardInterrupt):
        block(signal.SIGINT, signal.SIGINT)  # one stop, however many signals
    with pytest.raises(SystemExit) as exited:
        block(signal.SIGTERM, signal.SIGINT)  # the first one caught decides
    assert exited.value.code == 143
    block()
    assert steps == [2, 2, 0]  # each block ran to its end


def test_a_deferred_block_that_fails_because_of_the_stop_reports_the_stop(interruptible):
    """A terminal's Ctrl-C also kills the processes the block was starting."""
    import signal

    def block(stop: bool) -> None:
        with entry.stops_deferred():
            if stop:
                signal.raise_signal(signal.SIGINT)
            raise RuntimeError("Nanny failed to start.")

    with pytest.raises(KeyboardInterrupt):
        block(stop=True)
    with pytest.raises(RuntimeError, match="Nanny"):
        block(stop=False)  # without a stop, a failure is a failure


@pytest.mark.parametrize("ignored", ["SIG_IGN", "a handler that returns"])
def test_a_failed_block_whose_stop_is_ignored_still_fails(ignored):
    """Called as a library, the stop may be ignored: the block's error must not vanish."""
    import signal

    handled = []
    handler = signal.SIG_IGN if ignored == "SIG_IGN" else lambda n, _f: handled.append(n)

    def block() -> None:
        with entry.stops_deferred():
            signal.raise_signal(signal.SIGINT)
            raise RuntimeError("Nanny failed to start.")

    before = signal.signal(signal.SIGINT, handler)
    try:
        with pytest.raises(RuntimeError, match="Nanny"):
            block()
        assert handled == ([] if ignored == "SIG_IGN" else [signal.SIGINT])
    finally:
        signal.signal(signal.SIGINT, before)


def test_deferred_stops_leave_the_handlers_as_they_were_and_other_threads_alone():
    import signal
    import threading

    before = [signal.getsignal(sig) for sig in entry.STOP_SIGNALS]
    with entry.stops_deferred():
        inside = [signal.getsignal(sig) for sig in entry.STOP_SIGNALS]
    assert [signal.getsignal(sig) for sig in entry.STOP_SIGNALS] == before
    assert all(handler not in before for handler in inside)
    seen = []

    def in_a_thread():
        with entry.stops_deferred():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert seen == [before[0]]


def test_a_deferred_stop_goes_to_the_handler_there_was_once():
    """A handler that returns is called once; an ignored signal stays ignored."""
    import signal

    calls = []
    before = signal.signal(signal.SIGHUP, lambda n, _f: calls.append(n))
    try:
        with entry.stops_deferred():
            signal.raise_signal(signal.SIGHUP)
        assert calls == [signal.SIGHUP]
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        with entry.stops_deferred():
            signal.raise_signal(signal.SIGHUP)
        assert calls == [signal.SIGHUP]  # ignored, as before the block
    finally:
        signal.signal(signal.SIGHUP, before)


def test_a_reader_that_left_ends_the_command_quietly_as_sigpipe_would(tmp_path):
    """`churn summary | head -1` printed "error: Broken pipe" and exited 1, one run in three."""
    code = (
        "import sys\n"
        "from churn.core import entry\n"
        "def main():\n"
        "    for i in range(200_000):\n"
        "        print('line', i)\n"
        "sys.exit(entry.run(main))\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    shell = f'{sys.executable} -c "$CODE" | head -1; echo "${{PIPESTATUS[0]}}" >&2'
    done = subprocess.run(
        ["bash", "-c", shell],
        env={**env, "CODE": code},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.stdout == "line 0\n"
    assert done.stderr == "141\n"  # nothing said: 128 + SIGPIPE, as head's writer gets


def test_a_reader_gone_before_the_last_flush_is_quiet_too():
    """A short output sits in the buffer until exit: flushed there, it said 'Exception ignored'."""
    code = (
        "import select, sys, time\n"
        "from churn.core import entry\n"
        "def main():\n"
        "    print('first')\n"
        "    # Until head -c 0 has left, which the pipe polls as POLLERR (a sleep raced load).\n"
        "    poll = select.poll()\n"
        "    poll.register(1, select.POLLOUT)\n"
        "    deadline = time.monotonic() + 30\n"
        "    while not poll.poll(0)[0][1] & select.POLLERR and time.monotonic() < deadline:\n"
        "        time.sleep(0.01)\n"
        "sys.exit(entry.run(main))\n"
    )
    shell = f'{sys.executable} -c "$CODE" | head -c 0; echo "${{PIPESTATUS[0]}}" >&2'
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    done = subprocess.run(
        ["bash", "-c", shell],
        env={**buffered, "PYTHONPATH": SRC, "CODE": code},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (done.stdout, done.stderr) == ("", "141\n")


def _broken_pipe() -> None:
    raise BrokenPipeError(32, "Broken pipe")


def test_a_reader_gone_sends_the_rest_of_the_output_nowhere(tmp_path, monkeypatch, capsys):
    """The interpreter's last flush goes to /dev/null, where it cannot fail again."""
    with (tmp_path / "out").open("w") as out:
        monkeypatch.setattr(sys, "stdout", out)
        assert entry.run(_broken_pipe) == 141
        os.write(out.fileno(), b"after")
        assert os.fstat(out.fileno()).st_rdev == os.stat(os.devnull).st_rdev
    assert (tmp_path / "out").read_bytes() == b""
    assert capsys.readouterr().err == ""  # nothing said


class _NoDescriptor:
    """A stdout stand-in whose descriptor cannot be had, as each kind of stream refuses it."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def fileno(self) -> int:
        raise self.error

    def flush(self) -> None:
        pass


@pytest.mark.parametrize(
    "stdout",
    [None, _NoDescriptor(OSError(9, "Bad file descriptor")), _NoDescriptor(ValueError("closed"))],
    ids=["none", "os error", "closed"],
)
def test_a_reader_gone_without_a_stdout_descriptor_is_still_141(monkeypatch, stdout):
    monkeypatch.setattr(sys, "stdout", stdout)
    assert entry.run(_broken_pipe) == 141


class _Closed:
    def flush(self) -> None:
        raise ValueError("I/O operation on closed file.")


@pytest.mark.parametrize("stdout", [None, _Closed()], ids=["none", "closed"])
def test_no_stdout_or_a_closed_one_is_no_error_at_the_last_flush(monkeypatch, stdout):
    """pythonw, or a daemon that closed its streams: the flush before exit is skipped."""
    monkeypatch.setattr(sys, "stdout", stdout)
    assert entry.run(lambda: 0) == 0
