"""Atomic, byte-stable writes and checked reads. Stages never open files by hand."""

import codecs
import contextlib
import csv
import errno
import fcntl
import io as stdio
import itertools
import json
import os
import pickle
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from ruamel.yaml import YAML, events
from ruamel.yaml import YAMLError as RuamelError

from churn.core.errors import ChurnError, clip

try:  # libyaml: the structural scan runs at C speed
    from yaml import CBaseLoader as EventLoader
except ImportError:  # pragma: no cover (the pinned PyYAML wheels include libyaml)
    from yaml import BaseLoader as EventLoader  # type: ignore[assignment]

# Limits on every YAML file read here (params.yaml, dvc.yaml, dvc.lock). This project's
# are 4-10 KB, at most 9 levels and 700 values (dvc.lock), so all three leave room (7x
# for the values), while a hostile file fails in milliseconds instead of taking seconds
# and memory to build. The value count bounds the time: ruamel's pure-Python parser, kept
# for YAML 1.2, needs up to 100 microseconds a value on a busy machine, so 5,000 values
# load in half a second (1 MB of short values would take half a minute).
MAX_YAML_BYTES = 1024 * 1024
HEAD_BYTES = 16 * 1024 * 1024  # where a CSV's header (and first row) must end
MAX_YAML_DEPTH = 32
MAX_YAML_NODES = 5_000
MERGE_TAG = "tag:yaml.org,2002:merge"
# The same events from either parser (libyaml through PyYAML, or ruamel).
ALIAS_EVENTS = (yaml.AliasEvent, events.AliasEvent)
SCALAR_EVENTS = (yaml.ScalarEvent, events.ScalarEvent)
OPEN_EVENTS = (yaml.CollectionStartEvent, events.CollectionStartEvent)
CLOSE_EVENTS = (yaml.CollectionEndEvent, events.CollectionEndEvent)
NODE_EVENTS = SCALAR_EVENTS + OPEN_EVENTS  # a value: aliases are refused before counting


# The descriptors of the file locks this process holds (:func:`file_lock`).
HELD_LOCKS: set[int] = set()


@contextlib.contextmanager
def file_lock(path: Path, wait: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (made if missing) until the block ends.

    Without ``wait``, another holder raises :class:`BlockingIOError` at once. The
    commands run meanwhile hold it too (:func:`held_locks`): killed with ``kill -9``,
    churn freed its lock while the ``dvc exp run`` or ``gto`` it started went on.
    """
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        HELD_LOCKS.add(handle.fileno())
        try:
            yield
        finally:
            HELD_LOCKS.discard(handle.fileno())


def held_locks() -> tuple[int, ...]:
    """``pass_fds`` for a command: the locks held now, which it then holds as long as it runs.

    A lock belongs to the open file, not to a process: it is free only once every
    descriptor of it is closed, the command's too.
    """
    return tuple(sorted(HELD_LOCKS))


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only on success.

    A crash or an exception leaves the previous file untouched and no temp file behind.
    A write that fails for want of room or rights (a full disk, a read-only place) is
    one error naming ``path``, never the temp file, whoever wrote it (pandas, pyarrow,
    matplotlib say no name at all).
    """
    target = Path(path)
    refuse_directory(target)  # said before any work, not by the rename after it
    through = writes_through(target)
    parent = Path(tempfile.gettempdir()) if through else target.parent
    # The folders made for it, deepest first: a failed write takes them away again.
    made = list(itertools.takewhile(lambda d: not d.exists(), (parent, *parent.parents)))
    try:
        parent.mkdir(parents=True, exist_ok=True)
        # A short name of its own: the target's name plus a suffix could pass NAME_MAX.
        fd, tmp = tempfile.mkstemp(prefix=".churn-", suffix=".tmp", dir=parent)
    except FileExistsError:  # a file where a parent directory should be
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(target)) from None
    except OSError as err:
        _remove_empty(made)
        raise _naming(err, target) from None
    os.close(fd)
    os.chmod(tmp, _mode_for(target))  # mkstemp's is always 0600
    tmp_path = Path(tmp)
    done = False
    try:
        yield tmp_path
        if through:  # a pipe or a terminal gets the finished bytes; it is not replaced
            with tmp_path.open("rb") as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            os.replace(tmp_path, target)
        done = True
    except OSError as err:
        if err.filename not in (None, tmp, str(target)):
            raise  # about another file (an output written inside this one's block)
        raise _naming(err, target) from None
    finally:
        tmp_path.unlink(missing_ok=True)
        if not done:
            _remove_empty(made)


def _remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) while each is empty: what a failed write made."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # something else was put there meanwhile: it stays, and its parents
            return


def _naming(err: OSError, target: Path) -> OSError:
    """``err`` about ``target``: the file the user named, not the temp file beside it."""
    if err.errno is None:  # pyarrow's own I/O errors carry only text
        code = errno.EACCES if isinstance(err, PermissionError) else errno.EIO
        return type(err)(code, " ".join(str(err).split()), str(target))
    return type(err)(err.errno, err.strerror or os.strerror(err.errno), str(target))


def _mode_for(target: Path) -> int:
    """The permissions of the file ``target`` replaces, else what open() would give it."""
    with contextlib.suppress(OSError):
        found = target.stat()
        if stat.S_ISREG(found.st_mode):
            return stat.S_IMODE(found.st_mode)
    # The umask can only be read by setting it; the outputs are written by one thread.
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def refuse_directory(path: Path) -> None:
    """The OSError a write onto directory ``path`` would end in, raised before any work."""
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))


def writes_through(path: Path) -> bool:
    """Whether ``path`` is a stream to write into rather than a file to replace.

    A FIFO, a character device (/dev/null, a terminal) or a link into /proc
    (/dev/stdout, /dev/fd/3) is written through once the output is complete: renaming
    onto it would swap the device node or the link for a plain file. A block device
    or a socket is refused.
    """
    try:
        mode = path.stat().st_mode  # the link's target
    except OSError:
        return False
    if stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):
        raise ChurnError(f"{clip(path, 300)}: a device or socket, not a file to write")
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        return True
    return _via_proc(str(path))


def _via_proc(path: str) -> bool:
    """Whether ``path`` or a link on the way to it is in /proc (/dev/stdout, /dev/fd/3)."""
    for _ in range(40):  # the kernel's own limit on links followed
        full = os.path.join(os.path.realpath(os.path.dirname(path) or "."), os.path.basename(path))
        if full.startswith("/proc/"):
            return True
        if not os.path.islink(full):
            return False
        path = os.path.join(os.path.dirname(full), os.readlink(full))
    return False


def blank_as_missing(values: pd.Series) -> pd.Series:
    """``values`` with each whitespace-only text (spaces, tabs) missing, as an empty cell is.

    pandas reads "" and, told so, " " as missing, but "  " or a tab as text: a numeric
    column then turns to text and a category "" appears. Other values are untouched.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        categories = values.cat.categories
        blank = [c for c in categories if isinstance(c, str) and c.isspace()]
        return values.cat.remove_categories(blank) if blank else values
    try:
        # Vectorized on str columns; missing cells (NaN or <NA> by dtype) are not blank.
        blank = values.str.isspace().astype("boolean").fillna(False)
    except AttributeError:  # numbers, or objects that are not text
        return values
    return values.mask(blank) if blank.any() else values


def write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 text with Unix line endings, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON with sorted keys and a trailing newline so equal data gives equal bytes."""
    write_text(path, json_text(obj))


def json_text(obj: Any) -> str:
    """The text :func:`write_json` writes (a NaN is a ValueError: JSON has none)."""
    return json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"


@contextlib.contextmanager
def csv_fields_of_any_size() -> Iterator[None]:
    """Let the csv module read fields of any length while the block runs.

    It refuses a field over 131,072 characters (a ``csv.Error`` traceback); pandas and
    pyarrow read it, so a file they accept must not fail a check made beside them.
    """
    previous = csv.field_size_limit(sys.maxsize)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def read_csv_header(path: str | Path) -> list[str]:
    """The column names on the first non-blank line of a UTF-8 CSV file, as written.

    Blank lines before it are skipped, as pandas skips them.
    """
    with Path(path).open("rb") as fh:
        refuse_not_text(str(path), fh.read(SNIFF_BYTES))
    try:
        rows = csv_head_rows(path, 1)
    except UnicodeDecodeError:
        raise ChurnError(f"{path}: not UTF-8; re-save the file as UTF-8") from None
    if not rows:
        raise ChurnError(f"{path}: file is empty")
    return rows[0]


def csv_head_rows(path: str | Path, count: int) -> list[list[str]]:
    """The first ``count`` non-blank records of a UTF-8 CSV file (fewer if it has fewer).

    Read from the first ``HEAD_BYTES`` only: a stray quote in the header (or a file with
    no line end) made the first record the whole file, 1.1 GB of memory for a 94 MB
    file before the error. Records not ended by then are refused.
    """
    with Path(path).open("rb") as fh:
        head = fh.read(HEAD_BYTES + 1)
    cut = len(head) > HEAD_BYTES
    end = len(head) - 1 if cut else len(head)
    while cut and end and head[end] & 0xC0 == 0x80:  # not inside a character's bytes
        end -= 1
    text = stdio.TextIOWrapper(stdio.BytesIO(head[:end]), encoding="utf-8-sig", newline="")
    with csv_fields_of_any_size():
        # One record past ``count`` shows the last one ended (decoded as far as read).
        rows = list(itertools.islice((row for row in csv.reader(text) if row), count + 1))
    if cut and len(rows) <= count:
        raise ChurnError(
            f"{path}: no end of line in the first {HEAD_BYTES >> 20} MiB: most likely a quote "
            '(") that is never closed, or a file with no line ends'
        )
    return rows[:count]


def read_json(path: str | Path) -> Any:
    """Read a JSON file, naming it if it is missing or broken."""
    # Bytes first: read_text would raise on a stray byte before parse_json could name it.
    return parse_json(decode_utf8(require_file(path).read_bytes(), str(path)), str(path))


def parse_json(text: str, origin: str) -> Any:
    """Parse JSON text; a broken one (or one that is not UTF-8) is one line naming ``origin``."""
    text = utf8_text(text, origin)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ChurnError(f"{origin}: not valid JSON ({err.msg}, line {err.lineno})") from None
    except RecursionError:
        raise ChurnError(f"{origin}: not valid JSON (nested too deep)") from None


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file through :func:`parse_yaml`; its size is checked before reading."""
    p = require_file(path)
    size = p.stat().st_size
    if size > MAX_YAML_BYTES:
        raise ChurnError(f"{p}: {size} bytes, over the {MAX_YAML_BYTES}-byte limit for YAML")
    with p.open("rb") as fh:
        data = fh.read(MAX_YAML_BYTES + 1)  # the file may have grown since stat
    return parse_yaml(data, str(p))


def require_directory_or_absent(path: Path, option: str) -> None:
    """Refuse ``path``, a directory to write into, when it is something else."""
    if path.is_symlink() and not path.exists():  # mkdir then said "File exists"
        raise ChurnError(f"{option} {clip(path, 200)}: {DANGLING}")
    if path.exists() and not path.is_dir():
        raise ChurnError(f"{option} {clip(path, 200)}: not a directory")


DANGLING = "a symbolic link to nothing (or a loop of links)"


def require_file_targets(*paths: str | Path) -> None:
    """Each of ``paths`` can take a file: it is no directory, and no folder above it a file.

    A stage checks all its outputs before it writes the first: prepare with
    ``paths.contract`` a directory had already replaced train.parquet when the
    contract's write failed, leaving outputs of two different runs.
    """
    for path in map(Path, paths):
        if path.is_dir():
            raise ChurnError(f"{clip(path, 200)}: Is a directory (a file goes there)")
        for parent in path.parents:
            if parent.is_dir():
                break
            if parent.exists():
                raise ChurnError(
                    f"{clip(parent, 200)}: Not a directory ({clip(path, 200)} goes in it)"
                )


def parse_yaml(data: str | bytes | None, origin: str = "YAML") -> Any:
    """YAML 1.2, as DVC reads and rewrites its files; empty or missing text gives ``{}``.

    (`dvc exp run -S` drops quotes: a YAML 1.1 reader would see a bare Yes as a boolean.)
    Refused, each as one line naming ``origin``: more than ``MAX_YAML_BYTES``, bytes that
    are not UTF-8, and (see :func:`check_yaml_structure`) anchors, aliases, merge keys
    and nesting deeper than ``MAX_YAML_DEPTH``. A UTF-8 byte order mark is accepted, as
    YAML and DVC accept it.
    """
    if not data:
        return {}
    raw = utf8_bytes(data, origin) if isinstance(data, str) else data
    if len(raw) > MAX_YAML_BYTES:
        raise ChurnError(f"{origin}: over the {MAX_YAML_BYTES}-byte limit for YAML")
    text = decode_utf8(raw, origin)
    try:
        check_yaml_structure(text, origin)
        return YAML(typ="safe", pure=True).load(text) or {}
    except (RuamelError, yaml.YAMLError, AssertionError, ValueError) as err:
        # ruamel asserts on some directives (``%YAML 1.3``): bad input, not a bug here.
        # ValueError: an integer of more digits than Python converts (4,300).
        # ruamel's advice to switch its duplicate-key check off is none to take here.
        why = " ".join(str(err).split()).split(" To suppress this check see:")[0]
        raise ChurnError(f"{origin}: not valid YAML ({clip(why, 300)})") from None


def utf8_bytes(text: str, origin: str) -> bytes:
    """The bytes behind ``text``: command output keeps undecodable bytes as escapes.

    :func:`churn.core.integrity.command` decodes with ``surrogateescape``, so a file
    shown by git that is not UTF-8 arrives here intact; any other lone surrogate is refused.
    """
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as err:
        line = text.count("\n", 0, err.start) + 1
        raise ChurnError(
            f"{origin}: line {line}: not UTF-8 text (a lone surrogate U+{ord(text[err.start]):04X})"
        ) from None


def utf8_text(text: str, origin: str) -> str:
    """``text`` if it is clean UTF-8 text, else one line naming the first bad byte and line."""
    return decode_utf8(utf8_bytes(text, origin), origin)


def decode_utf8(raw: bytes, origin: str) -> str:
    """UTF-8 text, or one line naming the first bad byte and its line."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise ChurnError(
            f"{origin}: line {line}: not UTF-8 (byte 0x{raw[err.start]:02x}); "
            "re-save the file as UTF-8"
        ) from None


def not_utf8_at(shown: str, path: str | Path) -> ChurnError | None:
    """The one line naming the first byte of ``path`` that is not UTF-8, by offset and line.

    None when every byte is (the file changed since its reader failed). ``shown`` is the
    name the user gave.
    """
    found = first_bad_utf8(path)
    if found is None:
        return None
    offset, byte, line = found
    return ChurnError(
        f"{shown}: not UTF-8 (byte 0x{byte:02x} at offset {offset}, line {line}); "
        "re-save the file as UTF-8"
    )


def first_bad_utf8(path: str | Path, block: int = 1 << 24) -> tuple[int, int, int] | None:
    """Where a file stops being UTF-8: (byte offset, the byte, line), or None if it never does.

    Read in blocks, so a multi-gigabyte file costs one block of memory; a character
    split across two blocks is joined by the incremental decoder.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, line = 0, 1
    with Path(path).open("rb") as fh:
        while True:
            chunk = fh.read(block)
            pending = decoder.getstate()[0]  # the start of a character the last block cut
            data = pending + chunk
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as err:
                start = offset - len(pending) + err.start
                return start, data[err.start], line + data.count(b"\n", 0, err.start)
            if not chunk:
                return None
            offset += len(chunk)
            line += chunk.count(b"\n")


def check_yaml_structure(text: str, origin: str) -> None:
    """Refuse what params and DVC files never need, from parser events, before any object.

    Anchors and aliases (``&a``, ``*a``) and merge keys (``<<``) let a few KB expand to
    gigabytes (the "billion laughs"); deep nesting costs recursion. Events come one at a
    time, so a refused file stops at its first offence. libyaml reads the events at C
    speed (the structure is the same in YAML 1.1 and 1.2); if it finds the text invalid,
    ruamel's YAML 1.2 parser, which has the last word on syntax, gives the events instead.
    """
    try:
        _check_events(yaml.parse(text, Loader=EventLoader), origin)
    except yaml.YAMLError:
        _check_events(YAML(typ="safe", pure=True).parse(text), origin)


def _check_events(events: Iterable[Any], origin: str) -> None:
    depth = nodes = 0
    for event in events:
        where = f"{origin}: line {event.start_mark.line + 1}"
        refused = _refused(event)
        if refused:
            raise ChurnError(f"{where}: {refused} not allowed (params never need them)")
        if isinstance(event, NODE_EVENTS):
            nodes += 1
            if nodes > MAX_YAML_NODES:
                raise ChurnError(f"{where}: more than {MAX_YAML_NODES} values")
        if isinstance(event, OPEN_EVENTS):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise ChurnError(f"{where}: nested deeper than {MAX_YAML_DEPTH} levels")
        elif isinstance(event, CLOSE_EVENTS):
            depth -= 1


def _refused(event: Any) -> str:
    """What is wrong with one event, or ``""``."""
    if isinstance(event, ALIAS_EVENTS):
        return f"YAML alias *{clip(event.anchor, 40)}"
    if getattr(event, "anchor", None) is not None:
        return f"YAML anchor &{clip(event.anchor, 40)}"
    if isinstance(event, SCALAR_EVENTS) and (
        (event.value == "<<" and event.implicit[0]) or event.tag == MERGE_TAG
    ):
        return "YAML merge key (<<)"
    return ""


def write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    """Write CSV without the index; floats keep full round-trip precision."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n")


def write_parquet(path: str | Path, frame: pd.DataFrame | pa.Table) -> None:
    """Write Parquet whose bytes depend only on the data and the pinned libraries.

    ``frame`` may be what :func:`parquet_table` made of one already (a stage writing
    several files converts them all before it replaces any).
    """
    table = frame if isinstance(frame, pa.Table) else parquet_table(frame)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def parquet_table(frame: pd.DataFrame) -> pa.Table:
    """``frame`` as the Arrow table :func:`write_parquet` writes.

    pandas stores its own version in the schema metadata; it is dropped so that
    identical frames give identical files. Column dtypes and the index survive.
    """
    table = pa.Table.from_pandas(frame, preserve_index=True)
    meta = dict(table.schema.metadata or {})
    pandas_meta = json.loads(meta[b"pandas"])
    pandas_meta.pop("pandas_version", None)
    meta[b"pandas"] = json.dumps(pandas_meta, sort_keys=True).encode()
    return table.replace_schema_metadata(meta)


def read_parquet(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a Parquet file written by :func:`write_parquet` (optionally some columns).

    Arrow's allocator keeps the buffers it freed for reuse; they are handed back
    at once, so the NumPy arrays a stage builds next do not sit on top of them.
    """
    try:
        frame = pd.read_parquet(require_file(path), columns=columns)
    except OSError as err:  # pyarrow's PermissionError names no file
        raise _naming(err, Path(path)) from None
    pa.default_memory_pool().release_unused()
    return frame


def write_pickle(path: str | Path, obj: Any) -> None:
    """Pickle an object (sklearn's own persistence format), atomically."""
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        pickle.dump(obj, fh, protocol=5)


def read_pickle(path: str | Path) -> Any:
    """Unpickle an artifact this pipeline wrote. Only load files you trust."""
    with require_file(path).open("rb") as fh:
        return pickle.load(fh)


# The first bytes of files that are no text. A CSV file never starts so: each magic has
# a control byte or one UTF-8 text cannot have there, or (PAR1) is taken only beside a NUL.
PARQUET = "a Parquet file"
NOT_TEXT = (  # (magic, what it is, whether a NUL must follow: the magic is printable)
    (b"\x1f\x8b", "gzip-compressed data", False),
    (b"\xfd7zXZ\x00", "xz-compressed data", False),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data", False),
    (b"PK\x03\x04", "a zip archive (an Excel .xlsx file is one)", False),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", False),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel .xls file (OLE2)", False),
    (b"ARROW1", "an Arrow or Feather file", True),
    (b"\xff\xff\xff\xff", "an Arrow stream", False),
    (b"PAR1", PARQUET, True),
)
SNIFF_BYTES = 64


def not_text(head: bytes) -> str | None:
    """What a file starting with ``head`` is, if it is compressed, an archive or Parquet.

    bzip2 is told by its block magic after the level digit.
    """
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[4:10] == b"1AY&SY":
        return "bzip2-compressed data"
    for magic, what, needs_nul in NOT_TEXT:
        if head.startswith(magic) and (b"\0" in head or not needs_nul):
            return what
    return None


UTF16_MIN_PAIRS = 4  # fewer bytes: too short to call


def utf16_like(head: bytes) -> bool:
    """Whether a file's first bytes are UTF-16 (or UTF-32) text: a BOM, or every other byte NUL.

    pyarrow read such a CSV as one column of stray NULs ("Expected 21 columns, got 1"),
    pandas as lines of control characters.
    """
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # UTF-32's begin so too
        return True
    even, odd = head[0 : len(head) // 2 * 2 : 2], head[1::2]  # pairs only: a last odd byte out
    if len(even) < UTF16_MIN_PAIRS:
        return False
    return (not odd.strip(b"\0") and bool(even.strip(b"\0"))) or (
        not even.strip(b"\0") and bool(odd.strip(b"\0"))
    )


def refuse_not_text(path: str, head: bytes, parquet_read: bool = False, text: str = "CSV") -> None:
    """One line for a ``text`` ("CSV", "JSON lines") file that is compressed, an archive or binary.

    pandas and pyarrow read one as text: "not UTF-8", or a CSV parse error quoting
    binary bytes. ``parquet_read``: the command reads Parquet by its name.
    """
    if utf16_like(head):  # read as UTF-8, its NULs were "control characters" or a column
        raise ChurnError(
            f"{clip(path, 300)}: not UTF-8 text (it looks like UTF-16 or UTF-32): save it as UTF-8"
        )
    kind = not_text(head)
    if kind is None:
        return
    if kind == PARQUET and parquet_read:
        fix = "name it .parquet"
    else:
        fix = f"save it as a UTF-8 {text} file"
    raise ChurnError(f"{clip(path, 300)}: not {text} text but {kind}: {fix}")


PIPELINE_HINT = " (run the stage that makes it, or `dvc pull`)"


def require_file(path: str | Path, hint: str = PIPELINE_HINT) -> Path:
    """Return ``path`` as a Path, or fail with a message naming it.

    ``hint`` follows "file not found": a pipeline file's by default; "" for a user's own
    file (a batch to monitor), which no stage makes.
    """
    p = Path(path)
    if not p.is_file():
        if p.exists():  # a directory, a FIFO: "not found" sent the user looking for it
            raise ChurnError(f"{clip(p, 200)}: not a regular file")
        raise ChurnError(f"{p}: file not found{hint}")
    return p


def replace_dir(src: str | Path, dst: str | Path) -> None:
    """Move directory ``src`` to ``dst``, replacing what was there only once ``src`` is complete."""
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    old = dst.with_name(f".{dst.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if dst.exists():
        os.replace(dst, old)
    os.replace(src, dst)
    shutil.rmtree(old, ignore_errors=True)
