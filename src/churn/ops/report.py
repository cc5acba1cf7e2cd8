"""``churn report --base main``: what this branch did to the model, as markdown for the PR comment.

The two sides are read by :mod:`churn.ops.results` (the workspace as reproduced,
the base at a git revision); metric definitions and the bootstrap come from
:mod:`churn.core.stats`. Nothing here retrains the head or re-declares a metric.
"""

import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_curve

from churn.core import io
from churn.core.errors import ChurnError, clip
from churn.core.integrity import LOCK_FILE, git_or_none, is_revision, lock_outputs, refuse_kept
from churn.core.markdown import code, signed
from churn.core.params import DecisionParams, ReportParams, load_params
from churn.core.stats import DECISION, DIRECTIONS, HEADLINE, HIGHER_IS_BETTER, Comparison
from churn.ops.results import (
    Side,
    compare,
    load_base,
    load_head,
    paths_of,
    same_rows,
    same_valuation,
)

log = logging.getLogger("churn.report")

GRID = np.linspace(0.0, 1.0, 11)  # x positions of the comment's line charts
TITLE = "## Model report"
# Judged by the bootstrap and named in the verdict line: the headline metrics and what the
# campaign earns (profit per 1,000 customers at each side's threshold) and lift_at_k.
REPORTED = (*HEADLINE, "profit", "lift_at_k")


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


FEATURES = "data.features"  # summarized in one line (contract_change), never key by key
LISTED = 5  # column names listed per side of a contract change


def _is_features(key: str) -> bool:
    return key == FEATURES or key.startswith(f"{FEATURES}.")


ABSENT = object()  # a key on one side of the params diff only


def params_diff(base: dict, head: dict) -> list[tuple[str, object, object]]:
    """Only the keys whose value changed (or appeared, or went away), sorted.

    The data contract's features are left to :func:`contract_change`.
    """
    old = {k: v for k, v in flatten(base).items() if not _is_features(k)}
    new = {k: v for k, v in flatten(head).items() if not _is_features(k)}
    rows = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key, ABSENT), new.get(key, ABSENT)
        if before != after:
            rows.append((key, before, after))
    return rows


def _features(params: dict) -> object:
    return (params.get("data") or {}).get("features")


def _contract_side(features: object, columns: list[str] | None) -> tuple[str, list[str] | None]:
    if isinstance(features, dict):
        return f"{len(features)} declared features", list(features)
    if columns is not None:
        return f"{len(columns)} inferred features", columns
    return "inferred features", None


def _names(label: str, names: list[str]) -> str:
    more = f" (+{len(names) - LISTED} more)" if len(names) > LISTED else ""
    return f"{label}: {', '.join(names[:LISTED])}{more}"


def contract_change(base: dict, head: dict, head_columns: list[str] | None = None) -> str | None:
    """One line for a changed data contract, or None when ``data.features`` is the same.

    ``head_columns``: the features the branch's prepare resolved (its contract.json),
    which is what an inferred contract has; a declared one names its own.
    """
    old, new = _features(base), _features(head)
    if old == new:
        return None
    before, old_names = _contract_side(old, None)
    after, new_names = _contract_side(new, head_columns)
    details = []
    if old_names is not None and new_names is not None:
        added = [c for c in new_names if c not in old_names]
        removed = [c for c in old_names if c not in new_names]
        details += [_names("added", added)] if added else []
        details += [_names("removed", removed)] if removed else []
        if isinstance(old, dict) and isinstance(new, dict):
            changed = [c for c in new_names if c in old and old[c] != new[c]]
            details += [_names("rules changed", changed)] if changed else []
    return f"data contract: {before} → {after}" + (f" ({'; '.join(details)})" if details else "")


def data_switch(base: Side, head: Side) -> str | None:
    """A plain first line when base and branch trained on different data, else None."""
    old, new = _raw_dep(base), _raw_dep(head)
    keys = ("target", "id")
    same_roles = all(
        (base.params.get("data") or {}).get(k) == (head.params.get("data") or {}).get(k)
        for k in keys
    )
    if old == new and same_roles:
        return None
    if old and new and old[0] == new[0] and same_roles:
        what = f"the raw file `{new[0]}` changed (md5 `{old[1][:8]}` → `{new[1][:8]}`)"
    else:
        what = (
            f"{base.label} trained on `{old[0] if old else '?'}`, this branch on "
            f"`{new[0] if new else '?'}`"
        )
    return (
        f"**Different data:** {what}. The metric differences below compare models on "
        "different test sets, not one model change on the same data."
    )


# --------------------------------------------------------------------------- rendering


def _fmt(value: object) -> str:
    """A param value as written in params.yaml (``null`` for none), fit for a table cell.

    A key on one side only is "(absent)": an added ``null`` read `null` → `null`, and
    a new section's keys read as changed from ``null``. A ``|`` or a backtick in a
    value (a slice name, a path) broke the table; other scripts stay as written.
    """
    if value is ABSENT:
        return "(absent)"
    if value is None:
        return "`null`"
    return code(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))


def _num(name: str, value: float, sign: str = "") -> str:
    """A metric's value as the tables show it: money to 0.1, the rest to 4 decimals.

    A signed one (a difference, a bound) is never shown as zero when it is not: "+0.0000"
    for a lower bound of +0.00004 read as "no change" beside the verdict "better".
    """
    spec = f"{sign},.1f" if name == "profit" else f"{sign}.4f"
    return signed(value, spec) if sign else format(value, spec)


def _arrow(name: str, diff: float) -> str:
    if abs(diff) < 1e-12:
        return "="
    good = (diff > 0) == DIRECTIONS[name]
    return ("🟢 " if good else "🔴 ") + ("↑" if diff > 0 else "↓")


def _shown(head: dict) -> list[str]:
    """The metrics of the table: every test metric, then the decision ones the head has."""
    return [*HIGHER_IS_BETTER, *(n for n in DECISION if n in head)]


def metrics_table(
    base: dict | None, head: dict, base_label: str, comparable_decisions: bool = True
) -> str:
    """Markdown table of every metric, base -> head, with deltas and direction-aware arrows.

    Without ``comparable_decisions`` (other ``decision:`` assumptions on the two sides) the
    decision metrics get no delta: a changed contact cost read as a worse model.
    """
    if base is None:
        lines = ["| metric | this branch |", "|---|---:|"]
        lines += [f"| {name} | {_num(name, head[name])} |" for name in _shown(head)]
        return "\n".join(lines)
    lines = [
        f"| metric | {base_label} | this branch | Δ | Δ % | |",
        "|---|---:|---:|---:|---:|:-:|",
    ]
    for name in _shown(head):
        if name not in base:  # a decision metric the base did not measure yet
            lines.append(f"| {name} | — | {_num(name, head[name])} | | | |")
            continue
        if name in DECISION and not comparable_decisions:
            old, new = _num(name, base[name]), _num(name, head[name])
            lines.append(f"| {name} | {old} | {new} | | | other `decision:` |")
            continue
        old, new = base[name], head[name]
        diff = new - old
        rel = f"{signed(diff / abs(old) * 100, '+.2f')} %" if old else "—"
        lines.append(
            f"| {name} | {_num(name, old)} | {_num(name, new)} | {_num(name, diff, '+')} | {rel} "
            f"| {_arrow(name, diff)} |"
        )
    return "\n".join(lines)


def params_table(rows: list[tuple[str, object, object]], base_label: str) -> str:
    """Markdown table of the changed params, or a sentence when none changed."""
    if not rows:
        return "No parameter changed."
    lines = [f"| param | {base_label} | this branch |", "|---|---|---|"]
    lines += [f"| {code(key)} | {_fmt(old)} | {_fmt(new)} |" for key, old, new in rows]
    return "\n".join(lines)


def verdict_table(comparisons: list[Comparison], confidence: float, resamples: int) -> str:
    """Per headline metric: difference, its CI and better / worse / no significant change."""
    kind = "paired" if comparisons and comparisons[0].paired else "unpaired"
    pct = f"{confidence * 100:g} %"
    lines = [
        f"| metric | Δ (this branch - base) | {pct} CI | verdict |",
        "|---|---:|---|---|",
    ]
    for c in (c for c in comparisons if c.metric in REPORTED):
        mark = {"better": "✅ better", "worse": "❌ worse"}.get(c.verdict, f"⚪ {c.verdict}")
        low, high = _num(c.metric, c.low, "+"), _num(c.metric, c.high, "+")
        lines.append(f"| {c.metric} | {_num(c.metric, c.diff, '+')} | [{low}, {high}] | {mark} |")
    lines.append("")
    lines.append(
        f"_{kind.capitalize()} bootstrap, {resamples} resamples of the test rows: a metric is "
        f"better or worse only when the whole {pct} interval of the difference is on one side "
        "of zero._"
    )
    if any(c.metric == "profit" for c in comparisons):
        lines.append("")
        lines.append(
            "_profit: expected profit per 1,000 test customers of contacting those at or above "
            "each side's own decision threshold, both valued with this branch's `decision:` "
            "assumptions; lift_at_k: churn rate in the riskiest `decision.top_share` over the "
            "overall rate._"
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
        with io.atomic_path(path) as tmp:  # never a half-written PNG under its name
            fig.savefig(tmp, format="png", metadata={"Software": None})
        plt.close(fig)
        links.append(f"![{title}]({link_target(path)})")
    return "\n".join(links)


def data_section(base: Side, head: Side) -> str:
    """Say when the raw data changed, with hashes and row counts."""
    old, new = _raw_dep(base), _raw_dep(head)
    if old == new:
        return ""
    rows = f"{_or_unknown(base.raw_rows)} → {_or_unknown(head.raw_rows)}"
    return (
        "### Data\n\n"
        f"The raw data changed: {code(old[0] if old else '—')} (md5 "
        f"{code(old[1] if old else '—')}) → {code(new[0] if new else '—')} (md5 "
        f"{code(new[1] if new else '—')}), rows {rows}."
    )


def _or_unknown(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def _raw_dep(side: Side) -> tuple[str, str] | None:
    raw = paths_of(side.params).get("raw")
    for dep in side.lock.get("stages", {}).get("prepare", {}).get("deps", []):
        if dep.get("path") == raw:
            return raw, dep.get("md5", "")
    return None


def build_report(
    base: Side,
    head: Side,
    params: ReportParams,
    policy: DecisionParams | None,
    stale: bool = False,
    images: Path | None = None,
    head_columns: list[str] | None = None,
) -> str:
    """The whole markdown comment."""
    parts = [TITLE, ""]
    switch = data_switch(base, head) if base.lock else None
    if switch and head.metrics is not None:
        parts += [switch, ""]
    if stale:
        parts += [
            "> [!WARNING]\n> The committed `dvc.lock` is stale: `dvc repro` changed it. "
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
    if base.params == head.params and lock_outputs(base.lock) == lock_outputs(head.lock):
        parts += [
            f"**No changes**: params and every pipeline output are identical to {base.label}.",
            "",
        ]
        parts += [metrics_table(base.metrics, head.metrics, base.label)]
        return "\n".join(parts) + "\n"
    comparisons = compare(base, head, params, policy)
    headline = ", ".join(f"{c.metric} {c.verdict}" for c in comparisons if c.metric in REPORTED)
    if not all(c.judged for c in comparisons):  # the same for every metric: said once
        headline = comparisons[0].verdict
    parts += [f"**Verdict against {base.label}:** {headline}.", ""]
    if not same_rows(base.predictions, head.predictions):
        parts += [
            f"> The test rows differ between {base.label} and this branch "
            f"({len(base.predictions)} vs {len(head.predictions)} rows): the split or the data "
            "changed, so the comparison below is unpaired.",
            "",
        ]
    valuation = same_valuation(base.params, head.params)
    parts += [
        "### Metrics (test split)",
        "",
        metrics_table(base.metrics, head.metrics, base.label, valuation),
        "",
    ]
    if not valuation:
        parts += [
            "_The two sides measured profit, lift and capture under other `decision:` "
            "assumptions, so their numbers above are not compared; the verdict below values "
            "both with this branch's._",
            "",
        ]
    parts += [
        "### Is it real?",
        "",
        verdict_table(comparisons, params.confidence, params.resamples),
        "",
    ]
    contract = contract_change(base.params, head.params, head_columns)
    parts += [
        "### Params changed",
        "",
        *([contract, ""] if contract else []),
        params_table(params_diff(base.params, head.params), base.label).replace(
            "No parameter", "No other parameter" if contract else "No parameter"
        ),
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
    committed = git_or_none("show", f"HEAD:./{LOCK_FILE}", cwd=root)
    lock = root / LOCK_FILE
    current = lock.read_text(encoding="utf-8") if lock.exists() else ""
    return committed is not None and committed != current


def _workspace_columns(path: Path) -> list[str] | None:
    """The feature names of the branch's resolved contract, or None if it has none yet."""
    if not path.is_file():
        return None
    try:
        return [column["name"] for column in io.read_json(path)["columns"]]
    except (ChurnError, KeyError, TypeError):
        return None


def link_target(path: Path) -> str:
    """``path`` as a Markdown link's destination: in ``<...>`` if it holds a space or parenthesis.

    ``![ROC](/tmp/my imgs (1)/roc.png)`` is no link in CommonMark: it showed as text.
    """
    text = path.as_posix()
    return f"<{text}>" if re.search(r"[\s()]", text) else text


def require_images_directory(images: Path) -> None:
    """Make ``--images`` now: a folder that cannot be made failed after the base's repro."""
    io.require_directory_or_absent(images, "--images")
    try:
        images.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ChurnError(f"--images {clip(images, 200)}: {err.strerror}") from None


def refuse_tracked(path: Path, option: str) -> None:
    """``path`` is nothing the repository keeps (git, DVC), nor a folder holding it.

    ``--out dvc.yaml`` replaced the pipeline with the report, ``--out models/model.pkl``
    the model; ``--images src`` put PNGs among the code.
    """
    refuse_kept(path, option, "write the report elsewhere")


def write_report(base: str, out: Path, images: Path | None = None) -> Path:
    """Write the report for the workspace against git revision ``base``."""
    root = Path.cwd()
    if git_or_none("rev-parse", "--git-dir", cwd=root) is None:
        raise ChurnError("not inside a git repository: the report compares git revisions")
    if not is_revision(base, cwd=root):
        raise ChurnError(f"--base {clip(base)}: no such git revision (fetch it first)")
    refuse_tracked(out, "--out")
    if images is not None:
        refuse_tracked(images, "--images")
        require_images_directory(images)  # before "no changes" skips it
    params = load_params()
    text = build_report(
        load_base(root, base),
        load_head(root),
        params.report,
        params.decision,
        stale=is_stale(root),
        images=images,
        head_columns=_workspace_columns(Path(params.paths.contract)),
    )
    io.write_text(out, text)
    log.info("wrote %s", out)
    return out
