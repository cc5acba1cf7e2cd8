import re

import numpy as np
import pandas as pd
import pytest

from churn.core.contract import resolve_contract
from churn.core.decision import Measured
from churn.core.errors import ChurnError
from churn.core.stats import Scores, score
from churn.stages import card
from churn.stages.evaluate import decision_metrics

SECTIONS = [
    "# Model card: churn model",
    "## Model",
    "## Data",
    "## Test metrics (95 % bootstrap intervals, 50 resamples)",
    "## The threshold and what it trades",
    "### In money: the campaign",
    "## Calibration",
    "## Performance by group",
    "## Intended use",
    "## Limitations",
]


def few_resamples(params, **evaluate):
    """The params with 50 bootstrap resamples: the card reads the same, 20 times cheaper.

    ``make mutation`` reruns these tests for every mutant of the card and of stats.
    """
    update = {"ci_resamples": 50, **evaluate}
    return params.model_copy(update={"evaluate": params.evaluate.model_copy(update=update)})


@pytest.fixture
def inputs(params, telco, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    contract = resolve_contract(params.data, telco, "raw.csv")
    test = telco.head(600).copy()
    y = (test["churn"] == "Yes").astype(int).to_numpy()
    rng = np.random.default_rng(0)
    proba = np.clip(0.25 + 0.4 * y + rng.normal(0, 0.2, len(y)), 0.01, 0.99)
    test["churn"] = y
    train_path = tmp_path / params.paths.train
    train_path.parent.mkdir(parents=True)
    train_path.write_bytes(b"training bytes")
    y_train = pd.Series([0, 1, 0, 0])
    return contract, test, y, proba, y_train


def measured(params, y, proba, threshold=0.5):
    """The decision policy at ``threshold``, measured as evaluate measures it."""
    value = np.full(len(y), 500.0)
    metrics = decision_metrics(y, proba, value, threshold, params.decision, params.evaluate)
    return Measured({"policy": "fixed", "threshold": threshold}, value, metrics)


def same(y, proba) -> Scores:
    """Model and baseline scored alike: for tests that read neither."""
    return Scores(score(y, proba, 0.5), score(y, proba, 0.5))


def test_card_has_every_section_with_real_numbers(params, inputs):
    contract, test, y, proba, y_train = inputs
    cheap = few_resamples(params)
    text = card.render(
        cheap,
        contract,
        y_train,
        test,
        proba,
        Scores(score(y, proba, 0.5), score(y, np.full(len(y), y.mean()), 0.5)),
        measured(cheap, y, proba),
    )
    positions = [text.index(title) for title in SECTIONS]
    assert positions == sorted(positions)
    # Markdown headings need a blank line on either side to render as headings.
    lines = text.split("\n")
    assert lines[:4] == ["# Model card: churn model", "", "## Model", ""]
    for i, line in enumerate(lines[1:], start=1):
        if line.startswith("#"):
            assert (lines[i - 1], lines[i + 1]) == ("", ""), line
    expected_auc = score(y, proba, 0.5)["roc_auc"]
    row = re.search(r"\| roc_auc \| (\S+) \| \[(\S+), (\S+)\] \| 0\.5000 \| higher \|", text)
    assert float(row[1]) == pytest.approx(expected_auc, abs=5e-5)
    assert float(row[2]) < expected_auc < float(row[3])
    # md5 of b"training bytes", computed outside the code under test (md5sum).
    assert "md5 `04ee6033369237668cf680003791080c`" in text
    assert "- Training split: 4 rows, 25.0% churn" in text
    assert "| 0.50 (used) |" in text
    assert "- Threshold **0.5000**, fixed in params.yaml (`decision.threshold`)." in text
    for value in ("Month-to-month", "One year", "Two year"):
        assert f"| contract = {value} |" in text
    assert "| senior_citizen = 0 |" in text


@pytest.mark.parametrize(
    ("bins", "first", "last"),
    [
        (4, "0.00 to 0.25", "0.75 to 1.00"),
        (10, "0.0 to 0.1", "0.9 to 1.0"),
        (3, "0.000 to 0.333", "0.667 to 1.000"),
    ],
)
def test_the_calibration_table_has_evaluate_calibration_bins_bands(
    params, inputs, bins, first, last
):
    """It had ten bands whatever the param said, where the plot follows it."""
    contract, test, y, proba, y_train = inputs
    proba = np.linspace(0.0, 1.0, len(y))  # every band has customers
    cheap = few_resamples(params, calibration_bins=bins)
    text = card.render(
        cheap, contract, y_train, test, proba, same(y, proba), measured(cheap, y, proba)
    )
    table = text.split("## Calibration")[1].split("##")[0]
    rows = [line for line in table.splitlines() if re.match(r"\| \d", line)]
    assert len(rows) == bins
    assert rows[0].startswith(f"| {first} | ")
    assert rows[-1].startswith(f"| {last} | ")
    counts = [int(row.split("|")[2].replace(",", "")) for row in rows]
    assert sum(counts) == len(y)


def test_unknown_slice_column_names_the_key(params, inputs):
    contract, test, y, proba, y_train = inputs
    bad = few_resamples(params, slices=["region"])
    with pytest.raises(ChurnError, match=r"evaluate\.slices: 'region' is not a feature column"):
        card.render(bad, contract, y_train, test, proba, same(y, proba), measured(bad, y, proba))


def test_intervals_on_a_large_test_set_use_a_seeded_subsample(params, inputs, telco):
    contract, _, _, _, y_train = inputs
    test = telco.head(1500).copy()
    y = (test["churn"] == "Yes").astype(int).to_numpy()
    test["churn"] = y
    proba = np.clip(0.3 + 0.4 * y, 0.01, 0.99)
    capped = few_resamples(params, ci_max_rows=1000, ci_resamples=20)
    decided = measured(capped, y, proba)
    text = card.render(capped, contract, y_train, test, proba, same(y, proba), decided)
    assert (
        "## Test metrics (95 % bootstrap intervals, 20 resamples, on 1,000 of 1,500 rows)" in text
    )
    # Rendered twice, the card is the same text: the subsample and the bootstrap are seeded.
    assert text == card.render(capped, contract, y_train, test, proba, same(y, proba), decided)
