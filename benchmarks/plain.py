"""The plain way: the pipeline's job as one obvious scikit-learn script (the benchmark's 2nd floor).

``python -m benchmarks.plain --out DIR`` (run from a repository) reads the raw CSV
named by ``params.yaml``, cleans it (text stripped, blanks missing, numbers parsed,
target mapped to 0/1), splits it stratified, imputes, one-hot encodes and scales,
fits a logistic regression, scores the test split, draws ROC, precision-recall and
confusion-matrix PNGs and computes permutation importance on 2,000 test rows, all in
one process with the defaults a first draft would use (no thread limits, no dtype
tuning). It writes ``metrics.json``, ``importance.json``, the PNGs and
``timings.json`` (seconds per phase, imports included) into ``DIR``.

Column roles, the target, the split and the model's knobs come from ``params.yaml``
through ``churn.core`` (reading the configuration, not doing the job), so the script
does the same job as the stages without re-declaring anything. It always fits a
logistic regression, whatever ``train.model`` says.
"""

import time

START = time.perf_counter()  # before the heavy imports: the script's cost includes them

import argparse  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.inspection import permutation_importance  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    ConfusionMatrixDisplay,
    PrecisionRecallDisplay,
    RocCurveDisplay,
    accuracy_score,
    average_precision_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402

from churn.core import io  # noqa: E402
from churn.core.contract import Contract, resolve_contract  # noqa: E402
from churn.core.params import Params, load_params  # noqa: E402

IMPORTANCE_ROWS = 2000  # the plain script: permutation importance on 2,000 test rows


def clean(frame: pd.DataFrame, contract: Contract) -> tuple[pd.DataFrame, pd.Series]:
    """Strip text, make blanks missing, parse numbers; return the features and the 0/1 target."""
    for name in frame.select_dtypes(include=["object", "str"]).columns:
        text = frame[name].str.strip()
        frame[name] = text.mask(text == "")
    for name in contract.numeric:
        frame[name] = pd.to_numeric(frame[name], errors="coerce")
    target = (frame[contract.target].astype(str) == str(contract.positive_label)).astype(int)
    return frame[contract.features], target


def build_model(params: Params, contract: Contract) -> Pipeline:
    """Impute + scale the numbers, impute + one-hot the categories, logistic regression."""
    numeric = Pipeline(
        [
            ("impute", SimpleImputer(strategy=params.featurize.numeric_impute)),
            ("scale", StandardScaler() if params.featurize.scale else "passthrough"),
        ]
    )
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    features = ColumnTransformer(
        [("num", numeric, list(contract.numeric)), ("cat", categorical, list(contract.categorical))]
    )
    knobs = params.train.logistic_regression
    classifier = LogisticRegression(
        C=knobs.C,
        max_iter=knobs.max_iter,
        class_weight=params.train.class_weight,
        random_state=params.train.seed,
    )
    return Pipeline([("features", features), ("classifier", classifier)])


def metrics(y_true: pd.Series, proba: pd.Series, threshold: float) -> dict[str, float]:
    """Ranking metrics and the metrics at ``threshold``."""
    flagged = (proba >= threshold).astype(int)
    return {
        "roc_auc": float(roc_auc_score(y_true, proba)),
        "average_precision": float(average_precision_score(y_true, proba)),
        "accuracy": float(accuracy_score(y_true, flagged)),
        "precision": float(precision_score(y_true, flagged, zero_division=0)),
        "recall": float(recall_score(y_true, flagged)),
        "f1": float(f1_score(y_true, flagged)),
    }


def draw_plots(y_true: pd.Series, proba: pd.Series, threshold: float, out: Path) -> None:
    """ROC, precision-recall and confusion-matrix PNGs."""
    RocCurveDisplay.from_predictions(y_true, proba)
    plt.savefig(out / "roc.png")
    PrecisionRecallDisplay.from_predictions(y_true, proba)
    plt.savefig(out / "precision_recall.png")
    ConfusionMatrixDisplay.from_predictions(y_true, (proba >= threshold).astype(int))
    plt.savefig(out / "confusion_matrix.png")
    plt.close("all")


def run(out: Path, params_file: str = "params.yaml") -> dict[str, float]:
    """Do the whole job; return seconds per phase (``imports`` counts from process start)."""
    timings = {"imports": time.perf_counter() - START}
    tick = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal tick
        now = time.perf_counter()
        timings[name] = now - tick
        tick = now

    params = load_params(params_file)
    frame = pd.read_csv(params.paths.raw)
    phase("read")
    contract = resolve_contract(params.data, frame, params.paths.raw)
    features, target = clean(frame, contract)
    x_train, x_test, y_train, y_test = train_test_split(
        features,
        target,
        test_size=params.prepare.test_size,
        stratify=target,
        random_state=params.prepare.seed,
    )
    phase("clean_split")
    model = build_model(params, contract).fit(x_train, y_train)
    phase("fit")
    proba = model.predict_proba(x_test)[:, 1]
    # The obvious way flags at 0.5; a fixed decision threshold in params is used as given
    # (choosing one for profit by cross-validation is the pipeline's extra work, not this).
    chosen = params.decision.threshold
    threshold = 0.5 if chosen == "max_profit" else float(chosen)
    out.mkdir(parents=True, exist_ok=True)
    io.write_json(out / "metrics.json", metrics(y_test, proba, threshold))
    draw_plots(y_test, proba, threshold, out)
    phase("evaluate")
    sample = x_test.sample(n=min(IMPORTANCE_ROWS, len(x_test)), random_state=params.evaluate.seed)
    result = permutation_importance(
        model,
        sample,
        y_test.loc[sample.index],
        scoring="roc_auc",
        n_repeats=params.evaluate.importance_repeats,
        random_state=params.evaluate.seed,
    )
    ranked = sorted(zip(sample.columns, result.importances_mean, strict=True), key=lambda p: -p[1])
    io.write_json(out / "importance.json", [{"feature": f, "importance": v} for f, v in ranked])
    phase("importance")
    timings["total"] = time.perf_counter() - START
    io.write_json(out / "timings.json", timings)
    return timings


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``--out DIR`` (required), ``--params FILE``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plain", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="directory for the outputs")
    parser.add_argument("--params", default="params.yaml", help="the params file to read")
    args = parser.parse_args(argv)
    run(args.out, args.params)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
