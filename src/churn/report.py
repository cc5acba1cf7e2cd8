"""``make report BASE=main``: what this branch did to the model, as markdown for the PR comment.

Reads the head's results from the workspace (after ``dvc repro``) and the
base's at a git revision: through DVC (local cache or remote), or, when those
outputs cannot be fetched, by reproducing the base in a temporary git worktree.
Nothing here retrains the head or re-declares a metric: metric definitions and
the bootstrap come from :mod:`churn.stats`.
"""

import argparse
import json
import logging
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
from ruamel.yaml import YAML
from sklearn.metrics import precision_recall_curve, roc_curve

from churn import io
from churn.errors import ChurnError
from churn.params import ReportParams, load_params
from churn.stats import HEADLINE, HIGHER_IS_BETTER, Comparison, paired_bootstrap, unpaired_bootstrap

log = logging.getLogger("churn.report")

GRID = np.linspace(0.0, 1.0, 11)  # x positions of the comment's line charts
TITLE = "## Model report"


@dataclass
class Side:
    """One revision's results; ``metrics`` is None when it has none."""

    label: str
    params: dict = field(default_factory=dict)
    lock: dict = field(default_factory=dict)
    metrics: dict | None = None
    predictions: pd.DataFrame | None = None
    raw_rows: int | None = None
    note: str = ""


# --------------------------------------------------------------------------- reading


def git(root: Path, *args: str) -> str | None:
    """Output of a git command, or None when it fails (e.g. a path absent at a revision)."""
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    return result.stdout if result.returncode == 0 else None


def parse_yaml(text: str | None) -> dict:
    """YAML 1.2 as DVC writes it; empty or missing text gives ``{}``."""
    return (YAML(typ="safe", pure=True).load(text) or {}) if text else {}


def _paths(params: dict) -> dict:
    return params.get("paths", {})


def load_head(root: Path) -> Side:
    """The workspace: params, dvc.lock, metrics and predictions as reproduced."""
    params = parse_yaml((root / "params.yaml").read_text(encoding="utf-8"))
    paths = _paths(params)
    side = Side("this branch", params=params)
    lock_path = root / "dvc.lock"
    side.lock = parse_yaml(lock_path.read_text(encoding="utf-8")) if lock_path.exists() else {}
    metrics = root / paths.get("reports", "reports") / "metrics.json"
    if metrics.exists():
        side.metrics = json.loads(metrics.read_text(encoding="utf-8"))
        side.predictions = pd.read_csv(root / paths["predictions"])
    raw = root / paths.get("raw", "")
    side.raw_rows = _count_rows(raw.read_text(encoding="utf-8")) if raw.is_file() else None
    return side


def _count_rows(text: str) -> int:
    return len(pd.read_csv(StringIO(text), usecols=[0]))


def load_base(root: Path, rev: str) -> Side:
    """The base revision's results, fetched through DVC or reproduced in a worktree."""
    side = Side(rev, params=parse_yaml(git(root, "show", f"{rev}:params.yaml")))
    side.lock = parse_yaml(git(root, "show", f"{rev}:dvc.lock"))
    if "evaluate" not in side.lock.get("stages", {}):
        side.note = f"{rev} has no evaluated pipeline in its dvc.lock"
        side.lock = {}
        return side
    paths = _paths(side.params)
    wanted = [f"{paths.get('reports', 'reports')}/metrics.json", paths.get("predictions")]
    texts = _read_through_dvc(root, rev, wanted) or _reproduce_in_worktree(root, rev, wanted)
    if texts is None:
        side.note = (
            f"could not get {rev}'s outputs: not in the DVC cache or remote, and "
            "reproducing it in a temporary worktree failed"
        )
        return side
    side.metrics = json.loads(texts[0])
    side.predictions = pd.read_csv(StringIO(texts[1]))
    raw = _read_through_dvc(root, rev, [paths.get("raw", "")])
    side.raw_rows = _count_rows(raw[0]) if raw else None
    return side


def _read_through_dvc(root: Path, rev: str, paths: list[str]) -> list[str] | None:
    import dvc.api
    from dvc.exceptions import DvcException

    try:
        return [dvc.api.read(p, repo=str(root), rev=rev) for p in paths]
    except (DvcException, FileNotFoundError, OSError) as err:
        log.info("%s: outputs not available through DVC (%s)", rev, type(err).__name__)
        return None


def _reproduce_in_worktree(root: Path, rev: str, paths: list[str]) -> list[str] | None:
    log.warning("%s: reproducing the base in a temporary git worktree", rev)
    with tempfile.TemporaryDirectory(prefix="churn-base-") as tmp:
        tree = Path(tmp) / "base"
        if git(root, "worktree", "add", "--detach", str(tree), rev) is None:
            return None
        try:
            result = subprocess.run(
                ["dvc", "repro"], cwd=tree, capture_output=True, text=True, check=False
            )
            if result.returncode != 0:
                log.warning("%s: dvc repro failed: %s", rev, result.stderr.strip()[-500:])
                return None
            return [(tree / p).read_text(encoding="utf-8") for p in paths]
        finally:
            git(root, "worktree", "remove", "--force", str(tree))


# --------------------------------------------------------------------------- comparing


def flatten(params: dict, prefix: str = "") -> dict[str, object]:
    """``{"train": {"seed": 1}}`` -> ``{"train.seed": 1}``."""
    flat: dict[str, object] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def params_diff(base: dict, head: dict) -> list[tuple[str, object, object]]:
    """Only the keys whose value changed (or appeared, or went away), sorted."""
    old, new = flatten(base), flatten(head)
    missing = object()
    rows = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key, missing), new.get(key, missing)
        if before != after:
            rows.append(
                (key, None if before is missing else before, None if after is missing else after)
            )
    return rows


def same_rows(base: pd.DataFrame, head: pd.DataFrame) -> bool:
    """Both evaluated on the very same test rows (ids and labels)?"""
    key = ["id", "label"]
    return (
        base[key]
        .sort_values(key)
        .reset_index(drop=True)
        .equals(head[key].sort_values(key).reset_index(drop=True))
    )


def compare(base: Side, head: Side, params: ReportParams, threshold: float) -> list[Comparison]:
    """Bootstrap head minus base on the headline metrics; paired when the rows match."""
    options = {
        "resamples": params.resamples,
        "seed": params.seed,
        "confidence": params.confidence,
        "threshold": threshold,
    }
    b, h = base.predictions, head.predictions
    if same_rows(b, h):
        joined = b.merge(h, on=["id", "label"], suffixes=("_base", "_head"))
        y = joined["label"].to_numpy()
        return paired_bootstrap(
            y,
            joined["probability_base"].to_numpy(),
            joined["probability_head"].to_numpy(),
            **options,
        )
    return unpaired_bootstrap(
        (b["label"].to_numpy(), b["probability"].to_numpy()),
        (h["label"].to_numpy(), h["probability"].to_numpy()),
        **options,
    )


# --------------------------------------------------------------------------- rendering


def _fmt(value: object) -> str:
    """A param value as written in params.yaml (``null`` for none)."""
    if value is None:
        return "`null`"
    return f"`{value if isinstance(value, str) else json.dumps(value)}`"


def _arrow(name: str, diff: float) -> str:
    if abs(diff) < 1e-12:
        return "="
    good = (diff > 0) == HIGHER_IS_BETTER[name]
    return ("🟢 " if good else "🔴 ") + ("↑" if diff > 0 else "↓")


def metrics_table(base: dict | None, head: dict, base_label: str) -> str:
    """Markdown table of every metric, base -> head, with deltas and direction-aware arrows."""
    if base is None:
        lines = ["| metric | this branch |", "|---|---:|"]
        lines += [f"| {name} | {head[name]:.4f} |" for name in HIGHER_IS_BETTER]
        return "\n".join(lines)
    lines = [
        f"| metric | {base_label} | this branch | Δ | Δ % | |",
        "|---|---:|---:|---:|---:|:-:|",
    ]
    for name in HIGHER_IS_BETTER:
        old, new = base[name], head[name]
        diff = new - old
        rel = f"{diff / abs(old) * 100:+.2f} %" if old else "—"
        lines.append(
            f"| {name} | {old:.4f} | {new:.4f} | {diff:+.4f} | {rel} | {_arrow(name, diff)} |"
        )
    return "\n".join(lines)


def params_table(rows: list[tuple[str, object, object]], base_label: str) -> str:
    """Markdown table of the changed params, or a sentence when none changed."""
    if not rows:
        return "No parameter changed."
    lines = [f"| param | {base_label} | this branch |", "|---|---|---|"]
    lines += [f"| `{key}` | {_fmt(old)} | {_fmt(new)} |" for key, old, new in rows]
    return "\n".join(lines)


def verdict_table(comparisons: list[Comparison], confidence: float, resamples: int) -> str:
    """Per headline metric: difference, its CI and better / worse / no significant change."""
    kind = "paired" if comparisons and comparisons[0].paired else "unpaired"
    pct = f"{confidence * 100:g} %"
    lines = [
        f"| metric | Δ (this branch - base) | {pct} CI | verdict |",
        "|---|---:|---|---|",
    ]
    for c in comparisons:
        mark = {"better": "✅ better", "worse": "❌ worse"}.get(
            c.verdict, "⚪ no significant change"
        )
        lines.append(f"| {c.metric} | {c.diff:+.4f} | [{c.low:+.4f}, {c.high:+.4f}] | {mark} |")
    lines.append("")
    lines.append(
        f"_{kind.capitalize()} bootstrap, {resamples} resamples of the test rows: a metric is "
        f"better or worse only when the whole {pct} interval of the difference is on one side "
        "of zero._"
    )
    return "\n".join(lines)


def _curve_points(y: np.ndarray, proba: np.ndarray, kind: str) -> np.ndarray:
    if kind == "roc":
        fpr, tpr, _ = roc_curve(y, proba)
        return np.interp(GRID, fpr, tpr)
    if kind == "pr":
        precision, recall, _ = precision_recall_curve(y, proba)
        order = np.argsort(recall, kind="stable")
        return np.interp(GRID, recall[order], precision[order])
    edges = np.linspace(0.0, 1.0, 11)
    which = np.clip(np.digitize(proba, edges[1:-1]), 0, 9)
    observed = np.array([y[which == b].mean() if (which == b).any() else np.nan for b in range(10)])
    mids = (edges[:-1] + edges[1:]) / 2
    known = ~np.isnan(observed)
    return np.interp(mids, mids[known], observed[known])  # empty bins interpolated


CHARTS = {
    "roc": ("ROC (test)", "false positive rate", "true positive rate", GRID),
    "pr": ("Precision-recall (test)", "recall", "precision", GRID),
    "calibration": (
        "Calibration (test)",
        "predicted probability (bin centre)",
        "observed churn rate",
        (np.linspace(0, 1, 11)[:-1] + 0.05),
    ),
}


def mermaid_charts(base: pd.DataFrame | None, head: pd.DataFrame, base_label: str) -> str:
    """ROC, precision-recall and calibration as mermaid xy-charts GitHub renders inline."""
    sides = [("this branch", head)] if base is None else [(base_label, base), ("this branch", head)]
    legend = " · ".join(
        f"{'first' if i == 0 else 'second'} line: {label}" for i, (label, _) in enumerate(sides)
    )
    blocks = []
    for kind, (title, x_label, y_label, xs) in CHARTS.items():
        lines = [
            "```mermaid",
            "xychart-beta",
            f'    title "{title}"',
            f'    x-axis "{x_label}" [{", ".join(f"{x:.2f}" for x in xs)}]',
            f'    y-axis "{y_label}" 0 --> 1',
        ]
        for _, frame in sides:
            points = _curve_points(frame["label"].to_numpy(), frame["probability"].to_numpy(), kind)
            lines.append(f"    line [{', '.join(f'{v:.3f}' for v in points)}]")
        lines.append("```")
        blocks.append("\n".join(lines))
    return f"_{legend}_\n\n" + "\n\n".join(blocks)


def png_charts(base: pd.DataFrame | None, head: pd.DataFrame, base_label: str, out: Path) -> str:
    """Opt-in: the same charts as PNGs, linked so `cml comment update --publish` uploads them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    links = []
    sides = [("this branch", head)] if base is None else [(base_label, base), ("this branch", head)]
    for kind, (title, x_label, y_label, xs) in CHARTS.items():
        fig, ax = plt.subplots(figsize=(4.5, 3.5), dpi=100)
        for label, frame in sides:
            points = _curve_points(frame["label"].to_numpy(), frame["probability"].to_numpy(), kind)
            ax.plot(xs, points, marker="o", label=label)
        ax.set(title=title, xlabel=x_label, ylabel=y_label, xlim=(0, 1), ylim=(0, 1))
        ax.legend()
        fig.tight_layout()
        path = out / f"{kind}.png"
        fig.savefig(path, metadata={"Software": None})
        plt.close(fig)
        links.append(f"![{title}]({path.as_posix()})")
    return "\n".join(links)


def data_section(base: Side, head: Side) -> str:
    """Say when the raw data changed, with hashes and row counts."""
    old, new = _raw_dep(base), _raw_dep(head)
    if old == new:
        return ""
    rows = f"{_or_unknown(base.raw_rows)} → {_or_unknown(head.raw_rows)}"
    return (
        "### Data\n\n"
        f"The raw data changed: `{old[0] if old else '—'}` (md5 `{old[1] if old else '—'}`) → "
        f"`{new[0] if new else '—'}` (md5 `{new[1] if new else '—'}`), rows {rows}."
    )


def _or_unknown(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def _raw_dep(side: Side) -> tuple[str, str] | None:
    raw = _paths(side.params).get("raw")
    for dep in side.lock.get("stages", {}).get("prepare", {}).get("deps", []):
        if dep.get("path") == raw:
            return raw, dep.get("md5", "")
    return None


def _outputs(lock: dict) -> dict[str, str]:
    return {
        out["path"]: out.get("md5", "")
        for stage in lock.get("stages", {}).values()
        for out in stage.get("outs", [])
    }


def build_report(
    base: Side,
    head: Side,
    params: ReportParams,
    threshold: float,
    stale: bool = False,
    images: Path | None = None,
) -> str:
    """The whole markdown comment."""
    parts = [TITLE, ""]
    if stale:
        parts += [
            "> [!WARNING]\n> The committed `dvc.lock` is stale: `dvc repro` in CI changed it. "
            "The results below are the reproduced ones; run `dvc repro` and commit `dvc.lock`.",
            "",
        ]
    if head.metrics is None:
        return "\n".join(
            [*parts, "This branch has no metrics: `dvc repro` did not evaluate a model."]
        )
    if base.metrics is None:
        lead = "Cannot compare with" if base.lock else "No baseline on"
        parts += [f"**{lead} {base.label}** ({base.note}). This branch's metrics:", ""]
        parts += [metrics_table(None, head.metrics, base.label), ""]
        parts += ["### Plots", "", _charts(None, head, base.label, images)]
        return "\n".join(parts) + "\n"
    if base.params == head.params and _outputs(base.lock) == _outputs(head.lock):
        parts += [
            f"**No changes**: params and every pipeline output are identical to {base.label}.",
            "",
        ]
        parts += [metrics_table(base.metrics, head.metrics, base.label)]
        return "\n".join(parts) + "\n"
    comparisons = compare(base, head, params, threshold)
    headline = ", ".join(f"{c.metric} {c.verdict}" for c in comparisons if c.metric in HEADLINE)
    parts += [f"**Verdict against {base.label}:** {headline}.", ""]
    if not same_rows(base.predictions, head.predictions):
        parts += [
            f"> The test rows differ between {base.label} and this branch "
            f"({len(base.predictions)} vs {len(head.predictions)} rows): the split or the data "
            "changed, so the comparison below is unpaired.",
            "",
        ]
    parts += [
        "### Metrics (test split)",
        "",
        metrics_table(base.metrics, head.metrics, base.label),
        "",
    ]
    parts += [
        "### Is it real?",
        "",
        verdict_table(comparisons, params.confidence, params.resamples),
        "",
    ]
    parts += [
        "### Params changed",
        "",
        params_table(params_diff(base.params, head.params), base.label),
        "",
    ]
    data = data_section(base, head)
    if data:
        parts += [data, ""]
    parts += ["### Plots", "", _charts(base.predictions, head, base.label, images)]
    return "\n".join(parts) + "\n"


def _charts(base: pd.DataFrame | None, head: Side, label: str, images: Path | None) -> str:
    if images is not None:
        return png_charts(base, head.predictions, label, images)
    return mermaid_charts(base, head.predictions, label)


# --------------------------------------------------------------------------- entry point


def is_stale(root: Path) -> bool:
    """Does the workspace dvc.lock differ from the committed one?"""
    committed = git(root, "show", "HEAD:dvc.lock")
    current = (
        (root / "dvc.lock").read_text(encoding="utf-8") if (root / "dvc.lock").exists() else ""
    )
    return committed is not None and committed != current


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m churn.report", description=__doc__)
    parser.add_argument("--base", default="main", help="git revision to compare with")
    parser.add_argument("--out", type=Path, default=Path("report.md"), help="markdown to write")
    parser.add_argument(
        "--images",
        type=Path,
        help="opt-in: write PNG charts here and link them (CML's --publish uploads them)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Write the report for the workspace against ``--base``."""
    args = parse_args(argv)
    root = Path.cwd()
    if git(root, "rev-parse", "--verify", "--quiet", f"{args.base}^{{commit}}") is None:
        raise ChurnError(f"--base {args.base}: no such git revision (fetch it first)")
    params = load_params()
    text = build_report(
        load_base(root, args.base),
        load_head(root),
        params.report,
        params.evaluate.threshold,
        stale=is_stale(root),
        images=args.images,
    )
    io.write_text(args.out, text)
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    from churn import cli

    raise SystemExit(cli.run(lambda: main(sys.argv[1:])))
