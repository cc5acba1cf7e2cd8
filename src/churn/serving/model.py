"""Loading the model the service answers with, checked against dvc.lock before unpickling."""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churn.core import io
from churn.core.contract import Contract, read_contract
from churn.core.integrity import commit_of, load_model
from churn.core.params import load_params
from churn.serving.settings import Settings

log = logging.getLogger("churn.serving")


@dataclass
class Loaded:
    """The model and what the API says about it."""

    model: Any
    version: str
    commit: str
    md5: str
    threshold: float
    metrics: dict
    contract: Contract


def load(settings: Settings) -> Loaded:
    """Read, verify, then unpickle the model; a one-line error on any mismatch."""
    params = load_params(settings.params_file)
    ref = settings.model_ref or None  # MODEL_REF= (empty) means the workspace model
    model, checked = load_model(params.paths.model, rev=ref)
    metrics_path = Path(params.paths.reports) / "metrics.json"
    return Loaded(
        model=model,
        version=ref if ref else f"workspace-{checked.md5[:12]}",
        commit=commit_of(ref or "HEAD"),
        md5=checked.md5,
        threshold=params.evaluate.threshold,
        metrics=io.read_json(metrics_path) if not ref and metrics_path.is_file() else {},
        contract=read_contract(params.paths.contract),
    )
