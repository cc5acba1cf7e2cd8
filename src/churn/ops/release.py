"""Model releases as git tags in GTO's grammar: ``churn release create|promote|verify|notes``.

``create VERSION`` tags the current commit ``<artifact>@vVERSION`` (annotated,
the metrics in its message) only when the tree and the pipeline are clean, the
outputs are pushed, the version is new and greater than the last, and the
metrics pass the gate in ``params.yaml`` (``release:``): an absolute floor and
"not significantly worse than the previous release" by the same paired
bootstrap as the PR report. ``promote VERSION STAGE`` assigns a stage with
``gto assign`` (tag ``<artifact>#<stage>#N``). ``notes TAG`` prints the release
notes: the model card plus the tag and commit, which the card itself never
contains. The artifact's name comes from ``artifacts:`` in dvc.yaml.
"""

import json
import logging
import re
from pathlib import Path

from churn.core import io
from churn.core.errors import ChurnError
from churn.core.integrity import command, git, is_revision, read_model_bytes
from churn.core.params import Params, load_params
from churn.ops.results import Side, compare, load_base, load_head

log = logging.getLogger("churn.release")

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
STAGE = re.compile(r"^[a-z][a-z0-9-]*$")


def artifact_name(dvc_yaml: str | Path = "dvc.yaml") -> str:
    """The one model artifact declared under ``artifacts:`` in dvc.yaml."""
    artifacts = io.read_yaml(dvc_yaml).get("artifacts") or {}
    models = [name for name, spec in artifacts.items() if spec.get("type") == "model"]
    if len(models) != 1:
        raise ChurnError(f"dvc.yaml: expected one artifact of type model, found {models}")
    return models[0]


def parse_version(text: str) -> tuple[int, int, int]:
    """``1.2.3`` (or ``v1.2.3``) as a comparable tuple."""
    match = SEMVER.match(text.removeprefix("v"))
    if not match:
        raise ChurnError(f"VERSION {text!r}: expected MAJOR.MINOR.PATCH, e.g. 1.0.0")
    return tuple(int(part) for part in match.groups())  # type: ignore[return-value]


def released_versions(artifact: str, tags: list[str]) -> list[tuple[int, int, int]]:
    """Versions registered for ``artifact`` among ``tags``, ascending."""
    prefix = f"{artifact}@v"
    found = [t.removeprefix(prefix) for t in tags if t.startswith(prefix)]
    return sorted(parse_version(v) for v in found if SEMVER.match(v))


def check_version(version: str, existing: list[tuple[int, int, int]]) -> None:
    """New and greater than the last release."""
    wanted = parse_version(version)
    if wanted in existing:
        raise ChurnError(f"version v{version} is already released")
    if existing and wanted < existing[-1]:
        latest = ".".join(map(str, existing[-1]))
        raise ChurnError(f"version v{version} is not greater than the latest release v{latest}")


def check_clean() -> None:
    """No uncommitted or untracked files, and nothing for `dvc repro` to do."""
    dirty = git("status", "--porcelain").splitlines()
    if dirty:
        raise ChurnError(
            f"working tree is not clean ({len(dirty)} path(s), e.g. {dirty[0][3:]}): commit first"
        )
    status = json.loads(command("dvc", "status", "--json") or "{}")
    if status:
        raise ChurnError(
            f"dvc status is not clean ({', '.join(sorted(status))}): run dvc repro and commit"
        )


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
    value = head.metrics[rule.metric]
    if value < rule.minimum:
        raise ChurnError(
            f"{rule.metric} {value:.4f} is below the release floor {rule.minimum} "
            "(release.minimum in params.yaml)"
        )
    if previous is None:
        return f"{rule.metric} {value:.4f} (floor {rule.minimum}); first release"
    if previous.metrics is None:
        raise ChurnError(
            f"cannot compare with the previous release {previous.label}: {previous.note}"
        )
    comparisons = compare(previous, head, params.report, params.evaluate.threshold)
    result = next(c for c in comparisons if c.metric == rule.metric)
    interval = (
        f"{result.diff:+.4f}, {params.report.confidence * 100:g} % CI "
        f"[{result.low:+.4f}, {result.high:+.4f}]"
    )
    if result.verdict == "worse":
        raise ChurnError(f"{rule.metric} is significantly worse than {previous.label} ({interval})")
    floor = f"{rule.metric} {value:.4f} (floor {rule.minimum})"
    return f"{floor}; vs {previous.label}: {interval}, {result.verdict}"


def tag_message(artifact: str, version: str, metrics: dict, verdict: str) -> str:
    """Annotated tag message: the version, the gate's verdict and every test metric."""
    lines = [f"{artifact} v{version}", "", verdict, "", "Test metrics:"]
    lines += [f"  {k}: {v:.4f}" for k, v in metrics.items() if isinstance(v, float)]
    return "\n".join(lines) + "\n"


def create(version: str) -> str:
    """Check everything, then tag HEAD; returns the tag."""
    params = load_params()
    artifact = artifact_name()
    parse_version(version)
    check_clean()
    existing = released_versions(artifact, git("tag", "--list").split())
    check_version(version, existing)
    check_pushed()
    root = Path.cwd()
    head = load_head(root)
    if head.metrics is None:
        raise ChurnError(f"{params.paths.reports}/metrics.json: missing: run dvc repro first")
    previous = None
    if existing:
        previous = load_base(root, f"{artifact}@v{'.'.join(map(str, existing[-1]))}")
    verdict = gate(head, previous, params)
    tag = f"{artifact}@v{version}"
    git("tag", "-a", tag, "-m", tag_message(artifact, version, head.metrics, verdict))
    log.info("created %s: %s", tag, verdict)
    return tag


def promote(version: str, stage: str) -> str:
    """Assign ``stage`` to a released version (GTO's ``<artifact>#<stage>#N`` tag)."""
    artifact = artifact_name()
    parse_version(version)
    if not STAGE.match(stage):
        raise ChurnError(f"STAGE {stage!r}: lowercase letters, digits and dashes, e.g. prod")
    tag = f"{artifact}@v{version}"
    if tag not in git("tag", "--list", tag).split():
        raise ChurnError(f"{tag} does not exist: make release VERSION={version} first")
    before = set(git("tag", "--list", f"{artifact}#{stage}#*").split())
    command("gto", "assign", artifact, "--version", f"v{version}", "--stage", stage)
    created = sorted(set(git("tag", "--list", f"{artifact}#{stage}#*").split()) - before)
    log.info("assigned %s to %s: %s", stage, tag, ", ".join(created))
    return created[-1] if created else ""


def verify() -> str:
    """The model file's md5 must equal the one dvc.lock records; returns it."""
    return read_model_bytes(load_params().paths.model).md5


def notes(tag: str) -> str:
    """Release notes: the model card with the tag and commit it was released from."""
    params = load_params()
    if not is_revision(tag):
        raise ChurnError(f"{tag}: no such tag or revision (git tag --list shows the releases)")
    commit = git("rev-parse", "--verify", "--end-of-options", f"{tag}^{{commit}}").strip()
    card = io.require_file(params.paths.card).read_text(encoding="utf-8")
    return f"{card.rstrip()}\n\n## Release\n\n- Tag: `{tag}`\n- Commit: `{commit}`\n"
