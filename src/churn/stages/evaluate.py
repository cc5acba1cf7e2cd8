"""Stage ``evaluate``: score the model on the test split against a trivial baseline.

Writes, through dvclive, ``metrics.json`` and plot data (ROC, precision-recall,
confusion matrix, calibration, permutation importance) into ``paths.reports``,
plus per-row test predictions to ``paths.predictions``.
"""

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.pipeline import Pipeline

from churn.core import decision, entry, io
from churn.core.bundle import check_policy
from churn.core.contract import Contract, check_slices, read_contract
from churn.core.errors import ChurnError
from churn.core.params import DecisionParams, EvaluateParams, load_params
from churn.core.stats import Scores, decision_intervals, sample_labelled, score
from churn.stages import card
from churn.stages.featurize import CHUNK_ROWS, check_fitted_columns

if TYPE_CHECKING:  # dvclive is imported where the reports are written
    from dvclive import Live

log = logging.getLogger("churn.evaluate")


def baseline_proba(y_train: np.ndarray, n_rows: int) -> np.ndarray:
    """The prior baseline: every customer gets the training churn rate.

    What scikit-learn's ``DummyClassifier(strategy="prior")`` predicts, to the bit:
    the count of 1s over the count of rows.
    """
    return np.full(n_rows, np.count_nonzero(y_train == 1) / len(y_train))


def importances(
    model: Pipeline, features: pd.DataFrame, y_true: np.ndarray, params: EvaluateParams
) -> list[dict[str, float | str]]:
    """Top permutation importances (drop in ROC AUC) of the raw input columns, seeded."""
    rows = min(params.importance_max_rows, len(features))
    result = permutation_importance(
        model,
        features,
        y_true,
        scoring="roc_auc",
        n_repeats=params.importance_repeats,
        max_samples=rows,
        random_state=params.seed,
        n_jobs=1,
    )
    if np.isnan(result.importances_mean).any():  # NaN is no JSON, and no importance
        raise ChurnError(
            f"permutation importance: a sample of {rows} test rows held one class only, where "
            "ROC AUC is undefined; raise evaluate.importance_max_rows in params.yaml"
        )
    ranked = sorted(
        zip(features.columns, result.importances_mean, strict=True),
        key=lambda item: (-item[1], item[0]),
    )
    return [
        {"feature": str(name), "importance": float(value)}
        for name, value in ranked[: params.importance_top]
    ]


def predict_rows(model: Pipeline, features: pd.DataFrame, rows: int = CHUNK_ROWS) -> np.ndarray:
    """Churn probabilities, ``rows`` at a time: the features of one block exist at once."""
    blocks = range(0, len(features), rows)
    return np.concatenate([model.predict_proba(features.iloc[i : i + rows])[:, 1] for i in blocks])


def predictions_frame(
    ids: pd.Index, y_true: np.ndarray, proba: np.ndarray, value: np.ndarray
) -> pd.DataFrame:
    """Per-row test predictions in test-split order: id, true label, probability, value if kept."""
    return pd.DataFrame(
        {"id": ids.to_numpy(), "label": y_true, "probability": proba, "value": value}
    )


def decision_metrics(
    y_true: np.ndarray,
    proba: np.ndarray,
    value: np.ndarray,
    threshold: float,
    params: DecisionParams,
    evaluation: EvaluateParams,
) -> dict[str, float]:
    """lift_at_k, capture_at_k and profit at the threshold, plus the test's own best share.

    ``profit`` is what the recorded threshold earns per 1,000 test customers; the best
    share on the test curve (``decision/best_share``, ``decision/max_profit``) is the
    hindsight optimum, for reference only. Intervals: seeded bootstrap of the rows.
    """
    y = np.asarray(y_true)
    gain, top = decision.policy_rows(y, proba, value, threshold, params)
    profits = decision.row_profit(y, value, params)
    curve = decision.profit_curve(profits, proba)
    best = decision.best_whole_groups(curve, proba)  # a count a threshold can contact
    options = {"resamples": evaluation.ci_resamples, "seed": evaluation.seed}
    # Intervals on at most ci_max_rows rows (as the card's): a bootstrap of millions of
    # test rows would dominate evaluate, and a subsample's interval is only wider.
    rows = card.interval_rows(y, evaluation)
    at_threshold = decision_intervals(y[rows], gain[rows], top[rows], **options)["profit"]
    best_rows = decision.top_mask(proba, best / len(y))  # the top ``best`` customers
    best_gain = decision.PER * profits * best_rows
    at_best = decision_intervals(y[rows], best_gain[rows], top[rows], **options)["profit"]
    return {
        "lift_at_k": decision.lift_at_k(y, proba, params.top_share),
        "capture_at_k": decision.capture_at_k(y, proba, params.top_share),
        "profit": float(gain.sum() / len(y)),
        "decision/threshold": float(threshold),
        "decision/contact_share": float(np.mean(proba >= threshold)),
        "decision/profit_low": at_threshold[0],
        "decision/profit_high": at_threshold[1],
        "decision/best_share": best / len(y),
        "decision/max_profit": float(curve[best] / len(y) * decision.PER),
        "decision/max_profit_low": at_best[0],
        "decision/max_profit_high": at_best[1],
    }


def log_decision(
    live: "Live",
    y_true: np.ndarray,
    proba: np.ndarray,
    value: np.ndarray,
    metrics: dict,
    params: DecisionParams,
) -> None:
    """Log the decision metrics and the gains, lift and profit curves."""
    for name, number in metrics.items():
        live.log_metric(name, number, plot=False)
    titles = {
        "gains": ("churners_reached", "Cumulative gains (test)"),
        "lift": ("lift", "Lift (test)"),
        "profit": ("profit_per_1000", "Expected campaign profit per 1,000 customers (test)"),
    }
    for name, points in decision.curve_points(y_true, proba, value, params).items():
        y_field, title = titles[name]
        live.log_plot(name, points, x="contact_share", y=y_field, template="simple", title=title)


def log_reports(
    live: "Live",
    y_true: np.ndarray,
    proba: np.ndarray,
    baseline: np.ndarray,
    top: list[dict[str, float | str]],
    params: EvaluateParams,
    threshold: float,
) -> Scores:
    """Log metrics and plot data to ``live``; returns the metrics logged.

    Metrics use every test row. The per-row plots (a PR curve has a point per
    distinct score, a confusion matrix a record per row) draw on at most
    ``plot_max_rows`` of them, a seeded subsample their titles state.
    """
    scores = Scores(score(y_true, proba, threshold), score(y_true, baseline, threshold))
    for name, value in scores.model.items():
        live.log_metric(name, value, plot=False)
    for name, value in scores.baseline.items():
        live.log_metric(f"baseline/{name}", value, plot=False)
    rows = sample_labelled(y_true, params.plot_max_rows, params.seed, "evaluate.plot_max_rows")
    y, p = y_true[rows], proba[rows]
    of = f"{len(y):,} of {len(y_true):,} rows" if len(y) < len(y_true) else ""
    on = f", {of}" if of else ""
    live.log_sklearn_plot("roc", y, p, name="roc", title=f"ROC (test{on})")
    live.log_sklearn_plot(
        "precision_recall", y, p, name="precision_recall", title=f"Precision-recall (test{on})"
    )
    live.log_sklearn_plot(
        "confusion_matrix",
        y,
        (p >= threshold).astype(int),
        name="confusion_matrix",
        title=f"Confusion matrix at threshold {threshold:.4g}" + (f" ({of})" if of else ""),
    )
    live.log_sklearn_plot(
        "calibration",
        y,
        p,
        name="calibration",
        title=f"Calibration (test{on})",
        n_bins=params.calibration_bins,
    )
    live.log_plot(
        "importance",
        top,
        x="importance",
        y="feature",
        template="bar_horizontal_sorted",
        title="Permutation importance (ROC AUC drop, test)",
    )
    return scores


def write_reports(
    reports_dir: str | Path,
    y_true: np.ndarray,
    proba: np.ndarray,
    baseline: np.ndarray,
    top: list[dict[str, float | str]],
    params: EvaluateParams,
    measured: decision.Measured,
    decision_params: DecisionParams,
) -> Scores:
    """Write dvclive output into a temp dir, then move it into ``reports_dir``; the scores."""
    from dvclive import Live

    reports = Path(reports_dir)
    reports.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".live-", dir=reports) as tmp:
        with Live(dir=tmp, save_dvc_exp=False, dvcyaml=False, report=None) as live:
            logged = log_reports(live, y_true, proba, baseline, top, params, measured.threshold)
            log_decision(live, y_true, proba, measured.value, measured.metrics, decision_params)
        with io.atomic_path(reports / "metrics.json") as target:
            Path(tmp, "metrics.json").replace(target)
        io.replace_dir(Path(tmp, "plots"), reports / "plots")
    return logged


def main() -> None:
    """Evaluate ``paths.model`` on ``paths.test``."""
    params = load_params()
    reports = Path(params.paths.reports)
    io.require_directory_or_absent(reports / "plots", "paths.reports")
    io.require_file_targets(reports / "metrics.json", params.paths.predictions, params.paths.card)
    contract: Contract = read_contract(params.paths.contract)
    # Before any work, not after the metrics are written. prepare checked them too, but
    # `dvc exp run -S evaluate.slices=...` reruns evaluate alone.
    check_slices(list(params.evaluate.slices), list(contract.features), params.paths.contract)
    decision.check_value_column(params.decision, contract)
    model: Pipeline = io.read_pickle(params.paths.model)
    check_fitted_columns(model, contract, params.paths.model)
    policy = check_policy(io.read_json(params.paths.decision), params.paths.decision)
    test = io.read_parquet(params.paths.test)
    y_train = io.read_parquet(params.paths.train, [contract.target])[contract.target]
    y_true = test[contract.target].to_numpy()
    features = test[contract.features]
    proba = predict_rows(model, features)
    top = importances(model, features, y_true, params.evaluate)
    baseline = baseline_proba(y_train.to_numpy(), len(test))
    value = decision.customer_value(test, params.decision)
    measured = decision.Measured(
        policy,
        value,
        decision_metrics(
            y_true, proba, value, policy["threshold"], params.decision, params.evaluate
        ),
    )
    logged = write_reports(
        params.paths.reports,
        y_true,
        proba,
        baseline,
        top,
        params.evaluate,
        measured,
        params.decision,
    )
    io.write_csv(params.paths.predictions, predictions_frame(test.index, y_true, proba, value))
    io.write_text(
        params.paths.card,
        card.render(params, contract, y_train, test, proba, logged, measured),
    )
    log.info(
        "test ROC AUC %.4f, average precision %.4f",
        logged.model["roc_auc"],
        logged.model["average_precision"],
    )


if __name__ == "__main__":
    entry.leave(entry.run(main))
