"""Facts about artifacts: md5s, what a dvc.lock or a release tag records, git, and the check.

Unpickling runs code, so nothing outside the pipeline's own stages (which DVC
feeds their inputs) unpickles ``model.pkl`` without :func:`load_model`: the bytes
are read once, their md5 compared with the one ``dvc.lock`` records (the
workspace's, or the lock at a git revision) and, for a release, with the
``model-md5:`` line of its annotated tag; only then are they loaded. A model
reference (``MODEL_REF``) and a version are parsed here before git sees them.
Every git and tool call goes through :func:`command`, which fails in one way: a
:class:`ChurnError` naming the command and its last line of output.
"""

import contextlib
import hashlib
import pickle
import posixpath
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churn.core import io
from churn.core.errors import ChurnError, clip

LOCK_FILE = "dvc.lock"
MD5_BLOCK = 8 * 1024 * 1024  # bytes hashed at a time


def md5_of(data: bytes) -> str:
    """md5 of bytes, as DVC records it."""
    return hashlib.md5(data).hexdigest()  # noqa: S324 (DVC's hash)


def file_md5(path: str | Path) -> str:
    """md5 of a file's bytes, as DVC records it; read in blocks, never whole."""
    digest = hashlib.md5()  # noqa: S324 (DVC's hash)
    with io.require_file(path).open("rb") as fh:
        for block in iter(lambda: fh.read(MD5_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def check_made_from(output: str, source: str, lock: dict) -> None:
    """``output`` is the file ``lock`` records, made from ``source`` as it is now.

    A prepare that failed on a new raw file left the old contract.json: shown under the
    new file's name, it described columns the new file does not have.
    """
    again = "run dvc repro first"
    stage = _stage_making(lock, output)
    if stage is None or _md5_of_out(stage, output) != file_md5(output):
        raise ChurnError(f"{output}: not the file {LOCK_FILE} records: {again}")
    dep = next((d for d in stage.get("deps") or [] if _same(d.get("path"), source)), None)
    if dep is None:
        raise ChurnError(f"{output}: made from another file than {clip(source)}: {again}")
    # The size first: a changed file most often has another, and costs no read.
    if io.require_file(source).stat().st_size != dep.get("size") or (
        file_md5(source) != dep.get("md5")
    ):
        raise ChurnError(f"{clip(source)}: changed since {output} was made from it: {again}")


def _stage_making(lock: dict, output: str) -> dict | None:
    """The stage whose outs record an md5 for ``output``, or None.

    A lock read at a revision may be hand-edited into any shape: what is not DVC's
    (stages a mapping, each one's outs a list of mappings, an md5 text) records nothing.
    """
    stages = lock.get("stages")
    found = stages.values() if isinstance(stages, dict) else ()
    return next((s for s in found if _md5_of_out(s, output) is not None), None)


def _md5_of_out(stage: object, output: str) -> str | None:
    outs = stage.get("outs") if isinstance(stage, dict) else None
    for out in outs if isinstance(outs, list) else ():
        if isinstance(out, dict) and _same(out.get("path"), output):
            md5 = out.get("md5")
            return md5 if isinstance(md5, str) else None
    return None


def _same(recorded: object, path: str) -> bool:
    """Whether dvc.lock's ``recorded`` path names ``path`` (both relative to the repository)."""
    return isinstance(recorded, str) and posixpath.normpath(recorded) == posixpath.normpath(path)


def recorded_md5(lock: dict, path: str) -> str | None:
    """The md5 a parsed dvc.lock records for output ``path``, or None (any other shape: None)."""
    return _md5_of_out(_stage_making(lock, path), path)  # of None: None


def tracked_files(path: str | Path) -> list[str]:
    """The files git tracks at ``path``, or under it if a folder (none outside a work tree).

    Literal: a path with * or ? is a file name here, not a pattern. Raises
    :class:`ProgramMissing` without git.
    """
    listed = git_or_none("--literal-pathspecs", "ls-files", "-z", "--", str(path))
    return [name for name in (listed or "").split("\0") if name]


KEPT_FOLDERS = frozenset({".git", ".dvc"})  # git's and DVC's own state: nothing of ours goes in


def kept_by_repository(path: str | Path, root: str | Path = ".") -> str | None:
    """Why writing ``path`` (a file, or a folder to fill) would replace what the repository keeps.

    None when nothing: else "a file git tracks", "a DVC output (models/model.pkl)",
    a folder holding either, or a place inside ``.git`` or ``.dvc``. ``churn score
    --output data/raw/wa_churn.csv`` replaced the raw data with scores, ``churn report
    --out models/model.pkl`` the model with Markdown, ``churn monitor --out src`` put
    reports among the code.
    """
    try:
        target = Path(path).resolve()
    except (RuntimeError, OSError):  # a loop of links: the write itself names it
        return None
    if KEPT_FOLDERS & set(target.parts):
        return "inside git's or DVC's own folder"
    try:
        if tracked_files(path):
            return "holds files git tracks" if target.is_dir() else "a file git tracks"
    except ProgramMissing:  # no git (the container image): no work tree to keep
        pass
    return _kept_by_dvc(target, Path(root).resolve())


def _kept_by_dvc(target: Path, base: Path) -> str | None:
    """:func:`kept_by_repository`'s DVC part: a ``.dvc`` file's data or a dvc.lock output."""
    for place in (target, *target.parents):
        if base not in place.parents:  # `dvc add`'s .dvc files lie in the repository
            break
        if place.with_name(place.name + ".dvc").is_file():
            return f"tracked by DVC ({clip(place.name)}.dvc)"
    lock = base / LOCK_FILE
    for out in lock_outputs(io.read_yaml(lock) if lock.is_file() else {}):
        kept = (base / out).resolve()
        if kept == target or kept in target.parents:
            return f"a DVC output ({clip(out)})"
        if target in kept.parents:
            return f"holds a DVC output ({clip(out)})"
    return None


def lock_outputs(lock: object) -> dict[str, str]:
    """Every output a parsed dvc.lock records, path to md5 ("" if none; nothing if no lock)."""
    stages = lock.get("stages") if isinstance(lock, dict) else None
    if not isinstance(stages, dict):
        return {}
    return {
        str(out["path"]): out.get("md5", "")
        for stage in stages.values()
        if isinstance(stage, dict)
        for out in stage.get("outs") or []
        if isinstance(out, dict) and "path" in out
    }


def refuse_kept(
    path: str | Path, option: str, advice: str = "write elsewhere", shown: str | None = None
) -> None:
    """Raise when writing ``path`` would replace what the repository here keeps.

    The message names ``option`` and ``shown``, the path as the user gave it.
    """
    reason = kept_by_repository(path)
    if reason is not None:
        raise ChurnError(f"{option} {clip(shown or path, 200)}: {reason}; {advice}")


class ProgramMissing(ChurnError):
    """The program itself could not be run (e.g. no git, as in the container image)."""


def command(*cmd: str, cwd: str | Path | None = None) -> str:
    """Output of a command; a failure (or a missing program) is one line naming it.

    Output that is not UTF-8 (``git show`` of a file with stray bytes) never raises here:
    its bytes are kept as ``surrogateescape`` escapes, for the parser that reads it to
    name the bad byte and its line (:func:`churn.core.io.utf8_text`).
    """
    try:
        result = subprocess.run(
            list(cmd), cwd=cwd, capture_output=True, check=False, pass_fds=io.held_locks()
        )
    except OSError as err:
        raise ProgramMissing(f"`{shown_command(cmd)}`: {err.strerror}") from None
    stdout = result.stdout.decode("utf-8", "surrogateescape")
    if result.returncode != 0:
        stderr = result.stderr.decode("utf-8", "replace")
        why = failure_line(stderr or stdout, result.returncode)
        raise ChurnError(f"`{shown_command(cmd)}` failed: {why}")
    return stdout


def shown_command(cmd: tuple[str, ...]) -> str:
    """The command as one clipped line: a tag message's lines would make the error many."""
    first_lines = (arg.split("\n", 1)[0] + " ..." if "\n" in arg else arg for arg in cmd)
    return clip(" ".join(first_lines), 200)


# How DVC, git and GTO start the line that says what went wrong.
FAILURE_PREFIXES = ("ERROR:", "error:", "fatal:", "\N{CROSS MARK}")


def failure_line(output: str, status: int) -> str:
    """The line of a failed command's output that says why, clipped.

    The first line starting the way DVC, git or GTO word an error; else the last line,
    leaving out a "report it here" or support banner, which says nothing of the cause.
    """
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(FAILURE_PREFIXES):
            return clip(line, 300)
    said = [line for line in lines if not _banner(line)]
    return clip(said[-1], 300) if said else f"exit {status}"


def _banner(line: str) -> bool:
    """A help banner of DVC or GTO: where to ask, not what failed."""
    return "dvc.org/support" in line or "/issues>" in line or line.startswith("Please report it")


def git(*args: str, cwd: str | Path | None = None) -> str:
    """Output of a git command, or a one-line :class:`ChurnError`."""
    return command("git", *args, cwd=cwd)


def git_or_none(*args: str, cwd: str | Path | None = None) -> str | None:
    """Output of a git command, or None when it fails (e.g. a path absent at a revision).

    A missing git is still an error: "no such revision" would send the user the wrong way.
    """
    try:
        return git(*args, cwd=cwd)
    except ProgramMissing:
        raise
    except ChurnError:
        return None


def project_root(start: str | Path) -> Path:
    """The DVC project around ``start``: the nearest folder holding ``.dvc``, as DVC finds it.

    ``start`` itself when it is one, or when none is found (its errors then name it). Run
    from ``src/``, a model ref's ``dvc.lock`` was looked for at ``src/dvc.lock`` of the
    commit, and the commit was said to have none.
    """
    here = Path(start)
    found = (folder for folder in (here, *here.absolute().parents) if (folder / ".dvc").is_dir())
    return next(found, here)


def is_revision(rev: str, cwd: str | Path | None = None) -> bool:
    """Whether ``rev`` names a commit; never read as an option, whatever it starts with."""
    return (
        git_or_none(
            "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", cwd=cwd
        )
        is not None
    )


def commit_of(rev: str = "HEAD", cwd: str | Path | None = None) -> str:
    """The full commit hash ``rev`` points at, or ``unknown`` where git cannot say."""
    try:
        found = git_or_none(
            "rev-parse", "--verify", "--end-of-options", f"{rev}^{{commit}}", cwd=cwd
        )
    except ProgramMissing:  # no git at all, as in the container image
        return "unknown"
    return found.strip() if found else "unknown"


# Each part of a version: 0, or up to six digits without a leading zero. The cap keeps a
# typo (or 5,000 digits) from becoming a release that every later version must exceed.
PART = r"(0|[1-9][0-9]{0,5})"
VERSION = re.compile(rf"{PART}\.{PART}\.{PART}")
NAME = r"[a-z](?:[a-z0-9-]{0,62}[a-z0-9])?"  # artifact or stage: GTO's grammar, lowercase
RELEASE_TAG = re.compile(rf"(?P<artifact>{NAME})@v(?P<version>[0-9.]{{5,20}})")
# GTO numbers each assignment: <artifact>#<stage>#N; without N, the newest one.
STAGE_TAG = re.compile(rf"(?P<artifact>{NAME})#(?P<stage>{NAME})(?:#[1-9][0-9]{{0,5}})?")
COMMIT = re.compile(r"[0-9a-fA-F]{7,40}")  # git takes either case
MD5_LINE = re.compile(r"^model-md5: ([0-9a-f]{32})$", re.MULTILINE)
REF_FORMS = "<artifact>@vX.Y.Z, <artifact>#<stage>[#N] or a commit hash (7-40 hex digits)"


def shown(text: str, limit: int = 40) -> str:
    """``text`` quoted for a one-line message, cut to ``limit`` characters."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def parse_version(text: str) -> tuple[int, int, int]:
    """``1.2.3`` (or ``v1.2.3``) as a comparable tuple; anything else is a one-line error."""
    match = VERSION.fullmatch(text.removeprefix("v"))
    if not match:
        raise ChurnError(
            f"VERSION {shown(text)}: expected MAJOR.MINOR.PATCH, e.g. 1.0.0 "
            "(each part 0 or up to 6 digits without a leading zero; a leading v is allowed)"
        )
    return tuple(int(part) for part in match.groups())  # type: ignore[return-value]


def version_text(version: tuple[int, int, int]) -> str:
    """``(1, 2, 3)`` as ``1.2.3``."""
    return ".".join(map(str, version))


@dataclass(frozen=True)
class ModelRef:
    """A parsed ``MODEL_REF``: a release tag, a stage tag, or a commit."""

    text: str
    kind: str  # "release", "stage" or "commit"
    artifact: str = ""


def parse_model_ref(text: str) -> ModelRef:
    """Check a model reference's form before any git call sees it."""
    release = RELEASE_TAG.fullmatch(text)
    if release:
        parse_version(release["version"])
        return ModelRef(text, "release", release["artifact"])
    stage = STAGE_TAG.fullmatch(text)
    if stage:
        return ModelRef(text, "stage", stage["artifact"])
    if COMMIT.fullmatch(text):
        return ModelRef(text, "commit")
    raise ChurnError(f"MODEL_REF {shown(text)}: expected {REF_FORMS}")


def tag_message(tag: str, cwd: str | Path | None = None) -> str:
    """The message of annotated tag ``tag``; a missing or lightweight tag is an error."""
    found = git(
        "for-each-ref", "--format=%(objecttype)%00%(contents)", "--", f"refs/tags/{tag}", cwd=cwd
    )
    kind, _, message = found.partition("\0")
    if not found:
        raise ChurnError(f"{tag}: no such tag")
    if kind != "tag":
        raise ChurnError(f"{tag}: a lightweight tag; a release is an annotated tag with its md5")
    return message


def md5_in_message(message: str) -> str | None:
    """The ``model-md5: <hex>`` a release tag's message records, or None."""
    found = MD5_LINE.findall(message)
    return found[0] if len(found) == 1 else None


def release_tag_md5(tag: str, cwd: str | Path | None = None) -> str:
    """The model md5 annotated release tag ``tag`` records; one-line error when it has none."""
    md5 = md5_in_message(tag_message(tag, cwd=cwd))
    if md5 is None:
        raise ChurnError(f"{tag}: its message has no single 'model-md5: <hex>' line")
    return md5


def is_release(tag: str, cwd: str | Path | None = None) -> bool:
    """Whether ``tag`` is a release: annotated, recording one model md5 (what verify checks).

    A lightweight tag or one made by hand with another message has the name of a
    release and nothing else: it is no earlier release to compare with.
    """
    try:
        recorded = md5_in_message(tag_message(tag, cwd=cwd)) is not None
    except ChurnError:
        return False
    return recorded and is_revision(tag, cwd=cwd)  # a tag of a tree or a blob is no release


def check_committed(advice: str = "commit first", cwd: str | Path | None = None) -> None:
    """No uncommitted or untracked files (git-ignored ones aside): HEAD is what runs."""
    dirty = git("status", "--porcelain", cwd=cwd).splitlines()
    if dirty:
        raise ChurnError(
            f"working tree is not clean ({len(dirty)} path(s), e.g. {dirty[0][3:]}): {advice}"
        )


def check_full_history(what: str, cwd: str | Path | None = None) -> None:
    """A shallow clone has neither the earlier releases nor their history: ``what`` needs both."""
    if git("rev-parse", "--is-shallow-repository", cwd=cwd).strip() == "true":
        raise ChurnError(
            f"this clone is shallow: {what} needs the whole history and its tags "
            "(git fetch --unshallow --tags)"
        )


def check_dvc_config(root: str | Path = ".") -> None:
    """Refuse in one line a DVC config file that DVC cannot read, naming the file.

    DVC's own error names none of the four it merges (system, global, the repository's
    and its config.local), and surfaces as a traceback, a failed subcommand or a
    missing output, depending on which command read it first. Like DVC, the merged
    config is what must be valid (a config.local may set a remote's endpoint alone,
    the repository's config its url): the file named is the one whose addition gave
    the error that is left.
    """
    from dvc.config import Config, ConfigError, merge
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    try:
        dvc_dir = Path(Repo.find_dvc_dir(str(root)))
    except NotDvcRepoError:
        return  # each command says what it needs outside a project
    files = [Path(Config.get_dir(level)) / Config.CONFIG for level in Config.SYSTEM_LEVELS]
    merged: dict = {}
    culprit = None
    for path, conf in _config_files(
        [*files, dvc_dir / Config.CONFIG, dvc_dir / Config.CONFIG_LOCAL]
    ):
        merge(merged, conf)
        try:
            Config.validate(merged)  # voluptuous builds a new mapping: merged is kept
        except ConfigError as err:
            if culprit is None or str(culprit[1]) != str(err):  # a new error: this file's
                culprit = (path, err)
        else:
            culprit = None
    if culprit is not None:
        raise _unreadable_config(*culprit)


def _config_files(paths: list[Path]) -> list[tuple[Path, dict]]:
    """Each DVC config file that exists, parsed; one line naming one that does not parse."""
    from dvc.config import Config, ConfigError

    found = []
    for path in paths:
        try:
            found.append((path, Config.load_file(str(path))))
        except FileNotFoundError:
            continue
        except ConfigError as err:
            raise _unreadable_config(path, err) from None
        except OSError as err:
            raise ChurnError(
                f"{_shown_path(path)}: cannot read this DVC config file ({err.strerror})"
            ) from None
    return found


# The config parser quotes a line it cannot read: "secret_access_key KEY" (its "=" lost)
# was printed whole. The line's number is kept, its text never shown.
QUOTED_LINE = re.compile(r"Invalid line \(.*\) \(matched as neither section nor keyword\)")


def _unreadable_config(path: Path, err: Exception) -> ChurnError:
    why = " ".join(str(err).removeprefix("config file error: ").split())
    why = QUOTED_LINE.sub("A line that is neither a section nor a key = value", why)
    return ChurnError(f"{_shown_path(path)}: DVC cannot read this config file ({clip(why, 200)})")


def _shown_path(path: Path) -> str:
    """``path`` relative to the working directory when it is under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def latest_stage_tag(artifact: str, stage: str, cwd: str | Path | None = None) -> str:
    """The assignment tag of the version in ``stage`` now, as ``gto show`` reads the tags.

    GTO numbers every event of an artifact: ``<artifact>#<stage>#N`` assigns the stage
    to the commit's version, ``<artifact>#<stage>!#N`` (``gto deprecate ARTIFACT
    VERSION STAGE``) takes it away. A version is in the stage while its last event there
    is an assignment, and while it is registered (``gto deprecate ARTIFACT VERSION``
    tags ``<artifact>@vX.Y.Z!``); of those, the stage is the one assigned last. A
    deprecated artifact (``<artifact>@deprecated``) has no stages. Lightweight tags are
    no events (GTO skips them too).
    """
    deprecated = _gto_tags(cwd, f"{artifact}@deprecated*")
    if deprecated:
        raise ChurnError(f"{artifact}#{stage}: {artifact} is deprecated ({deprecated[0][0]})")
    gone = {commit for _, commit in _gto_tags(cwd, f"{artifact}@v*!*")}
    event = re.compile(rf"{re.escape(artifact)}#{re.escape(stage)}(!?)#([1-9][0-9]{{0,5}})")
    events = []
    for name, commit in _gto_tags(cwd, f"{artifact}#{stage}#*", f"{artifact}#{stage}!#*"):
        found = event.fullmatch(name)
        if found:
            events.append((int(found[2]), name, commit, found[1] == "!"))
    last: dict[str, tuple[int, str, bool]] = {}
    for number, name, commit, unassigned in sorted(events):
        last[commit] = (number, name, unassigned or commit in gone)
    assigned = [(number, name) for number, name, out in last.values() if not out]
    if assigned:
        return max(assigned)[1]
    if events:
        _, name, _, unassigned = max(events)
        why = f"{name} took the last out" if unassigned else f"{name}'s version is deregistered"
        raise ChurnError(f"{artifact}#{stage}: no version is in stage {stage} now ({why})")
    raise ChurnError(f"{artifact}#{stage}: no such stage tag (make promote first)")


def _gto_tags(cwd: str | Path | None, *patterns: str) -> list[tuple[str, str]]:
    """The annotated tags matching ``patterns`` (as GTO writes its events), with their commits."""
    listed = git(
        "for-each-ref",
        "--format=%(refname:strip=2)%00%(objecttype)%00%(*objectname)",
        *(f"refs/tags/{pattern}" for pattern in patterns),  # refs/...: never an option
        cwd=cwd,
    )
    found = []
    for line in listed.splitlines():
        name, kind, commit = line.split("\0")
        if kind == "tag":
            found.append((name, commit))
    return found


def release_at(commit: str, artifact: str, cwd: str | Path | None = None) -> str:
    """The highest ``<artifact>@vX.Y.Z`` release tag on ``commit``; error when none."""
    tags = git("tag", "--points-at", commit, "--list", "--", f"{artifact}@v*", cwd=cwd).split()
    versions = [
        t for t in tags if RELEASE_TAG.fullmatch(t) and _is_version(t) and is_release(t, cwd)
    ]
    if not versions:
        raise ChurnError(f"commit {commit[:12]} carries no {artifact}@vX.Y.Z release tag")
    return max(versions, key=lambda t: parse_version(t.split("@v", 1)[1]))


def _is_version(tag: str) -> bool:
    return VERSION.fullmatch(tag.split("@v", 1)[1]) is not None


def resolve_model_ref(text: str, root: str | Path) -> tuple[str, str | None]:
    """The git revision to load a ``MODEL_REF`` at, and the release tag md5 to check, if any.

    A release tag must carry its md5; a stage tag is checked against the release tag on
    the same commit; a bare commit is checked against its dvc.lock only.
    """
    ref = parse_model_ref(text)
    if ref.kind == "stage":
        artifact, stage, *number = text.split("#")
        tag = text if number else latest_stage_tag(artifact, stage, cwd=root)
        if not is_revision(tag, cwd=root):
            raise ChurnError(f"{tag}: no such stage tag")
        return tag, release_tag_md5(release_at(commit_of(tag, root), artifact, root), root)
    if ref.kind == "commit":
        return commit_named(text, root), None
    if not is_revision(text, cwd=root):
        raise no_revision(text)
    return text, release_tag_md5(text, cwd=root)


def no_revision(text: str) -> ChurnError:
    """The one line for a model ref that names no commit."""
    return ChurnError(f"{text}: no such git revision (a tag like churn-model@v1.0.0, or a commit)")


def commit_named(prefix: str, cwd: str | Path | None = None) -> str:
    """The one commit whose id starts with hex ``prefix`` (7-40 digits), in full.

    git itself prefers a branch or tag of that name to the object: a branch called
    like a release's short hash would load another commit's model.
    """
    # Either case: git reads hex digits in both.
    listed = git("rev-parse", f"--disambiguate={prefix}", cwd=cwd).split()
    kinds = {name: git("cat-file", "-t", name, cwd=cwd).strip() for name in listed}
    commits = [name for name, kind in kinds.items() if kind == "commit"]
    if len(kinds) == 1 and not commits:  # a tree, a file's blob, a tag object: no commit
        (kind,) = kinds.values()
        raise ChurnError(
            f"{prefix}: a git {kind} object, not a commit "
            "(a tag like churn-model@v1.0.0, or a commit)"
        )
    if not commits:
        raise no_revision(prefix)
    if len(commits) > 1:
        raise ChurnError(f"{prefix}: the start of {len(commits)} commits; give more digits")
    return commits[0]


@dataclass(frozen=True)
class ModelBytes:
    """A model file's bytes, checked against the md5 its dvc.lock records."""

    data: bytes
    md5: str
    path: str
    rev: str | None  # None: the workspace


def read_lock(rev: str | None = None, root: str | Path = ".") -> dict:
    """The parsed dvc.lock of the workspace at ``root``, or of git revision ``rev``."""
    if rev is None:
        path = Path(root) / LOCK_FILE
        if not path.is_file():
            raise ChurnError(f"{path}: file not found; cannot check the model before loading it")
        return io.read_yaml(path)
    if not is_revision(rev, cwd=root):
        raise no_revision(rev)
    shown_at = git_or_none("show", "--end-of-options", f"{rev}:./{LOCK_FILE}", cwd=root)
    if shown_at is None:  # git's own words ("exists on disk, but not in ...") mislead
        raise ChurnError(f"{rev}: its commit has no {LOCK_FILE}: no model of this pipeline")
    return io.parse_yaml(shown_at, f"{rev}:{LOCK_FILE}")


def read_model_bytes(
    model_path: str, rev: str | None = None, root: str | Path = ".", tag_md5: str | None = None
) -> ModelBytes:
    """Read ``model_path`` (in the workspace at ``root``, or through DVC at ``rev``); check its md5.

    Raises a one-line :class:`ChurnError` when the lock records no md5 for the
    model, or the bytes differ from it or from ``tag_md5`` (a release tag's
    record): such a file is never unpickled.
    """
    lock = read_lock(rev, root)
    where = LOCK_FILE if rev is None else f"{rev}:{LOCK_FILE}"
    data = read_tracked_bytes(model_path, lock, where, rev, root, tag_md5, "unpickle it")
    return ModelBytes(data=data, md5=md5_of(data), path=model_path, rev=rev)


def read_tracked_bytes(
    path: str,
    lock: dict,
    where: str,
    rev: str | None,
    root: str | Path = ".",
    tag_md5: str | None = None,
    use: str = "use it",
) -> bytes:
    """The bytes of DVC output ``path``, once they match the md5 ``lock`` records.

    ``where`` names the lock in messages. They must also match ``tag_md5`` when given (a
    release tag's record). Anything else is a one-line error ending "refusing to <use>".
    """
    expected = recorded_md5(lock, path)
    if not expected:
        raise ChurnError(f"{where} records no md5 for {path}: refusing to {use}")
    data = _model_data(path, rev, Path(root))
    actual = md5_of(data)
    if actual != expected:
        raise ChurnError(
            f"{path}: md5 {actual} does not match {expected} in {where}: refusing to {use}"
        )
    if tag_md5 is not None and actual != tag_md5:
        raise ChurnError(
            f"{path}: md5 {actual} does not match {tag_md5} in the release tag: refusing to {use}"
        )
    return data


def _model_data(model_path: str, rev: str | None, root: Path) -> bytes:
    if rev is None:
        path = root / model_path
        if not path.is_file():
            raise ChurnError(f"{model_path}: file not found (run dvc repro or dvc pull)")
        return path.read_bytes()
    import dvc.api  # only a released model needs DVC

    try:
        return dvc.api.read(model_path, repo=str(root), rev=rev, mode="rb")
    except remote_errors() as err:
        check_dvc_config(root)  # a broken config file: named
        if type(err).__name__ in MISSING_ERRORS:  # "cannot read it" read as no such path
            raise ChurnError(
                f"{rev}:{model_path}: in neither the DVC cache nor the remote: dvc pull, or "
                "dvc push where it was released"
            ) from None
        raise ChurnError(
            f"{rev}:{model_path}: cannot read it through DVC ({type(err).__name__})"
        ) from None


# What DVC raises when the lock records a file that neither its cache nor the remote holds.
MISSING_ERRORS = frozenset({"PathMissingError"})


def remote_errors() -> tuple[type[Exception], ...]:
    """What reading through DVC raises when the cache and remote cannot give a file.

    DVC's own errors and the OS's, and botocore's (no credentials, an unknown profile,
    an endpoint that does not answer), which DVC lets through from an S3 remote.
    """
    from dvc.exceptions import DvcException

    errors: list[type[Exception]] = [DvcException, OSError]
    with contextlib.suppress(ImportError):  # dvc-s3 brings botocore; without it, no S3
        from botocore.exceptions import BotoCoreError, ClientError

        errors += [BotoCoreError, ClientError]
    return tuple(errors)


def load_model(
    model_path: str, rev: str | None = None, root: str | Path = "."
) -> tuple[Any, ModelBytes]:
    """The unpickled model and its checked bytes; refuses any file dvc.lock does not vouch for.

    ``rev`` is a ``MODEL_REF`` (checked by :func:`resolve_model_ref`, and for a release
    also against its tag's md5), or None for the workspace model.
    """
    tag_md5 = None
    if rev is not None:
        rev, tag_md5 = resolve_model_ref(rev, root)
    checked = read_model_bytes(model_path, rev, root, tag_md5=tag_md5)
    origin = model_path if rev is None else f"{rev}:{model_path}"
    return unpickle(checked.data, origin), checked


DAMAGED = (ValueError, TypeError, IndexError, KeyError)  # what pickle raises on cut bytes


def unpickle(data: bytes, origin: str) -> Any:
    """The object in checked bytes (safe only because their md5 matched); one line if it fails.

    A model pickled with other versions of its libraries (a class since moved or
    renamed) or bytes damaged before DVC recorded them fail here, not in a traceback.
    """
    try:
        return pickle.loads(data)
    except (pickle.UnpicklingError, EOFError, ImportError, AttributeError, *DAMAGED) as err:
        raise ChurnError(
            f"{origin}: cannot be unpickled ({type(err).__name__}: {clip(err)}): made with "
            "other versions of its libraries (see requirements.txt), or damaged"
        ) from None
