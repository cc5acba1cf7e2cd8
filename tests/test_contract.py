import pandas as pd
import pytest

from churn.contract import ROW_ID, read_schema, resolve_schema, write_schema
from churn.errors import ChurnError
from churn.params import DataParams
from synthetic import CUSTOM_DATA


def test_telco_roles_are_inferred_from_dtypes(params, telco):
    schema = resolve_schema(params.data, telco, "raw.csv")
    assert schema.target == "churn"
    assert schema.id == "rownames"
    assert schema.numeric == (
        "female",
        "senior_citizen",
        "partner",
        "dependents",
        "tenure",
        "phone_service",
        "paperless_billing",
        "monthly_charges",
        "total_charges",
    )
    assert "contract" in schema.categorical
    assert len(schema.categorical) == 10
    assert "churn" not in schema.features
    assert "rownames" not in schema.features


def test_explicit_lists_and_inferred_rest(telco):
    data = DataParams(
        target="churn",
        positive_label="Yes",
        id=None,
        categorical=["senior_citizen", "contract"],
        numeric="infer",
    )
    schema = resolve_schema(
        data, telco[["rownames", "senior_citizen", "contract", "tenure", "churn"]], "x"
    )
    assert schema.categorical == ("senior_citizen", "contract")
    # With no id configured, rownames is just another (numeric) column.
    assert schema.numeric == ("rownames", "tenure")
    assert schema.id == ROW_ID


def test_missing_declared_column_names_file_and_column(custom_dataset):
    data = DataParams(**{**CUSTOM_DATA, "numeric": ["usage_minutes", "tenure"]})
    with pytest.raises(
        ChurnError, match=r"^custom\.csv: column 'tenure' not found \(columns: account,"
    ):
        resolve_schema(data, custom_dataset, "custom.csv")


def test_missing_target_is_named(custom_dataset):
    data = DataParams(**{**CUSTOM_DATA, "target": "churned"})
    with pytest.raises(ChurnError, match="column 'churned' not found"):
        resolve_schema(data, custom_dataset, "custom.csv")


def test_column_in_both_roles_is_rejected(custom_dataset):
    data = DataParams(**{**CUSTOM_DATA, "categorical": ["plan"], "numeric": ["plan"]})
    with pytest.raises(ChurnError, match=r"\['plan'\] are both categorical and numeric"):
        resolve_schema(data, custom_dataset, "custom.csv")


def test_schema_round_trips_through_json(tmp_path, custom_dataset):
    schema = resolve_schema(DataParams(**CUSTOM_DATA), custom_dataset, "custom.csv")
    write_schema(tmp_path / "schema.json", schema)
    assert read_schema(tmp_path / "schema.json") == schema
    assert schema.numeric == ("usage_minutes", "support_calls")
    assert schema.categorical == ("plan", "region")


def test_target_only_table_has_no_features():
    data = DataParams(target="y", positive_label=1, id=None, categorical="infer", numeric="infer")
    with pytest.raises(ChurnError, match="no feature columns"):
        resolve_schema(data, pd.DataFrame({"y": [0, 1]}), "t.csv")
