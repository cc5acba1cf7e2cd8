"""The model card: what this model is, how well it does, for whom, and where it should not be used.

evaluate writes it on every run (``paths.reports``/model_card.md, tracked by DVC).
Nothing in it changes between two runs of the same commit: no timestamps, no
versions, no commit hash; a release adds its tag and commit when it publishes
the card.
"""

import numpy as np
import pandas as pd

from churn.core import decision
from churn.core.contract import Contract
from churn.core.errors import ChurnError
from churn.core.integrity import file_md5
from churn.core.markdown import cell, code, inner, percent
from churn.core.params import EvaluateParams, Params
from churn.core.stats import (
    METRICS,
    TOO_FEW,
    Scores,
    confidence_intervals,
    enough_rows,
    sample_labelled,
)

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)
SHARES = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0)  # rows of the card's gains/profit table
MAX_GROUPS = 10  # a numeric slice column with more values is cut into quantile groups
QUANTILE_GROUPS = 5


def _model_section(params: Params, contract: Contract, threshold: float) -> list[str]:
    train = params.train
    hyper = getattr(train, train.model).model_dump()
    listed = ", ".join(f"{k}={v}" for k, v in hyper.items())
    return [
        "## Model",
        "",
        f"- Classifier: `{train.model}` ({listed}); class weight: "
        f"{train.class_weight or 'none'}; seed {train.seed}.",
        f"- Input: {len(contract.features)} raw columns ({len(contract.numeric)} numeric, "
        f"{len(contract.categorical)} categorical, see `{params.paths.contract}`); output: the "
        f"probability that the customer churns ({code(contract.target)} = "
        f"{code(contract.positive_label)}).",
        *(
            [
                "- The data contract was inferred from the file (`features: infer`): types, "
                "nullability and categories from all its rows, numeric ranges from the "
                "training split; `churn contract --freeze` prints it as params to declare."
            ]
            if contract.inferred
            else []
        ),
        f"- One artifact: `{params.paths.model}`, a scikit-learn Pipeline of the fitted "
        "feature transformer and the classifier.",
        f"- Decision threshold: {inner(threshold, '.4g')} (`{params.paths.decision}`).",
        "",
    ]


def _data_section(params: Params, y_train: pd.Series, y_test: np.ndarray) -> list[str]:
    return [
        "## Data",
        "",
        f"- Raw file: `{params.paths.raw}`; stratified split, test size "
        f"{params.prepare.test_size}, seed {params.prepare.seed}.",
        f"- Training split: {len(y_train):,} rows, {y_train.mean():.1%} churn; "
        f"md5 `{file_md5(params.paths.train)}`.",
        f"- Test split: {len(y_test):,} rows, {y_test.mean():.1%} churn.",
        "",
    ]


def _metrics_section(
    y: np.ndarray, proba: np.ndarray, scores: Scores, params: Params, threshold: float
) -> list[str]:
    ev = params.evaluate
    values, base = scores.model, scores.baseline
    # Intervals on a seeded subsample: as wide as or wider than the full set's, at a
    # bounded cost (1,000 resamples of 200,000 rows would dominate evaluate).
    rows = interval_rows(y, ev)
    cis = confidence_intervals(
        y[rows], proba[rows], threshold, resamples=ev.ci_resamples, seed=ev.seed
    )
    sampled = f", on {len(rows):,} of {len(y):,} rows" if len(rows) < len(y) else ""
    lines = [
        f"## Test metrics (95 % bootstrap intervals, {ev.ci_resamples} resamples{sampled})",
        "",
        "| metric | model | 95 % CI | prior baseline | better |",
        "|---|---:|---|---:|---|",
    ]
    # With a handful of rows of a class the resamples redraw the same rows: an interval
    # of zero width ([1.0000, 1.0000]) would claim a certainty two rows cannot give.
    few = not enough_rows(y[rows])
    for name, metric in METRICS.items():
        low, high = cis[name]
        interval = "—" if few else f"[{low:.4f}, {high:.4f}]"
        lines.append(
            f"| {name} | {values[name]:.4f} | {interval} | {base[name]:.4f} "
            f"| {'higher' if metric.higher_is_better else 'lower'} |"
        )
    if few:
        lines += ["", f"_No intervals: {TOO_FEW}._"]
    return [*lines, ""]


def _threshold_section(y: np.ndarray, proba: np.ndarray, threshold: float) -> list[str]:
    lines = [
        "## The threshold and what it trades",
        "",
        "Lowering the threshold flags more customers: more churners caught (recall), more "
        "retention effort spent on customers who would have stayed (lower precision).",
        "",
        "| threshold | flagged | precision | recall |",
        "|---:|---:|---:|---:|",
    ]
    for t in sorted({*THRESHOLDS, threshold}):
        flagged = proba >= t
        precision, recall = precision_recall(y, flagged)
        mark = " (used)" if t == threshold else ""
        lines.append(
            f"| {inner(t, f'.{2 if round(t, 2) == t else 4}f')}{mark} | {flagged.mean():.1%} | "
            f"{precision:.3f} | {recall:.3f} |"
        )
    return [*lines, ""]


def _how_chosen(policy: dict) -> str:
    if policy["policy"] == "fixed":
        return "fixed in params.yaml (`decision.threshold`)"
    return (
        f"chosen by train for the highest profit on {policy['folds']}-fold out-of-fold "
        f"predictions of the training split (seed {policy['seed']}; "
        f"{policy['train_profit_per_1000']:,.0f} per 1,000 there), never on the test split"
    )


def _economics(params: Params) -> str:
    d = params.decision
    value = f"{d.value:g} x {code(d.value_column)}" if d.value_column else f"{d.value:g}"
    return (
        f"a contact costs {d.contact_cost:g}; an offer keeps a customer who would leave with "
        f"probability {d.retention_rate:g}, who is then worth {value} less an incentive of "
        f"{d.incentive_cost:g}"
    )


def _decision_section(
    y: np.ndarray, proba: np.ndarray, measured: decision.Measured, params: Params
) -> list[str]:
    """What the threshold trades in money: the policy, its profit, the gains and profit curves."""
    m, d = measured.metrics, params.decision
    sampled = y[interval_rows(y, params.evaluate)]  # the rows evaluate bootstrapped
    captured = decision.gains(y, proba, np.array(SHARES))
    lifted = decision.lift(y, proba, np.array(SHARES))
    profit = decision.profit_at(
        decision.profit_curve(decision.row_profit(y, measured.value, d), proba), np.array(SHARES)
    )
    lines = [
        "### In money: the campaign",
        "",
        f"Assumptions (`decision:` in params.yaml): {_economics(params)}.",
        "",
        f"- Threshold **{inner(measured.threshold, '.4f')}**, {_how_chosen(measured.policy)}.",
        f"- On the test split it contacts {m['decision/contact_share']:.1%} of the customers; "
        f"expected profit **{m['profit']:,.0f} per 1,000 customers** (95 % bootstrap interval "
        f"{_interval(m, 'decision/profit', sampled)}).",
        f"- Contacting the riskiest {percent(d.top_share, 0)} reaches "
        f"{m['capture_at_k']:.1%} of the churners: lift {m['lift_at_k']:.2f}.",
        f"- In hindsight the best share on the test split is {m['decision/best_share']:.1%}, "
        f"{m['decision/max_profit']:,.0f} per 1,000 "
        f"({_interval(m, 'decision/max_profit', sampled)}): "
        "the ceiling a threshold could reach here.",
        "",
        "Gains and profit by contact share, riskiest first (plots: `gains`, `lift`, `profit`):",
        "",
        "| contacted | churners reached | lift | profit per 1,000 |",
        "|---:|---:|---:|---:|",
    ]
    for share, c, li, pr in zip(SHARES, captured, lifted, profit, strict=True):
        lines.append(f"| {share:.0%} | {c:.1%} | {li:.2f} | {pr:,.0f} |")
    return [*lines, ""]


def interval_rows(y: np.ndarray, evaluation: EvaluateParams) -> np.ndarray:
    """The test rows every bootstrap interval is drawn from: at most ``ci_max_rows``, seeded.

    evaluate's money intervals and the card's metric intervals use these rows, and the
    card judges whether they hold enough of each class on these rows, not the whole split.
    """
    return sample_labelled(y, evaluation.ci_max_rows, evaluation.seed, "evaluate.ci_max_rows")


def _interval(metrics: dict, name: str, y: np.ndarray) -> str:
    """``[low, high]`` of a money metric; none from too few rows of a class (zero width).

    ``y``: the labels of the rows its bootstrap drew from (:func:`interval_rows`).
    """
    if not enough_rows(y):
        return f"—, {TOO_FEW}"
    return f"[{metrics[f'{name}_low']:,.0f}, {metrics[f'{name}_high']:,.0f}]"


def precision_recall(y: np.ndarray, flagged: np.ndarray) -> tuple[float, float]:
    """Precision and recall of the ``flagged`` rows (0 where undefined), from counts.

    The same divisions of the same integers as scikit-learn's scores: the same
    floats, without eight metric calls per table row on millions of test rows.
    """
    positive = y == 1
    caught = int(np.count_nonzero(flagged & positive))
    n_flagged, n_positive = int(np.count_nonzero(flagged)), int(np.count_nonzero(positive))
    return (
        caught / n_flagged if n_flagged else 0.0,
        caught / n_positive if n_positive else 0.0,
    )


def _calibration_section(y: np.ndarray, proba: np.ndarray, bins: int) -> list[str]:
    """``bins`` equal bands of predicted probability (``evaluate.calibration_bins``)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Against the inner edges, digitize puts every value (1.0 too) in band 0..bins - 1.
    which = np.digitize(proba, edges[1:-1])
    # As many decimals as the edges need: 0.1 for ten bands, 0.05 for twenty.
    places = 1 if 10 % bins == 0 else 2 if 100 % bins == 0 else 3
    lines = [
        "## Calibration",
        "",
        f"Brier score {np.mean((proba - y) ** 2):.4f}. Within each band of predicted "
        "probability, the share that actually churned:",
        "",
        "| predicted | customers | mean predicted | observed churn |",
        "|---|---:|---:|---:|",
    ]
    for b in range(bins):
        inside = which == b
        if inside.any():
            lines.append(
                f"| {edges[b]:.{places}f} to {edges[b + 1]:.{places}f} | {inside.sum():,} | "
                f"{proba[inside].mean():.3f} | {y[inside].mean():.3f} |"
            )
    return [*lines, ""]


def _slice_section(
    test: pd.DataFrame, y: np.ndarray, proba: np.ndarray, slices: list[str], threshold: float
) -> list[str]:
    lines = [
        "## Performance by group",
        "",
        "Unequal numbers here mean the model serves some customers worse than others.",
        "",
        "| group | customers | churn rate | ROC AUC | precision | recall |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for column in slices:
        for group, inside in slice_groups(column, test[column]):
            yy, pp = y[inside], proba[inside]
            both = len(np.unique(yy)) == 2
            precision, recall = precision_recall(yy, pp >= threshold)
            auc = f"{METRICS['roc_auc'].compute(yy, pp, threshold):.3f}" if both else "—"
            prec = f"{precision:.3f}" if both else "—"
            rec = f"{recall:.3f}" if both else "—"
            lines.append(
                f"| {cell(group)} | {inside.sum():,} | {yy.mean():.1%} | {auc} | {prec} | {rec} |"
            )
    return [*lines, ""]


def slice_groups(column: str, values: pd.Series) -> list[tuple[str, np.ndarray]]:
    """The groups of a slice column, each a label and its rows; the missing ones last.

    One group per value, in text order; a numeric column of more than
    :data:`MAX_GROUPS` values (tenure, charges) in :data:`QUANTILE_GROUPS` groups of
    about equal size instead, in numeric order: a row per customer would say nothing.
    Rows without a value are a group of their own: left out, the groups did not add
    up to the test split and nothing said so.
    """
    present = values.dropna()
    if pd.api.types.is_numeric_dtype(values) and present.nunique() > MAX_GROUPS:
        bins = pd.qcut(values, QUANTILE_GROUPS, duplicates="drop")
        masks = [(bins == b).to_numpy() for b in bins.cat.categories]
        # Labelled by the values each group holds, not qcut's widened edges (-0.001).
        groups = [
            (f"{column} {values[m].min():g} to {values[m].max():g}", m) for m in masks if m.any()
        ]
    else:
        groups = [
            (f"{column} = {value}", (values == value).to_numpy())
            for value in sorted(present.unique(), key=str)
        ]
    missing = values.isna().to_numpy()
    return [*groups, (f"{column} missing", missing)] if missing.any() else groups


def _use_section(params: Params) -> str:
    return INTENDED_USE.format(
        raw=params.paths.raw, slices=", ".join(code(s) for s in params.evaluate.slices)
    )


INTENDED_USE = """## Intended use

Rank existing customers by their risk of leaving, so that a retention team can decide whom to
contact first. The score is a probability; the threshold above turns it into a list.

## Limitations

- Trained on one snapshot of customers (`{raw}`); customers, products and prices elsewhere, or
  later, differ. Watch for drift before trusting new scores.
- Evaluated on one stratified test split; the intervals above show how much the numbers move.
- Not for decisions about individual people without human review: pricing, credit, or anything
  that denies a service. Group results above are associations in historical data, not causes.
- The inputs may include demographic columns; the group table ({slices}) shows where the model
  does worse. Check it before using the scores where unequal treatment matters.
"""


def render(
    params: Params,
    contract: Contract,
    y_train: pd.Series,
    test: pd.DataFrame,
    proba: np.ndarray,
    scores: Scores,
    measured: decision.Measured,
) -> str:
    """The whole card as markdown; ``scores`` are evaluate's logged test metrics."""
    ev = params.evaluate
    # A bad slice name is refused before the bootstrap spends seconds on the metrics.
    for column in ev.slices:
        if column not in test.columns:
            raise ChurnError(f"params.yaml: evaluate.slices: {column!r} is not a feature column")
    y = test[contract.target].to_numpy()
    parts = [
        "# Model card: churn model",
        "",
        *_model_section(params, contract, measured.threshold),
        *_data_section(params, y_train, y),
        *_metrics_section(y, proba, scores, params, measured.threshold),
        *_threshold_section(y, proba, measured.threshold),
        *_decision_section(y, proba, measured, params),
        *_calibration_section(y, proba, ev.calibration_bins),
        *_slice_section(test, y, proba, ev.slices, measured.threshold),
        _use_section(params),
    ]
    return "\n".join(parts)
