"""Decisions from scores: gains, lift and the expected profit of a retention campaign.

Pure numpy, defined once for train (choosing the threshold), evaluate (the test
curves and metrics), the model card and the PR report.

The campaign model (README, "Decision model"): contacting a customer costs
``contact_cost``. A contacted customer who would have left (label 1) is kept with
probability ``retention_rate``; keeping them gains their value ``v`` and pays the
``incentive_cost`` of the accepted offer. Customers who would have stayed do not
take the offer. So one contacted customer's expected profit is

    y * retention_rate * (v - incentive_cost) - contact_cost

and a campaign's is the sum over the customers it contacts.

Ranking: customers are contacted best score first; equal scores keep their row
order (a stable sort), so every curve is the same on every run. A probability
threshold contacts whole groups of equal scores: ``probability >= threshold``.
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churn.core.contract import Contract
from churn.core.errors import ChurnError
from churn.core.params import MAX_MONEY, DecisionParams

PER = 1000  # profits are reported per this many customers
GRID = np.round(np.linspace(0.0, 1.0, 101), 2)  # contact shares the plotted curves are read at


def order(scores: np.ndarray) -> np.ndarray:
    """Row indices best score first; ties keep their row order."""
    return np.argsort(-np.asarray(scores, dtype=float), kind="stable")


def top_count(n_rows: int, share: float) -> int:
    """How many customers a contact share reaches: ``ceil(share * n)``, at least one for share > 0.

    The product is rounded to 9 decimals first, so 0.1 * 30 is 3, not 4; a product
    that rounds to 0 (a share of 1e-13) still reaches one customer.
    """
    reached = math.ceil(round(share * n_rows, 9))
    return min(n_rows, reached if reached or share <= 0 else 1)


def top_mask(scores: np.ndarray, share: float) -> np.ndarray:
    """True for the customers in the top ``share`` by score (ties by row order)."""
    mask = np.zeros(len(scores), dtype=bool)
    mask[order(scores)[: top_count(len(scores), share)]] = True
    return mask


def gains(y: np.ndarray, scores: np.ndarray, shares: np.ndarray = GRID) -> np.ndarray:
    """Share of all churners in the top ``share`` of customers, per share (cumulative gains)."""
    ranked = np.r_[0, np.cumsum(np.asarray(y)[order(scores)])]
    counts = [top_count(len(scores), s) for s in shares]
    return ranked[counts] / ranked[-1]


def lift(y: np.ndarray, scores: np.ndarray, shares: np.ndarray = GRID[1:]) -> np.ndarray:
    """Churn rate among the top ``share`` over the overall churn rate, for each share > 0.

    That is the share of churners reached over the share of customers contacted.
    """
    counts = np.array([top_count(len(scores), s) for s in shares])
    return gains(y, scores, shares) * len(scores) / counts


def capture_at_k(y: np.ndarray, scores: np.ndarray, share: float) -> float:
    """Share of the churners reached by contacting the top ``share``."""
    return float(gains(y, scores, np.array([share]))[0])


def lift_at_k(y: np.ndarray, scores: np.ndarray, share: float) -> float:
    """How many times the overall churn rate the top ``share`` holds."""
    return float(lift(y, scores, np.array([share]))[0])


def check_value_column(params: DecisionParams, contract: Contract) -> None:
    """``value_column`` must be a numeric feature of the contract (also an inferred one)."""
    column = params.value_column
    if column is not None and column not in contract.numeric:
        raise ChurnError(
            f"params.yaml: decision.value_column: {column!r} is not a numeric feature column"
        )


def customer_value(frame: pd.DataFrame, params: DecisionParams) -> np.ndarray:
    """The value of keeping each customer: ``value``, or ``value`` times ``value_column``.

    A missing value in the column counts as 0 (the campaign gains nothing it can name).
    Each value is bounded as ``decision.value`` itself is (``MAX_MONEY``): a column value
    of 1e308 times 12 was infinite, 0 times that NaN, and the threshold was chosen on a
    curve of NaN profits.
    """
    if params.value_column is None:
        return np.full(len(frame), params.value)
    column = frame[params.value_column].astype(float).to_numpy()
    with np.errstate(over="ignore", invalid="ignore"):  # what overflows is refused next
        values = np.where(np.isnan(column), 0.0, column) * params.value
    beyond = ~(np.abs(values) <= MAX_MONEY)  # also NaN, of an infinite column times 0
    if beyond.any():
        worst = float(column[np.flatnonzero(beyond)[0]])
        raise ChurnError(
            f"params.yaml: decision.value_column: {params.value_column!r} value {worst!r} "
            f"times decision.value {params.value:g} is beyond {MAX_MONEY:g}, the most a "
            "customer may be worth (as decision.value); scale one of them down"
        )
    return values


def row_profit(y: np.ndarray, value: np.ndarray, params: DecisionParams) -> np.ndarray:
    """Each customer's expected profit if contacted, knowing whether they would leave."""
    keep = params.retention_rate * (np.asarray(value) - params.incentive_cost)
    return np.asarray(y) * keep - params.contact_cost


def profit_curve(profits: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Campaign profit contacting the top 0, 1, ..., n customers (length n + 1)."""
    return np.r_[0.0, np.cumsum(np.asarray(profits)[order(scores)])]


def best_count(curve: np.ndarray) -> int:
    """The number of contacts with the highest profit; the fewest when several tie."""
    return int(np.argmax(curve))


def best_whole_groups(curve: np.ndarray, scores: np.ndarray) -> int:
    """:func:`best_count` among the counts a threshold can contact: whole groups of equal scores.

    A count inside a group of tied scores is no campaign anyone can run, and which of the
    tied rows it took was only their row order. With a top score of exactly 1 no
    threshold contacts nobody (``probability >= threshold``, thresholds up to 1), so, as
    in :func:`choose_threshold`, that count is not offered: it was called the ceiling.
    """
    ranked = np.asarray(scores)[order(scores)]
    cuts = np.r_[0, np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True]) + 1]
    if len(ranked) and ranked[0] >= 1.0:
        cuts = cuts[1:]
    return int(cuts[best_count(np.asarray(curve)[cuts])])


def profit_at(curve: np.ndarray, shares: np.ndarray = GRID) -> np.ndarray:
    """Profit per :data:`PER` customers at each contact share, read off ``curve``."""
    n_rows = len(curve) - 1
    return curve[[top_count(n_rows, s) for s in shares]] / n_rows * PER


def choose_threshold(scores: np.ndarray, profits: np.ndarray) -> tuple[float, float]:
    """The probability threshold with the highest realized profit, and that profit per customer.

    Only whole groups of equal scores can be contacted. The threshold sits halfway
    between the lowest contacted score and the next lower one (0 below the lowest;
    contacting nobody puts it halfway between the highest score and 1), so scores
    close to the cut fall on the same side as on these rows. Ties between cuts go
    to the fewer contacts. Every cut returned is one ``probability >= threshold``
    makes: when the midpoint of two neighbouring floats rounds down onto the lower
    score, the threshold is the contacted score itself; and with a top score of
    exactly 1 no probability threshold contacts nobody, so that cut is not offered.
    """
    ranked = order(scores)
    s, p = np.asarray(scores)[ranked], np.asarray(profits)[ranked]
    ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])  # last row of each score group
    cumulative = np.r_[0.0, np.cumsum(p)[ends]]  # contact 0, 1, ... groups
    first = 1 if s[0] >= 1.0 else 0
    groups = first + best_count(cumulative[first:])
    distinct = np.r_[1.0, s[ends], 0.0]  # above the first group, each group, below the last
    lowest_in, highest_out = distinct[groups], distinct[groups + 1]
    threshold = (lowest_in + highest_out) / 2
    if threshold <= highest_out:
        threshold = lowest_in
    return float(threshold), float(cumulative[groups] / len(s))


def policy_rows(
    y: np.ndarray, proba: np.ndarray, value: np.ndarray, threshold: float, params: DecisionParams
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: its part of the profit per :data:`PER` customers at ``threshold``; the top share.

    The two vectors :func:`churn.core.stats.decision_scores` bootstraps.
    """
    contacted = np.asarray(proba) >= threshold
    gain = PER * row_profit(y, value, params) * contacted
    return gain, top_mask(proba, params.top_share)


def curve_points(
    y: np.ndarray, proba: np.ndarray, value: np.ndarray, params: DecisionParams
) -> dict[str, list[dict[str, float]]]:
    """The gains, lift and profit curves at the contact shares of :data:`GRID`, for plotting."""
    curves = {
        "churners_reached": np.column_stack((GRID, gains(y, proba))),
        "lift": np.column_stack((GRID[1:], lift(y, proba))),
        "profit_per_1000": np.column_stack(
            (GRID, profit_at(profit_curve(row_profit(y, value, params), proba)))
        ),
    }
    return {
        name: [{"contact_share": float(s), field: float(v)} for s, v in curves[field]]
        for name, field in (
            ("gains", "churners_reached"),
            ("lift", "lift"),
            ("profit", "profit_per_1000"),
        )
    }


@dataclass(frozen=True)
class Measured:
    """A decision policy measured on the test split, for the metrics file and the card."""

    policy: dict  # as train recorded it: threshold, how it was chosen
    value: np.ndarray  # each test customer's value if kept
    metrics: dict[str, float]

    @property
    def threshold(self) -> float:
        """The probability at or above which a customer is contacted."""
        return float(self.policy["threshold"])
