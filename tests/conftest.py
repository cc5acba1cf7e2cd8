"""Shared fixtures: small real-shaped data and a generated second dataset."""

import copy
from pathlib import Path

import pandas as pd
import pytest
import yaml

from churn.fetch import load_dataset
from churn.params import Params, load_params
from synthetic import make_custom_dataset

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def params() -> Params:
    """The repository's own params.yaml, validated."""
    return load_params(REPO / "params.yaml")


@pytest.fixture(scope="session")
def params_raw() -> dict:
    """The repository's params.yaml as a plain mapping (deep-copy before editing)."""
    return yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))


@pytest.fixture
def params_dict(params_raw: dict) -> dict:
    """A private, editable copy of params.yaml."""
    return copy.deepcopy(params_raw)


@pytest.fixture(scope="session")
def telco(params: Params) -> pd.DataFrame:
    """The full IBM Telco table as the fetch stage loads it."""
    return load_dataset(params.source)


@pytest.fixture
def custom_dataset() -> pd.DataFrame:
    """A generated second dataset with a different schema."""
    return make_custom_dataset()
