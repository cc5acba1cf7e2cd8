"""churn summary: the metrics table, and a metrics.json of the wrong shape named in one line."""

import json

import pytest

from churn.core.errors import ChurnError
from churn.core.stats import HIGHER_IS_BETTER
from churn.ops.summary import metrics_table, read_metrics

GOOD = {name: 0.5 for name in HIGHER_IS_BETTER} | {"baseline": {"roc_auc": 0.5}}


def write(tmp_path, text: str) -> str:
    path = tmp_path / "metrics.json"
    path.write_text(text)
    return str(path)


def test_a_good_file_is_read_and_tabled(tmp_path):
    metrics = read_metrics(write(tmp_path, json.dumps(GOOD)))
    lines = metrics_table(metrics).splitlines()
    assert lines[1] == "roc_auc              0.5000    0.5000  higher"
    assert lines[2] == "average_precision    0.5000         -  higher"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[]", "expected a mapping of names, found list"),
        (json.dumps({**GOOD, "roc_auc": "x"}), 'roc_auc: "x" is not a finite number'),
        (json.dumps(GOOD).replace('"roc_auc": 0.5', '"roc_auc": NaN', 1), "roc_auc: NaN is not"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "brier"}), "brier: missing"),
        (json.dumps({**GOOD, "baseline": []}), "baseline: expected a mapping of names"),
        (json.dumps({**GOOD, "baseline": {"f1": "x"}}), 'baseline.f1: "x" is not a finite'),
        (json.dumps({**GOOD, "baseline": {"f1": True}}), "baseline.f1: true is not a finite"),
    ],
)
def test_a_file_of_the_wrong_shape_is_one_line_naming_it(tmp_path, text, says):
    path = write(tmp_path, text)
    with pytest.raises(ChurnError) as err:
        read_metrics(path)
    assert str(err.value).startswith(f"{path}: {says}")
