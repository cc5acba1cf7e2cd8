"""Model releases as git tags in GTO's grammar: ``make release`` and ``make promote``.

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

import argparse
import hashlib
import json
import logging
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from churn import cli
from churn.errors import ChurnError
from churn.params import Params, load_params
from churn.report import Side, compare, load_base, load_head, parse_yaml

log = logging.getLogger("churn.release")

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
STAGE = re.compile(r"^[a-z][a-z0-9-]*$")


def run(*cmd: str, check: bool = True) -> str:
    """Output of a command run here; a failure becomes a one-line error."""
    result = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise ChurnError(f"`{' '.join(cmd)}` failed: {detail[-1] if detail else result.returncode}")
    return result.stdout


def artifact_name(dvc_yaml: str | Path = "dvc.yaml") -> str:
    """The one model artifact declared under ``artifacts:`` in dvc.yaml."""
    artifacts = parse_yaml(Path(dvc_yaml).read_text(encoding="utf-8")).get("artifacts", {})
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
    dirty = run("git", "status", "--porcelain").splitlines()
    if dirty:
        raise ChurnError(
            f"working tree is not clean ({len(dirty)} path(s), e.g. {dirty[0][3:]}): commit first"
        )
    status = json.loads(run("dvc", "status", "--json") or "{}")
    if status:
        raise ChurnError(
            f"dvc status is not clean ({', '.join(sorted(status))}): run dvc repro and commit"
        )


def check_pushed() -> None:
    """Every output of this commit is on the default remote."""
    missing = json.loads(run("dvc", "status", "--cloud", "--json") or "{}")
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
    if result.verdict == "worse":
        raise ChurnError(
            f"{rule.metric} is significantly worse than {previous.label} "
            f"({result.diff:+.4f}, 95 % CI [{result.low:+.4f}, {result.high:+.4f}])"
        )
    return (
        f"{rule.metric} {value:.4f} (floor {rule.minimum}); vs {previous.label}: "
        f"{result.diff:+.4f}, 95 % CI [{result.low:+.4f}, {result.high:+.4f}], {result.verdict}"
    )


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
    existing = released_versions(artifact, run("git", "tag", "--list").split())
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
    run("git", "tag", "-a", tag, "-m", tag_message(artifact, version, head.metrics, verdict))
    log.info("created %s: %s", tag, verdict)
    return tag


def promote(version: str, stage: str) -> str:
    """Assign ``stage`` to a released version (GTO's ``<artifact>#<stage>#N`` tag)."""
    artifact = artifact_name()
    parse_version(version)
    if not STAGE.match(stage):
        raise ChurnError(f"STAGE {stage!r}: lowercase letters, digits and dashes, e.g. prod")
    tag = f"{artifact}@v{version}"
    if tag not in run("git", "tag", "--list", tag).split():
        raise ChurnError(f"{tag} does not exist: make release VERSION={version} first")
    before = set(run("git", "tag", "--list", f"{artifact}#{stage}#*").split())
    run("gto", "assign", artifact, "--version", f"v{version}", "--stage", stage)
    created = sorted(set(run("git", "tag", "--list", f"{artifact}#{stage}#*").split()) - before)
    log.info("assigned %s to %s: %s", stage, tag, ", ".join(created))
    return created[-1] if created else ""


def verify(lock_path: str | Path = "dvc.lock") -> str:
    """The model file's md5 must equal the one dvc.lock records; returns it."""
    params = load_params()
    model = params.paths.model
    recorded = [
        out.get("md5")
        for stage in parse_yaml(Path(lock_path).read_text(encoding="utf-8"))
        .get("stages", {})
        .values()
        for out in stage.get("outs", [])
        if out.get("path") == model
    ]
    if not recorded:
        raise ChurnError(f"{lock_path}: records no output {model}")
    actual = hashlib.md5(Path(model).read_bytes()).hexdigest()  # noqa: S324 (DVC's hash)
    if actual != recorded[0]:
        raise ChurnError(f"{model}: md5 {actual} differs from {recorded[0]} in {lock_path}")
    return actual


def notes(tag: str) -> str:
    """Release notes: the model card with the tag and commit it was released from."""
    params = load_params()
    commit = run("git", "rev-list", "-n", "1", tag).strip()
    card = Path(params.paths.card).read_text(encoding="utf-8")
    return f"{card.rstrip()}\n\n## Release\n\n- Tag: `{tag}`\n- Commit: `{commit}`\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m churn.release", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("create", help="tag a release").add_argument("version")
    promo = sub.add_parser("promote", help="assign a stage to a release")
    promo.add_argument("version")
    promo.add_argument("stage")
    sub.add_parser("verify", help="check models/model.pkl against dvc.lock")
    sub.add_parser("notes", help="print release notes for a tag").add_argument("tag")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Dispatch the subcommand."""
    args = parse_args(argv)
    if args.command == "create":
        print(create(args.version))  # noqa: T201 (the tag is the output)
    elif args.command == "promote":
        print(promote(args.version, args.stage))  # noqa: T201
    elif args.command == "verify":
        print(verify())  # noqa: T201
    else:
        print(notes(args.tag), end="")  # noqa: T201


if __name__ == "__main__":
    raise SystemExit(cli.run(lambda: main(sys.argv[1:])))
