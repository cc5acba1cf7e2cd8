"""Entry-point plumbing shared by every command: logging, one thread of BLAS, one-line errors."""

import atexit
import contextlib
import errno
import gc
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import NoReturn

from threadpoolctl import threadpool_limits

from churn.core.errors import ChurnError, clip

log = logging.getLogger("churn")

PATH_CLIP = 300  # characters of a file name echoed in an error
# The machine's limits, not bugs, even where the failing write names no file.
ROOM_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _reader_gone() -> int:
    """The status of a command whose output's reader left (``churn summary | head -1``).

    Quiet, as a Unix tool killed by SIGPIPE is: the reader took what it wanted. The
    output goes to /dev/null, so the interpreter's last flush cannot fail again.
    """
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 128 + signal.SIGPIPE


def one_blas_thread() -> None:
    """Have OpenBLAS start one thread when it loads, unless OPENBLAS_NUM_THREADS is set.

    :func:`run` holds BLAS to one thread for the work, yet the OpenBLAS in NumPy and the
    one in SciPy each start a thread per core as they load, and those threads spin
    before they sleep: ~0.2 CPU-seconds a stage process, on cores the work could use,
    for threads no stage runs. Call it before NumPy is first imported.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def import_frozen(name: str) -> ModuleType:
    """Import module ``name`` with the cyclic garbage collector held, then freeze what exists.

    A stage's imports (pandas, pyarrow, scikit-learn, SciPy) leave ~270,000 objects
    that live until the process ends; ~1,300 of them are garbage. With the collector
    on, every full collection during the imports and then during the work walks them
    all again (0.1 s each). Frozen, the collector skips them for good, ~0.25 s a stage;
    what the work allocates afterwards is collected as usual.
    """
    gc.disable()
    try:
        return importlib.import_module(name)
    finally:
        gc.freeze()
        gc.enable()


@contextlib.contextmanager
def terminated_as_exit() -> Iterator[None]:
    """While the block runs, SIGTERM or SIGHUP ends the command by an exception.

    Python's default for SIGTERM ends the process on the spot: no ``finally`` runs, so
    a temp file, a temp dir or a git worktree made for the work stays behind. Raised as
    ``SystemExit(143)`` (128 + 15, the status a shell reports), it unwinds like any
    error. Only the main thread may install a handler; elsewhere nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # A closed terminal (SIGHUP) ends the command the same way.
    previous = {sig: signal.signal(sig, _exit_on_signal) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _exit_on_signal(signum: int, _frame: object) -> NoReturn:
    raise SystemExit(128 + signum)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def stops_deferred() -> Iterator[None]:
    """Ctrl-C, SIGTERM or SIGHUP while the block runs takes effect when it ends.

    For work that cannot be stopped halfway and cleaned up, such as starting a Dask
    cluster: interrupted while its workers start, it cannot be closed, and distributed
    prints the failure at exit. The first signal caught is then handled as it would
    have been (KeyboardInterrupt, SystemExit(143), ...), also when the block failed
    meanwhile. Main thread only, as above.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    failed: Exception | None = None
    previous = {sig: signal.signal(sig, lambda n, _f: caught.append(n)) for sig in STOP_SIGNALS}
    try:
        yield
    except Exception as err:
        # A terminal's Ctrl-C (or a group's SIGTERM) also reaches the child processes the
        # work was starting, and the work fails for it: the stop is what happened.
        if not caught:
            raise
        failed = err
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if caught:
        handler = previous[caught[0]]
        if callable(handler):
            handler(caught[0], None)
        else:
            signal.raise_signal(caught[0])  # the default action (or none, if ignored)
    if failed is not None:  # the stop was ignored (SIG_IGN, a handler that returns)
        raise failed


def run(main: Callable[[], int | None], error_status: int = 1) -> int:
    """Run ``main`` and turn a :class:`ChurnError` into one line on stderr.

    Returns the process exit status: what ``main`` returns (0 when it returns
    None), or ``error_status`` on bad input: a :class:`ChurnError`, or an
    ``OSError`` naming a file (permission denied, a directory, a full disk).
    Anything else is a bug and keeps its traceback.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for stream in (sys.stdout, sys.stderr):
        # A text the terminal's encoding lacks (an ASCII locale) is escaped, not a traceback.
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")
    try:
        # Multi-threaded BLAS may sum in a different order per thread count; one
        # thread keeps every output bit-identical across machines and runs.
        with terminated_as_exit(), threadpool_limits(limits=1, user_api="blas"):
            status = main()
            with contextlib.suppress(ValueError, AttributeError):  # closed, or no stream
                sys.stdout.flush()  # now, not at exit: a reader gone then is quiet too
    except ChurnError as err:
        print(f"error: {err}", file=sys.stderr)  # noqa: T201 (the one-line message is the interface)
        return error_status
    except BrokenPipeError:
        return _reader_gone()
    except KeyboardInterrupt:
        return interrupted()
    except OSError as err:
        if err.filename is None and err.errno in ROOM_ERRORS:
            print(f"error: {err.strerror or err}", file=sys.stderr)  # noqa: T201
            return error_status
        if err.filename is None:  # not about a file the user named: a bug, keep the traceback
            raise
        # A file the user gave that cannot be read or written (no permission, a directory,
        # a name too long, a full disk) is their environment's problem, not a bug.
        # Of two files (a rename), the second is the one the user named: the first is a temp.
        name = err.filename2 if err.filename2 is not None else err.filename
        # A path is clipped later than a value: any real one is shown whole, not a 5 KB one.
        print(f"error: {clip(name, PATH_CLIP)}: {err.strerror}", file=sys.stderr)  # noqa: T201
        return error_status
    return status or 0


def interrupted() -> int:
    """Ctrl-C: one line and 130, as a shell reports SIGINT; a traceback says nothing.

    By then the finally blocks have run (temp files gone). Also for an interrupt
    before :func:`run` starts (a command's imports take a second).
    """
    print("error: interrupted", file=sys.stderr)  # noqa: T201
    return 128 + signal.SIGINT


def leave(status: int) -> NoReturn:
    """End a one-shot stage process with ``status``, skipping the interpreter's teardown.

    A stage's outputs are written, closed and renamed into place before ``main``
    returns; what is left of exiting is freeing the 750 (prepare) to 1,800 modules
    that pandas and scikit-learn bring, object by object: about 0.3 s a stage, for
    memory the OS takes back at once. The rest of a normal exit still happens, in its
    order: other non-daemon threads are joined, atexit handlers run (logging's
    flush among them), and stdout/stderr are flushed; a failed flush exits 120, as
    Python's own exit does.
    """
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()  # the handlers a normal exit runs (there is no public call)
    for stream in (sys.stdout, sys.stderr):
        if stream is None or stream.closed:
            continue
        try:
            stream.flush()
        except OSError:  # a closed pipe, a full disk
            status = 120
    os._exit(status)
