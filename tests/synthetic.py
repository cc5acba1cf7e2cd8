"""Generated test data: a second binary-classification dataset unlike Telco's."""

import numpy as np
import pandas as pd


def make_custom_dataset(n_rows: int = 600, seed: int = 7) -> pd.DataFrame:
    """A binary-classification table with a schema unlike Telco's.

    String ids, a text target ("left"/"stayed"), missing numbers and categories,
    and a signal the model can find: heavy users on the basic plan leave.
    """
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "plus", "pro"], size=n_rows, p=[0.5, 0.3, 0.2])
    region = rng.choice(["north", "south", "east", "west"], size=n_rows)
    usage = rng.gamma(2.0, 50.0, size=n_rows)
    calls = rng.poisson(1.5, size=n_rows)
    logit = -2.0 + 0.012 * usage * (plan == "basic") + 0.6 * calls - 0.8 * (plan == "pro")
    left = rng.random(n_rows) < 1.0 / (1.0 + np.exp(-logit))
    frame = pd.DataFrame(
        {
            "account": [f"A{i:05d}" for i in range(n_rows)],
            "plan": plan,
            "usage_minutes": usage.round(2),
            "region": region,
            "support_calls": calls,
            "status": np.where(left, "left", "stayed"),
        }
    )
    frame.loc[rng.choice(n_rows, 15, replace=False), "usage_minutes"] = np.nan
    frame.loc[rng.choice(n_rows, 10, replace=False), "region"] = np.nan
    return frame


CUSTOM_DATA = {
    "target": "status",
    "positive_label": "left",
    "id": "account",
    "features": "infer",
}


def make_subscriptions_dataset(n_rows: int = 1500, seed: int = 11) -> pd.DataFrame:
    """A third schema: a row-number column first (as R's write.csv leaves), no id of its own.

    A text target ("renewed"/"cancelled"), an integer count with gaps, a category with
    gaps, and two never-missing features (plan, monthly_fee). Cheap plans with few
    logins cancel.
    """
    rng = np.random.default_rng(seed)
    plan = rng.choice(["starter", "team", "enterprise"], size=n_rows, p=[0.5, 0.35, 0.15])
    fee = np.select([plan == "starter", plan == "team"], [9.0, 29.0], 99.0)
    fee = (fee * rng.uniform(0.9, 1.1, n_rows)).round(2)
    logins = rng.poisson(6.0, size=n_rows).astype(float)
    country = rng.choice(["DE", "FR", "NL", "ES"], size=n_rows)
    logit = 1.0 - 0.35 * logins + 1.2 * (plan == "starter") - 0.9 * (plan == "enterprise")
    cancelled = rng.random(n_rows) < 1.0 / (1.0 + np.exp(-logit))
    frame = pd.DataFrame(
        {
            "rownames": np.arange(1, n_rows + 1),
            "plan": plan,
            "monthly_fee": fee,
            "logins_per_week": logins,
            "country": country,
            "outcome": np.where(cancelled, "cancelled", "renewed"),
        }
    )
    frame.loc[rng.choice(n_rows, 60, replace=False), "logins_per_week"] = np.nan
    frame.loc[rng.choice(n_rows, 40, replace=False), "country"] = np.nan
    return frame
