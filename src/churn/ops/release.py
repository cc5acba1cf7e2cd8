"""Model releases as git tags in GTO's grammar: ``churn release create|promote|verify|notes``.

``create VERSION`` tags the current commit ``<artifact>@vVERSION`` (annotated,
the metrics and the model's md5 in its message) only when the tree and the pipeline are clean, the
outputs are pushed, the version is new and greater than the last, and the
metrics pass the gate in ``params.yaml`` (``release:``): an absolute floor and
"not significantly worse than the previous release" by the same paired
bootstrap as the PR report. ``promote VERSION STAGE`` assigns a stage with
``gto assign`` (tag ``<artifact>#<stage>#N``). ``notes TAG`` prints the release
notes: the model card plus the tag and commit, which the card itself never
contains. ``verify [TAG]`` checks the model file against dvc.lock and the tag's
``model-md5:`` line; ``gate TAG`` re-applies the metric gate to a pushed tag (the
release workflow runs both). The artifact's name comes from ``artifacts:`` in dvc.yaml.
"""

import json
import logging
import math
import re
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from churn.core import integrity, io
from churn.core.errors import ChurnError, clip
from churn.core.integrity import (
    RELEASE_TAG,
    STAGE_TAG,
    VERSION,
    command,
    commit_of,
    git,
    is_release,
    is_revision,
    parse_version,
    read_model_bytes,
    release_at,
    version_text,
)
from churn.core.markdown import shown, signed
from churn.core.params import Params, load_params
from churn.ops.results import (
    Side,
    compare,
    finite_number,
    load_base,
    load_head,
    own_points,
    paths_of,
    read_through_dvc,
    yaml_at,
)

log = logging.getLogger("churn.release")

STAGE = re.compile(integrity.NAME)  # GTO refuses a name ending in a dash
# What a tag named like a release, but not annotated by `churn release create`, is.
NOT_A_RELEASE = "a tag that is no release (lightweight, or made by hand)"
METRIC_LINE = re.compile(r"^  ([A-Za-z0-9_]+): (-?[0-9]+\.[0-9]{4})$", re.MULTILINE)


def artifact_name(dvc_yaml: str | Path = "dvc.yaml") -> str:
    """The one model artifact declared under ``artifacts:`` in dvc.yaml."""
    artifacts = io.read_yaml(dvc_yaml).get("artifacts") or {}
    models = [name for name, spec in artifacts.items() if spec.get("type") == "model"]
    if len(models) != 1:
        raise ChurnError(f"dvc.yaml: expected one artifact of type model, found {models}")
    return models[0]


def released_versions(artifact: str, tags: list[str]) -> list[tuple[int, int, int]]:
    """Versions registered for ``artifact`` among ``tags``, ascending.

    A tag outside the strict form (e.g. a 38-digit part made before the limit) is
    ignored, so it cannot block every later release.
    """
    prefix = f"{artifact}@v"
    found = [t.removeprefix(prefix) for t in tags if t.startswith(prefix)]
    return sorted(parse_version(v) for v in found if VERSION.fullmatch(v))


def releases(artifact: str, tags: list[str]) -> list[str]:
    """The tags among ``tags`` that are releases of ``artifact``, not only named like one."""
    return [t for t in tags if t.startswith(f"{artifact}@v") and is_release(t)]


def check_version(
    version: str,
    existing: list[tuple[int, int, int]],
    released: Collection[tuple[int, int, int]] | None = None,
) -> None:
    """New and greater than every version a tag names.

    ``released``: those of ``existing`` whose tag is a release; None: all of them. A
    tag named like a release that is none (lightweight, or hand-made) still holds its
    name and its place in the order, and the message says what it is.
    """
    wanted = parse_version(version)
    version = version_text(wanted)
    released = existing if released is None else released
    if wanted in existing:
        if wanted in released:
            raise ChurnError(f"version v{version} is already released")
        raise ChurnError(f"version v{version}: {NOT_A_RELEASE} of that name already exists")
    if existing and wanted < existing[-1]:
        latest = version_text(existing[-1])
        if existing[-1] in released:
            raise ChurnError(f"version v{version} is not greater than the latest release v{latest}")
        raise ChurnError(
            f"version v{version} is not greater than v{latest}, which {NOT_A_RELEASE} names"
        )


def check_head_unreleased(artifact: str) -> None:
    """One version per commit: GTO refuses a second one, then every later assignment too."""
    here = git("tag", "--points-at", "HEAD", "--list", "--", f"{artifact}@v*").split()
    named = sorted(t for t in here if RELEASE_TAG.fullmatch(t))
    if named:
        raise ChurnError(
            f"HEAD already carries {', '.join(named[:3])}: one version per commit (GTO's rule); "
            "commit a change to release another"
        )


def check_clean() -> None:
    """No uncommitted or untracked files, and nothing for `dvc repro` to do."""
    integrity.check_committed()
    status = json.loads(command("dvc", "status", "--json") or "{}")
    if status:
        raise ChurnError(f"dvc status is not clean ({', '.join(sorted(status))}): {advice(status)}")


def advice(status: dict) -> str:
    """What fixes an unclean ``dvc status --json``: a rerun, or only the files.

    A stage whose params, command or input files changed is stale: ``dvc repro``. When
    only outputs differ from dvc.lock (say, right after ``git checkout main``), the lock
    is right and the files are not: ``dvc checkout`` puts the recorded ones back. A
    stage that reads such an output shows it as a changed dep; that is not staleness.
    """
    changes = [change for entries in status.values() for change in entries or []]
    outs = {
        path
        for change in changes
        if isinstance(change, dict)
        for path in change.get("changed outs", {})
    }
    stale = sorted(
        name for name, entries in status.items() if any(_is_stale(c, outs) for c in entries or [])
    )
    if stale:
        return f"stage(s) {', '.join(stale)} are stale: run dvc repro and commit"
    return (
        "the outputs differ from dvc.lock: run dvc checkout (or dvc pull if the cache lacks them)"
    )


def _is_stale(change: object, outs: set[str]) -> bool:
    if not isinstance(change, dict):  # "always changed", "changed checksum"
        return True
    for key, changed in change.items():
        if key == "changed outs":
            continue
        if key != "changed deps" or not set(changed) <= outs:
            return True
    return False


def check_pushed() -> None:
    """Every output of this commit is on the default remote."""
    missing = json.loads(command("dvc", "status", "--cloud", "--json") or "{}")
    if missing:
        raise ChurnError(
            f"outputs are not on the default DVC remote ({len(missing)} missing, e.g. "
            f"{sorted(missing)[0]}): run dvc push"
        )


def gate(head: Side, previous: Side | None, params: Params) -> str:
    """Check the metrics; return the verdict line for the tag message."""
    rule = params.release
    value = head.metrics.get(rule.metric)
    if value is None:
        raise ChurnError(f"metrics.json has no {rule.metric}: run dvc repro")
    # NaN is below no floor and True is 1: only a real, finite number can pass the gate.
    if not finite_number(value):
        raise ChurnError(f"metrics.json: {rule.metric} is {clip(repr(value))}, not a finite number")
    check_against_predictions(head, rule.metric, value, params)
    said = shown(value, rule.minimum, ".4f")  # 0.79996 said as "0.8000": not below 0.8
    if value < rule.minimum:
        raise ChurnError(
            f"{rule.metric} {said} is below the release floor {rule.minimum} "
            "(release.minimum in params.yaml)"
        )
    if previous is None:
        return f"{rule.metric} {said} (floor {rule.minimum}); first release"
    if previous.metrics is None:
        raise ChurnError(
            f"cannot compare with the previous release {previous.label}: {previous.note}"
        )
    comparisons = compare(previous, head, params.report, params.decision)
    result = next((c for c in comparisons if c.metric == rule.metric), None)
    if result is None:  # a release from before the decision metrics existed
        raise ChurnError(
            f"cannot compare {rule.metric} with the previous release {previous.label}: it "
            "records no decision threshold or customer values"
        )
    low, high = signed(result.low, "+.4f"), signed(result.high, "+.4f")
    interval = (
        f"{signed(result.diff, '+.4f')}, {params.report.confidence * 100:g} % CI [{low}, {high}]"
    )
    if result.verdict == "worse":
        raise ChurnError(f"{rule.metric} is significantly worse than {previous.label} ({interval})")
    floor = f"{rule.metric} {said} (floor {rule.minimum})"
    return f"{floor}; vs {previous.label}: {interval}, {result.verdict}"


def check_against_predictions(head: Side, metric: str, value: float, params: Params) -> None:
    """The gated metric is what the predictions beside it give; else one line.

    The floor read metrics.json and the comparison the predictions: a value edited by
    hand passed the floor, the verdict beside it showing the model unchanged.
    """
    computed = own_points(head, params.decision).get(metric)
    if computed is not None and not math.isclose(computed, value, rel_tol=1e-9, abs_tol=1e-12):
        raise ChurnError(
            f"metrics.json: {metric} {value:.4f}, but the predictions beside it give "
            f"{computed:.4f}: edited by hand, or not from this run (dvc repro)"
        )


def tag_message(artifact: str, version: str, metrics: dict, verdict: str, md5: str) -> str:
    """Annotated tag message: the version, the gate's verdict, every test metric, the md5.

    ``model-md5:`` is the machine-readable line MODEL_REF loading and the release
    workflow check the model against, besides dvc.lock.
    """
    lines = [f"{artifact} v{version}", "", verdict, "", "Test metrics:"]
    lines += [f"  {k}: {v:.4f}" for k, v in metrics.items() if isinstance(v, float)]
    lines += ["", f"model-md5: {md5}"]
    return "\n".join(lines) + "\n"


def recorded_metrics(message: str) -> dict[str, str]:
    """The test metrics a release tag's message records, as their 4-decimal text."""
    return dict(METRIC_LINE.findall(message))


@contextmanager
def one_at_a_time() -> Iterator[None]:
    """Hold the clone's release lock: creates and promotions run one after another.

    Two at once both find HEAD unreleased and tag it twice (GTO then refuses every
    later assignment), and two promotions each report the other's stage tag.
    """
    # The common git dir: linked worktrees share the tags, so they share the lock too.
    path = Path(git("rev-parse", "--git-common-dir").strip()) / "churn-release.lock"
    with io.file_lock(path):  # gto and git, run meanwhile, hold it too
        yield


def create(version: str) -> str:
    """Check everything, then tag HEAD; returns the tag."""
    version = version_text(parse_version(version))  # before any other work; v1.0.2 -> 1.0.2
    with one_at_a_time():
        return _create(version)


def _create(version: str) -> str:
    params = load_params()
    artifact = artifact_name()
    integrity.check_full_history("a release (the version order, the gate)")
    check_clean()
    names = git("tag", "--list").split()
    # Any tag holds its name and its place in the order, a release or not.
    older = released_versions(artifact, releases(artifact, names))
    check_version(version, released_versions(artifact, names), older)
    check_head_unreleased(artifact)
    check_pushed()
    md5 = read_model_bytes(params.paths.model).md5
    root = Path.cwd()
    head = load_head(root)
    if head.metrics is None:
        raise ChurnError(f"{params.paths.reports}/metrics.json: missing: run dvc repro first")
    previous = load_base(root, f"{artifact}@v{version_text(older[-1])}") if older else None
    verdict = gate(head, previous, params)
    tag = f"{artifact}@v{version}"
    message = tag_message(artifact, version, head.metrics, verdict, md5)
    git("tag", "-a", "-m", message, "--", tag)
    log.info("created %s: %s", tag, verdict)
    return tag


def promote(version: str, stage: str) -> str:
    """Assign ``stage`` to a released version (GTO's ``<artifact>#<stage>#N`` tag)."""
    version = version_text(parse_version(version))
    if not STAGE.fullmatch(stage):
        raise ChurnError(
            f"STAGE {integrity.shown(stage)}: lowercase letters, digits and dashes, "
            "from a letter to a letter or digit, e.g. prod"
        )
    with one_at_a_time():
        return _assign(artifact_name(), version, stage)


def _assign(artifact: str, version: str, stage: str) -> str:
    tag = f"{artifact}@v{version}"
    if tag not in git("tag", "--list", "--", tag).split():
        raise ChurnError(f"{tag} does not exist: make release VERSION={version} first")
    release_tag(tag)  # a lightweight or hand-made tag of that name is no release to promote
    pattern = f"{artifact}#{stage}#*"
    before = set(git("tag", "--list", "--", pattern).split())
    try:
        command("gto", "assign", artifact, "--version", f"v{version}", "--stage", stage)
    except ChurnError as err:  # GTO's line, cut at its first line, offers a --force we lack
        for left in sorted(set(git("tag", "--list", "--", pattern).split()) - before):
            git("tag", "-d", "--", left)  # GTO may tag, then fail: no assignment half made
        if "is already in stage" in str(err):
            raise ChurnError(f"{tag} is already in stage {stage}") from None
        _check_tag_targets(artifact)  # GTO's own words for a tag of a tree: an AttributeError
        raise
    created = sorted(set(git("tag", "--list", "--", pattern).split()) - before)
    log.info("assigned %s to %s: %s", stage, tag, ", ".join(created))
    return created[-1] if created else ""


def _check_tag_targets(artifact: str) -> None:
    """Each tag of ``artifact`` (releases, stages) must name a commit, or GTO cannot read them."""
    listed = git(
        "for-each-ref",
        "--format=%(refname:strip=2)%00%(objecttype)%00%(*objecttype)",
        "--",
        f"refs/tags/{artifact}@*",
        f"refs/tags/{artifact}#*",
    )
    for line in listed.splitlines():
        name, kind, peeled = line.split("\0")
        target = peeled or kind  # an annotated tag's own type is "tag": what it points at counts
        if target != "commit":
            raise ChurnError(
                f"{clip(name)}: a tag of a {target}, not of a commit, and GTO cannot read the "
                f"tags while it exists: git tag -d {clip(name)}"
            )


def release_tag(tag: str) -> str:
    """The release tag ``tag`` stands for: itself, or for a stage tag the release on its commit."""
    artifact = artifact_name()
    release = RELEASE_TAG.fullmatch(tag)
    stage = STAGE_TAG.fullmatch(tag)
    if not (release or stage) or (release or stage)["artifact"] != artifact:
        raise ChurnError(
            f"TAG {integrity.shown(tag)}: expected {artifact}@vX.Y.Z or {artifact}#<stage>#N"
        )
    if stage and tag.count("#") == 1:  # churn-model#prod: the version in prod now
        tag = integrity.latest_stage_tag(artifact, stage["stage"])
    if not is_revision(tag):
        raise ChurnError(f"{clip(tag)}: no such tag")
    if stage:
        return release_at(commit_of(tag), artifact)
    parse_version(release["version"])
    integrity.release_tag_md5(tag)  # a lightweight or hand-made tag is no release
    return tag


def _at_head(tag: str) -> None:
    """The workspace must be ``tag``'s commit: the checks read its files."""
    if commit_of(tag) != commit_of("HEAD"):
        raise ChurnError(f"HEAD is not {tag}'s commit: git checkout {tag} first")


def verify(tag: str | None = None) -> str:
    """The model's md5 must equal dvc.lock's and, given a tag, the tag's; returns it."""
    expected = None
    if tag is not None:
        tag = release_tag(tag)
        _at_head(tag)
        expected = integrity.release_tag_md5(tag)
    return read_model_bytes(load_params().paths.model, tag_md5=expected).md5


def gate_tag(tag: str) -> str:
    """Re-apply the metric gate to a pushed release tag; returns the verdict.

    The workspace (``tag``'s commit, outputs pulled) must hold the metrics the tag
    message records; they must pass the floor in params.yaml and not be significantly
    worse than the release before it. A tag made by hand, around ``create``, fails here.
    """
    tag = release_tag(tag)
    _at_head(tag)
    integrity.check_full_history("the gate (the release before this one)")
    params = load_params()
    root = Path.cwd()
    head = load_head(root)
    if head.metrics is None:
        raise ChurnError(f"{params.paths.reports}/metrics.json: missing: dvc pull it first")
    recorded = recorded_metrics(integrity.tag_message(tag))
    if not recorded:
        raise ChurnError(f"{tag}: its message records no test metrics: not made by make release")
    for name, text in recorded.items():
        value = head.metrics.get(name)
        if not isinstance(value, float) or f"{value:.4f}" != text:
            raise ChurnError(f"{tag}: records {name} {text}, but metrics.json has {value}")
    artifact, version = tag.split("@v", 1)
    wanted = parse_version(version)
    names = releases(artifact, git("tag", "--list").split())
    versions = released_versions(artifact, names)
    if versions and versions[-1] > wanted:
        # A hand-made v0.0.1 below v1.0.0 had no release before it, and passed a worse
        # model as a "first release"; v1.5.0 slotted under v2.0.0 was judged by v1.0.0.
        raise ChurnError(
            f"{tag}: {artifact}@v{version_text(versions[-1])} is a later version; the gate "
            "judges the latest release against the one before it, and churn release create "
            "makes no version below the latest"
        )
    older = [v for v in versions if v < wanted]
    previous = load_base(root, f"{artifact}@v{version_text(older[-1])}") if older else None
    return gate(head, previous, params)


def _check_tag_md5(release: str, lock: dict, model: object) -> None:
    """The md5 ``release``'s message records must be the model's in its dvc.lock.

    What verify, the gate and MODEL_REF check on the model's bytes; notes read no
    model, so they compare the two records (a hand-made tag gets no notes either).
    """
    tagged = integrity.release_tag_md5(release)
    locked = integrity.recorded_md5(lock, model) if isinstance(model, str) else None
    if locked != tagged:
        raise ChurnError(
            f"{release}: its message records model-md5 {tagged}, but its dvc.lock records "
            f"{locked or 'none'} for {clip(model)}: not made by make release"
        )


def notes(tag: str) -> str:
    """Release notes: the model card as released at ``tag``, with the tag and its commit.

    ``tag`` is a release tag or a stage tag (then the release on its commit is named
    too). The card is read at the release through DVC (cache or remote), never from
    the workspace, which may hold another commit's.
    """
    release = release_tag(tag)
    root = Path.cwd()
    paths = paths_of(yaml_at(root, release, "params.yaml"))
    card = paths.get("card")
    lock = yaml_at(root, release, integrity.LOCK_FILE)
    _check_tag_md5(release, lock, paths.get("model"))
    texts = read_through_dvc(root, release, [card], lock) if isinstance(card, str) else None
    if texts is None:
        raise ChurnError(
            f"{release}: its model card ({clip(card)}) is in neither the DVC cache nor the "
            "remote: dvc pull, or dvc push where it was released"
        )
    lines = [f"- Tag: `{tag}`", f"- Commit: `{commit_of(release)}`"]
    if tag != release:
        lines.insert(1, f"- Release: `{release}`")
    return f"{texts[0].rstrip()}\n\n## Release\n\n" + "\n".join(lines) + "\n"
