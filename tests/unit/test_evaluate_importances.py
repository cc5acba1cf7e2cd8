"""evaluate.importances: permutation importance of the raw columns, on a model we can reason about.

The model sees only the column ``used`` (the others are dropped before the classifier), so
permuting any other column leaves every prediction, hence the ROC AUC, unchanged: their
importance is exactly 0.0. ``used`` separates the classes perfectly, so the AUC on unpermuted
rows is 1 and any shuffle that breaks the ranking lowers it: its importance is above 0.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from churn.stages.evaluate import importances

N_ROWS = 20


def frame() -> pd.DataFrame:
    """Columns deliberately not in alphabetical order, so a tie-break by name is visible."""
    used = np.arange(N_ROWS, dtype=float)
    return pd.DataFrame({"zeta": used % 3, "used": used, "alpha": used % 2, "mid": used % 5})


def fitted(y: np.ndarray, c: float = 1.0, calls: list[int] | None = None) -> Pipeline:
    """A pipeline on ``used`` alone; ``calls`` gets the row count of each later predict call."""
    calls = [] if calls is None else calls
    model = Pipeline(
        [
            ("spy", FunctionTransformer(lambda x: calls.append(len(x)) or x)),
            ("pick", ColumnTransformer([("used", "passthrough", ["used"])])),
            ("clf", LogisticRegression(C=c)),
        ]
    ).fit(frame(), y)
    calls.clear()
    return model


# 5 churners out of 20, all with the highest ``used``.
Y_RARE = (np.arange(N_ROWS) >= 15).astype(int)


def evaluate_params(params, **update):
    """3 repeats: not scikit-learn's default of 5, so ignoring the setting shows."""
    return params.evaluate.model_copy(update={"importance_repeats": 3, **update})


def test_ranked_by_roc_auc_drop_then_name_and_cut_at_top(params):
    """Guards against: a wrong sort order or tie-break, a wrong cut, wrong keys in the plot rows.

    Ignored columns tie at exactly 0.0 and must come out by name (alpha, mid, zeta), whatever
    their order in the frame; only ``importance_top`` rows are kept.
    """
    top = importances(fitted(Y_RARE), frame(), Y_RARE, evaluate_params(params, importance_top=3))
    assert [row["feature"] for row in top] == ["used", "alpha", "mid"]
    assert top[1:] == [
        {"feature": "alpha", "importance": 0.0},
        {"feature": "mid", "importance": 0.0},
    ]
    assert 0.0 < top[0]["importance"] <= 1.0


def test_importance_is_the_roc_auc_drop_not_the_accuracy_drop(params):
    """Guards against scoring by the model's default (accuracy) instead of ROC AUC.

    A heavily regularised model on a 25 % churn rate flags nobody at 0.5, so accuracy cannot
    move when ``used`` is shuffled; the ranking it feeds the AUC still can.
    """
    model = fitted(Y_RARE, c=1e-4)
    assert model.predict(frame()).tolist() == [0] * N_ROWS  # the premise: accuracy is flat
    top = importances(model, frame(), Y_RARE, evaluate_params(params, importance_top=1))
    assert top[0]["feature"] == "used"
    assert top[0]["importance"] > 0.0


def test_same_seed_same_importances(params):
    """Guards against an unseeded shuffle: `dvc repro` would rewrite the report on every run."""
    model = fitted(Y_RARE)
    evaluate = evaluate_params(params)
    first = importances(model, frame(), Y_RARE, evaluate)
    assert importances(model, frame(), Y_RARE, evaluate) == first


Y_HALF = np.arange(N_ROWS) % 2  # interleaved classes: any subsample holds both


@pytest.mark.parametrize(
    ("max_rows", "rows_scored"),
    [(10, 10), (N_ROWS, N_ROWS), (5000, N_ROWS)],
    ids=["subsampled", "exactly-all", "fewer-rows-than-the-cap"],
)
def test_shuffles_at_most_max_rows_importance_repeats_times_per_column(
    params, max_rows, rows_scored
):
    """Guards against ignoring importance_repeats or importance_max_rows, or a small split.

    Ignoring the cap makes the stage slow on big test sets; a split smaller than the cap
    must not crash.

    One unshuffled pass on every row, then for each of the 4 columns 3 shuffled passes on
    ``min(max_rows, rows)`` rows, all in this process (no worker pool).
    """
    calls: list[int] = []
    model = fitted(Y_HALF, calls=calls)
    importances(model, frame(), Y_HALF, evaluate_params(params, importance_max_rows=max_rows))
    assert calls == [N_ROWS] + [rows_scored] * (4 * 3)


def test_a_sample_of_one_class_is_refused_not_written_as_nan(params):
    """3 rows gave NaN importances (no ROC AUC on one class), written into a JSON file."""
    from churn.core.errors import ChurnError

    evaluate = evaluate_params(params, importance_max_rows=1)
    with pytest.raises(ChurnError) as err:
        importances(fitted(Y_RARE), frame(), Y_RARE, evaluate)
    assert str(err.value) == (
        "permutation importance: a sample of 1 test rows held one class only, where ROC AUC is "
        "undefined; raise evaluate.importance_max_rows in params.yaml"
    )


def test_the_importance_sample_is_at_least_1000_rows(params):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="greater than or equal to 1000"):
        type(params.evaluate)(**{**params.evaluate.model_dump(), "importance_max_rows": 999})
