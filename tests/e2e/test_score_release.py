"""e2e: a release scored by its tag after the workspace moved on, in a real DVC repository."""

import pandas as pd
import pyarrow.parquet as pq
import pytest

from .conftest import sh

pytestmark = pytest.mark.e2e


def test_a_release_is_scored_with_its_own_contract_and_threshold(moved_on):
    repo, md5 = moved_on.repo, moved_on.md5
    batch = pd.read_parquet(repo / "data/prepared/test.parquet").reset_index().head(50)
    batch.loc[0, "tenure"] = 100  # within the release's rule, outside the workspace's
    batch.to_parquet(repo / "batch.parquet", index=False)
    src = str(repo / "src")

    def score(out: str, *extra: str):
        args = ["--input", "batch.parquet", "--output", out, "--on-error", "reject", *extra]
        return sh(repo, "python", "-m", "churn", "score", *args, check=False, PYTHONPATH=src)

    released = score("released.parquet", "--model-ref", "churn-model@v0.1.0")
    assert released.returncode == 0, released.stderr
    meta = pq.read_schema(repo / "released.parquet").metadata
    assert meta[b"churn.model_version"] == b"churn-model@v0.1.0"
    threshold = moved_on.threshold
    assert (meta[b"churn.model_md5"], meta[b"churn.threshold"]) == (
        md5.encode(),
        repr(threshold).encode(),
    )
    scores = pd.read_parquet(repo / "released.parquet")
    assert len(scores) == 50
    assert (scores["churn"] == (scores["churn_probability"] >= threshold)).all()
    workspace = score("workspace.parquet")
    assert workspace.returncode == 3, workspace.stderr  # the workspace's rule rejects row 1
    assert pq.read_schema(repo / "workspace.parquet").metadata[b"churn.threshold"] == b"0.3"
    rejects = pd.read_csv(repo / "workspace.parquet.rejects.csv")
    assert rejects.to_dict("records") == [
        {"row": 1, "rownames": batch["rownames"][0], "reason": "tenure: <= 80 (100)"}
    ]
