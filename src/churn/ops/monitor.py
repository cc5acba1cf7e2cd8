"""``churn monitor --input batch.csv``: did incoming customers drift away from the training data?

Not a pipeline stage: it runs on batches that arrive after training (a CSV with
the raw columns, or the service's prediction log, ``.jsonl``). The batch is
validated against the data contract, then compared with the pipeline's
DVC-tracked outputs: the training split (features) and the test split's
predictions (scores).

- numeric features: PSI on bins cut at the reference's deciles, and the
  two-sample Kolmogorov-Smirnov test;
- numeric features: also the share of values outside the range seen in training
  (the contract's observed range; the service does not refuse them);
- categorical features: PSI over the categories, a chi-square test, and the
  share of values outside the contract's categories (the service answers 422
  for those rows, so they are counted here and left out of the scores);
- every feature: the change in its missing rate;
- predictions: the model's score distribution on the batch rows the service
  would accept, against the test split's (PSI and KS).

Thresholds live in ``params.yaml`` (``monitor:``). Writes ``drift.json``,
``summary.md`` and a PNG per drifted feature to ``--out``; exits 0 when nothing
drifted, 1 when something did, 2 when the batch is invalid.
"""

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from churn.core import io
from churn.core.contract import Column, Contract, read_contract, validate_features
from churn.core.errors import ChurnError
from churn.core.integrity import load_model
from churn.core.params import MonitorParams, load_params
from churn.stages.prepare import read_raw

log = logging.getLogger("churn.monitor")

EPS = 1e-6  # keeps PSI finite when a bin is empty on one side
SCORE_COLUMN = "churn_probability"  # as the service writes it to its prediction log


@dataclass
class Check:
    """One feature's (or the predictions') comparison with the reference."""

    name: str
    kind: str
    psi: float
    test: str
    statistic: float
    p_value: float
    missing_change: float
    unseen_share: float = 0.0
    out_of_range_share: float = 0.0
    drifted: bool = False
    reasons: list[str] = field(default_factory=list)


def psi(reference: np.ndarray, batch: np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins."""
    ref = np.clip(reference, EPS, None)
    new = np.clip(batch, EPS, None)
    return float(np.sum((new - ref) * np.log(new / ref)))


def numeric_bins(reference: pd.Series, bins: int) -> np.ndarray:
    """Inner bin edges at the reference's quantiles (duplicates dropped)."""
    values = reference.dropna().to_numpy(dtype=float)
    return np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))


def shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of ``values`` per bin delimited by ``edges`` (open-ended outer bins)."""
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return counts / max(counts.sum(), 1)


def compare_numeric(
    name: str, ref: pd.Series, new: pd.Series, params: MonitorParams, column: Column | None = None
) -> Check:
    """PSI on reference deciles, the KS test, and the share outside the training range."""
    r, b = ref.dropna().to_numpy(dtype=float), new.dropna().to_numpy(dtype=float)
    edges = numeric_bins(ref, params.bins)
    ks = stats.ks_2samp(r, b) if len(b) else None
    low, high = observed_range(r, column)
    outside = float(((b < low) | (b > high)).mean()) if len(b) else 0.0
    return Check(
        name,
        "numeric",
        psi(shares(r, edges), shares(b, edges)),
        "ks",
        float(ks.statistic) if ks else 0.0,
        float(ks.pvalue) if ks else 1.0,
        float(new.isna().mean() - ref.isna().mean()),
        out_of_range_share=outside,
    )


def observed_range(reference: np.ndarray, column: Column | None) -> tuple[float, float]:
    """The contract's observed training range; a contract without one: the reference's."""
    if column is not None and column.observed_min is not None and column.observed_max is not None:
        return column.observed_min, column.observed_max
    if not len(reference):
        return -np.inf, np.inf
    return float(reference.min()), float(reference.max())


def compare_categorical(
    name: str, ref: pd.Series, new: pd.Series, column: Column | None = None
) -> Check:
    """PSI over categories, chi-square, and the share outside the contract's categories.

    A contract without categories (or none given): outside the training data's.
    """
    r, b = ref.dropna().astype(str), new.dropna().astype(str)
    known = set(column.categories) if column is not None and column.categories else set(r)
    categories = sorted(set(r) | set(b))
    ref_counts = r.value_counts().reindex(categories, fill_value=0).to_numpy()
    new_counts = b.value_counts().reindex(categories, fill_value=0).to_numpy()
    table = np.vstack([ref_counts, new_counts])
    table = table[:, table.sum(axis=0) > 0]
    chi = stats.chi2_contingency(table) if table.shape[1] > 1 and new_counts.sum() else None
    return Check(
        name,
        "categorical",
        psi(ref_counts / max(ref_counts.sum(), 1), new_counts / max(new_counts.sum(), 1)),
        "chi-square",
        float(chi.statistic) if chi else 0.0,
        float(chi.pvalue) if chi else 1.0,
        float(new.isna().mean() - ref.isna().mean()),
        unseen_share=float((~b.isin(known)).mean()) if len(b) else 0.0,
    )


def judge(check: Check, params: MonitorParams) -> Check:
    """Flag drift by the thresholds in params, saying which rule fired."""
    if check.psi >= params.psi:
        check.reasons.append(f"PSI {check.psi:.3f} >= {params.psi}")
    if (
        check.test == "ks"
        and check.statistic >= params.ks_statistic
        and check.p_value < params.alpha
    ):
        check.reasons.append(
            f"KS {check.statistic:.3f} >= {params.ks_statistic} "
            f"(p {check.p_value:.2g} < {params.alpha})"
        )
    if check.unseen_share >= params.unseen_share:
        check.reasons.append(
            f"unseen categories {check.unseen_share:.1%} >= {params.unseen_share:.1%}"
        )
    if check.out_of_range_share >= params.out_of_range_share:
        check.reasons.append(
            f"outside the training range {check.out_of_range_share:.1%} "
            f">= {params.out_of_range_share:.1%}"
        )
    if abs(check.missing_change) >= params.missing_change:
        check.reasons.append(
            f"missing rate {check.missing_change:+.1%} (limit ±{params.missing_change:.1%})"
        )
    check.drifted = bool(check.reasons)
    return check


def compare(
    reference: pd.DataFrame, batch: pd.DataFrame, contract: Contract, params: MonitorParams
) -> list[Check]:
    """One judged check per feature, in contract order."""
    checks = []
    for name in contract.features:
        column = contract.columns[name]
        if column.type == "numeric":
            check = compare_numeric(name, reference[name], batch[name], params, column)
        else:
            check = compare_categorical(name, reference[name], batch[name], column)
        checks.append(judge(check, params))
    return checks


def compare_scores(reference: np.ndarray, batch: np.ndarray, params: MonitorParams) -> Check:
    """The model's score distribution on the batch against the test split's (none: no test)."""
    edges = numeric_bins(pd.Series(reference), params.bins)
    ks = stats.ks_2samp(reference, batch) if len(batch) else None
    check = Check(
        "prediction",
        "score",
        psi(shares(reference, edges), shares(batch, edges)) if len(batch) else 0.0,
        "ks",
        float(ks.statistic) if ks else 0.0,
        float(ks.pvalue) if ks else 1.0,
        0.0,
    )
    return judge(check, params)


# --------------------------------------------------------------------------- input


def read_batch(path: Path, contract: Contract) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The batch's features (and scores, when it is the service's prediction log)."""
    if path.suffix == ".jsonl":
        try:
            frame = pd.read_json(io.require_file(path), lines=True)
        except ValueError as err:
            raise ChurnError(f"{path}: not JSON lines ({err})") from None
        scores = frame.pop(SCORE_COLUMN).to_numpy(dtype=float) if SCORE_COLUMN in frame else None
        frame = frame.drop(columns=["churn"], errors="ignore")
    else:
        frame, scores = read_raw(path), None
    validate_features(frame, contract, str(path))
    return frame, scores


# --------------------------------------------------------------------------- output


def summary_markdown(checks: list[Check], prediction: Check, rows: int, warning: str) -> str:
    """Drifted features first, each with its statistic and the threshold it crossed."""
    drifted = [c for c in checks if c.drifted]
    lines = ["# Drift report", ""]
    if warning:
        lines += [f"> {warning}", ""]
    verdict = (
        f"{len(drifted)} of {len(checks)} features drifted" if drifted else "No feature drifted"
    )
    lines += [
        f"{verdict} ({rows:,} rows). Predictions: {'drifted' if prediction.drifted else 'stable'}.",
        "",
    ]
    lines.append(
        "| feature | kind | PSI | test | statistic | p | missing Δ | unseen | out of range "
        "| because |"
    )
    lines += ["|---|---|---:|---|---:|---:|---:|---:|---:|---|"]
    ordered = [*sorted(checks, key=lambda c: (not c.drifted, -c.psi)), prediction]
    for c in ordered:
        lines.append(
            f"| {c.name} | {c.kind} | {c.psi:.3f} | {c.test} | {c.statistic:.3f} | {c.p_value:.2g} "
            f"| {c.missing_change:+.1%} | {c.unseen_share:.1%} | {c.out_of_range_share:.1%} "
            f"| {'; '.join(c.reasons) or '—'} |"
        )
    return "\n".join(lines) + "\n"


def plot(name: str, ref: pd.Series, new: pd.Series, kind: str, out: Path) -> Path:
    """Reference vs batch for one feature, as PNG (no version stamp)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    if kind == "categorical":
        both = pd.DataFrame(
            {
                "training": ref.astype(str).value_counts(normalize=True),
                "batch": new.astype(str).value_counts(normalize=True),
            }
        ).fillna(0.0)
        both.plot.bar(ax=ax)
        ax.set_ylabel("share")
    else:
        edges = np.histogram_bin_edges(pd.concat([ref, new]).dropna(), bins=30)
        ax.hist(ref.dropna(), bins=edges, density=True, alpha=0.5, label="training")
        ax.hist(new.dropna(), bins=edges, density=True, alpha=0.5, label="batch")
        ax.set_ylabel("density")
        ax.legend()
    ax.set_title(name)
    fig.tight_layout()
    path = out / f"{name}.png"
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
    return path


def refused_rows(batch: pd.DataFrame, contract: Contract) -> np.ndarray:
    """Rows the service would answer 422 for: a category outside the contract's."""
    refused = np.zeros(len(batch), dtype=bool)
    for name in contract.categorical:
        allowed = contract.columns[name].categories
        if allowed:
            values = batch[name]
            refused |= (values.notna() & ~values.astype(str).isin(allowed)).to_numpy()
    return refused


def score_accepted(batch: pd.DataFrame, contract: Contract, model_path: str) -> np.ndarray:
    """The model's scores for the rows the service would accept (md5-checked model)."""
    refused = refused_rows(batch, contract)
    if refused.any():
        log.warning(
            "%d of %d rows have a category outside the contract (the service refuses them); "
            "scoring the other %d",
            refused.sum(),
            len(batch),
            (~refused).sum(),
        )
    accepted = batch.loc[~refused, contract.features]
    if accepted.empty:
        return np.empty(0)
    model, _ = load_model(model_path)  # md5 checked against dvc.lock first
    return model.predict_proba(accepted)[:, 1]


def run(input_path: Path, out: Path) -> int:
    """Validate, compare, write the outputs; return the exit status (0 or 1)."""
    params = load_params()
    contract = read_contract(params.paths.contract)
    batch, batch_scores = read_batch(input_path, contract)
    reference = io.read_parquet(params.paths.train)
    checks = compare(reference, batch, contract, params.monitor)
    if batch_scores is None:
        batch_scores = score_accepted(batch, contract, params.paths.model)
    test_scores = pd.read_csv(params.paths.predictions)["probability"].to_numpy()
    prediction = compare_scores(test_scores, batch_scores, params.monitor)
    warning = ""
    if len(batch) < params.monitor.min_rows:
        warning = (
            f"Only {len(batch)} rows (fewer than {params.monitor.min_rows}): the tests have "
            "little power; a real shift may go unflagged."
        )
        log.warning("%s", warning)
    out.mkdir(parents=True, exist_ok=True)
    drifted = [c for c in checks if c.drifted]
    for c in drifted:
        plot(c.name, reference[c.name], batch[c.name], c.kind, out)
    result = {
        "input": str(input_path),
        "rows": len(batch),
        "scored_rows": len(batch_scores),  # the rows the service would accept
        "warning": warning,
        "drifted": [c.name for c in drifted],
        "prediction": asdict(prediction),
        "features": [asdict(c) for c in checks],
    }
    io.write_json(out / "drift.json", result)
    io.write_text(out / "summary.md", summary_markdown(checks, prediction, len(batch), warning))
    log.info("%d of %d features drifted; report in %s", len(drifted), len(checks), out)
    return 1 if drifted or prediction.drifted else 0
