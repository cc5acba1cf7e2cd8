"""Loading the model version the service answers with: the whole bundle, checked before use.

With ``MODEL_REF`` everything comes from that revision (model, contract, threshold,
metrics, card); without it, from the workspace. See :mod:`churn.core.bundle`.
"""

import logging

from churn.core.bundle import Bundle, contract_at, load_bundle
from churn.core.contract import Contract
from churn.serving.settings import Settings

log = logging.getLogger("churn.serving")

Loaded = Bundle  # what the API says about the model it answers with


def load(settings: Settings) -> Loaded:
    """Read, verify, then unpickle the model version; a one-line error on any mismatch."""
    return load_bundle(settings.model_ref or None, params_file=settings.params_file)


def contract(settings: Settings) -> Contract:
    """The request schema's contract: the same version's as the model the lifespan will load."""
    return contract_at(settings.model_ref or None, params_file=settings.params_file)
