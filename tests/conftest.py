"""Shared fixtures: small real-shaped data and a generated second dataset."""

import copy
import os
import socket
from pathlib import Path

import pandas as pd
import pytest
import yaml

from churn.core.params import Params, load_params
from churn.stages.fetch import load_dataset
from synthetic import CUSTOM_DATA, make_custom_dataset
from unit.ascii_locale import ascii_locale as _ascii_locale
from unit.mutation_order import pytest_collection_modifyitems  # noqa: F401 (mutmut only)

REPO = Path(__file__).resolve().parents[1]

# The servers under test (churn serve, moto's S3) listen on 127.0.0.1: a proxy the machine
# sets must not stand between them and their clients, in this process or its children.
for _name in ("NO_PROXY", "no_proxy"):
    os.environ[_name] = ",".join(filter(None, ["127.0.0.1", "localhost", os.environ.get(_name)]))


def free_port() -> int:
    """A loopback port nothing listens on right now (never the default 8000 another may hold)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def run_pipeline(root: Path, params_raw: dict, raw_frame: pd.DataFrame) -> Path:
    """Run the four stages in-process in ``root`` on ``raw_frame``; returns ``root``.

    Plus a dvc.lock recording the md5 of each output a model version is read from
    (what serving, scoring and monitoring check).
    """
    from churn.core import entry
    from churn.core.integrity import md5_of
    from churn.stages import evaluate, featurize, prepare, train

    (root / "params.yaml").write_text(yaml.safe_dump(params_raw, sort_keys=False))
    raw = root / params_raw["paths"]["raw"]
    raw.parent.mkdir(parents=True)
    raw_frame.to_csv(raw, index=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for main in (prepare.main, featurize.main, train.main, evaluate.main):
            assert entry.run(main) == 0
    paths = params_raw["paths"]
    recorded = [
        paths["model"],
        paths["decision"],
        paths["card"],
        f"{paths['reports']}/metrics.json",
    ]

    def entry_of(path: str) -> dict:
        data = (root / path).read_bytes()
        return {"path": path, "md5": md5_of(data), "size": len(data)}

    stages = {
        "prepare": {"deps": [entry_of(paths["raw"])], "outs": [entry_of(paths["contract"])]},
        "train": {"outs": [entry_of(p) for p in recorded]},
    }
    (root / "dvc.lock").write_text(yaml.safe_dump({"stages": stages}))
    return root


@pytest.fixture(scope="session")
def trained(tmp_path_factory, params_raw, telco) -> Path:
    """A work dir where the four stages ran in-process on the full data (declared contract).

    Tests must leave it as they found it.
    """
    return run_pipeline(tmp_path_factory.mktemp("trained"), params_raw, telco)


@pytest.fixture(scope="session")
def trained_inferred(tmp_path_factory, params_raw) -> Path:
    """The same on the generated dataset with ``features: infer`` (string id, text target).

    Its never-missing features are plan and support_calls; usage_minutes and region
    have missing values in training. Tests must leave it as they found it.
    """
    raw = {
        **copy.deepcopy(params_raw),
        "data": dict(CUSTOM_DATA),
        "evaluate": {**params_raw["evaluate"], "slices": ["plan"]},
        # The campaign values a kept account by its usage (a numeric column with gaps).
        "decision": {**params_raw["decision"], "value_column": "usage_minutes"},
    }
    raw["paths"]["raw"] = "data/raw/custom.csv"
    return run_pipeline(tmp_path_factory.mktemp("inferred"), raw, make_custom_dataset(1200))


@pytest.fixture
def ascii_locale():
    """The test runs in the plain C (ASCII) locale; the one before is restored after."""
    with _ascii_locale():
        yield


def spy_reads(monkeypatch: pytest.MonkeyPatch, method: str) -> list[int]:
    """The size asked of each ``method`` call ("read", "readline") on files Path.open opens.

    For the tests that hold a reader to a bounded read of a huge line or header.
    """
    sizes: list[int] = []
    real_open = Path.open

    def opened(self: Path, *args, **kwargs):
        fh = real_open(self, *args, **kwargs)
        real = getattr(fh, method)
        setattr(fh, method, lambda size=-1: sizes.append(size) or real(size))
        return fh

    monkeypatch.setattr(Path, "open", opened)
    return sizes
