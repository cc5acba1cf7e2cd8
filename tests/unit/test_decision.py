"""churn.core.decision on rows whose answers are known in closed form.

Perfect ranking, random (constant) ranking and a known prevalence: gains, lift,
profit and the best share are exact; ties follow the row order.
"""

import numpy as np
import pandas as pd
import pytest

from churn.core import decision
from churn.core.contract import Column, Contract
from churn.core.errors import ChurnError
from churn.core.params import DecisionParams

# Every share of GRID is a whole number of these 100 rows.
N = 100
PREVALENCE = 0.2
Y_SORTED = np.r_[np.ones(20), np.zeros(80)]  # churners first
PERFECT = np.linspace(0.99, 0.01, N)  # strictly decreasing: churners ranked first
# Constant scores keep the row order: churners every fifth row -> a random-like ranking.
Y_SPREAD = np.tile([1, 0, 0, 0, 0], 20)
CONSTANT = np.full(N, 0.5)


def policy(**changes) -> DecisionParams:
    base = {
        "top_share": 0.1,
        "value": 100.0,
        "value_column": None,
        "contact_cost": 10.0,
        "retention_rate": 0.5,
        "incentive_cost": 0.0,
        "threshold": "max_profit",
    }
    return DecisionParams(**{**base, **changes})


def test_order_is_best_score_first_and_ties_keep_row_order():
    assert decision.order(np.array([0.5, 0.9, 0.5, 0.9, 0.1])).tolist() == [1, 3, 0, 2, 4]


@pytest.mark.parametrize(
    ("n_rows", "share", "expected"),
    [
        (30, 0.1, 3),
        (10, 0.05, 1),
        (10, 0.0, 0),
        (10, 1.0, 10),
        (7, 0.5, 4),
        (3, 0.34, 2),
        (1409, 1e-13, 1),  # rounds to 0 customers: one still (lift was NaN, exit 0)
        (1409, 1e-12, 1),
        (0, 1e-13, 0),  # nobody to reach
        (10**9, 3.00000000006e-9, 3),  # 6e-11 of a customer is float noise, not a fourth
    ],
)
def test_top_count_rounds_up_but_not_float_noise(n_rows, share, expected):
    assert decision.top_count(n_rows, share) == expected


def test_top_mask_takes_the_top_share_with_ties_in_row_order():
    scores = np.array([0.2, 0.9, 0.2, 0.2, 0.1])
    assert decision.top_mask(scores, 0.4).tolist() == [True, True, False, False, False]
    assert decision.top_mask(scores, 1.0).all()


def test_perfect_ranking_gains_and_lift_are_exact():
    gains = decision.gains(Y_SORTED, PERFECT)
    # Reaches every churner at the prevalence, then stays at 1.
    expected = np.minimum(decision.GRID / PREVALENCE, 1.0)
    np.testing.assert_allclose(gains, expected, rtol=0, atol=1e-12)
    lift = decision.lift(Y_SORTED, PERFECT)
    np.testing.assert_allclose(lift, expected[1:] / decision.GRID[1:], rtol=0, atol=1e-12)
    assert decision.capture_at_k(Y_SORTED, PERFECT, 0.1) == 0.5
    assert decision.lift_at_k(Y_SORTED, PERFECT, 0.1) == pytest.approx(5.0, abs=1e-12)
    assert decision.lift_at_k(Y_SORTED, PERFECT, 0.2) == pytest.approx(5.0, abs=1e-12)
    assert decision.lift_at_k(Y_SORTED, PERFECT, 0.5) == pytest.approx(2.0, abs=1e-12)


def test_random_ranking_has_lift_one_at_every_fifth_share():
    shares = np.arange(1, 21) * 0.05
    np.testing.assert_allclose(decision.gains(Y_SPREAD, CONSTANT, shares), shares, atol=1e-12)
    np.testing.assert_allclose(decision.lift(Y_SPREAD, CONSTANT, shares), 1.0, atol=1e-12)


def test_gains_and_lift_start_and_end_where_they_must():
    gains = decision.gains(Y_SPREAD, CONSTANT)
    assert (gains[0], gains[-1], len(gains)) == (0.0, 1.0, 101)
    lift = decision.lift(Y_SPREAD, CONSTANT)
    assert (len(lift), lift[-1]) == (100, 1.0)
    # At 1 %: the first row (a churner) of 100 -> lift 1 / 0.2 = 5.
    assert lift[0] == pytest.approx(5.0)


def test_customer_value_is_a_constant_or_a_column_times_the_factor():
    frame = pd.DataFrame({"monthly": [10.0, np.nan, 2.5]})
    assert decision.customer_value(frame, policy(value=7.0)).tolist() == [7.0, 7.0, 7.0]
    by_column = decision.customer_value(frame, policy(value=12.0, value_column="monthly"))
    assert by_column.tolist() == [120.0, 0.0, 30.0]


def test_value_column_must_be_a_numeric_contract_column():
    contract = Contract(
        target="churn",
        positive_label="Yes",
        labels=None,
        id="id",
        id_in_data=True,
        columns={"monthly": Column(type="numeric"), "plan": Column(type="categorical")},
    )
    decision.check_value_column(policy(value_column="monthly"), contract)
    decision.check_value_column(policy(), contract)
    for bad in ("plan", "nope"):
        with pytest.raises(ChurnError) as err:
            decision.check_value_column(policy(value_column=bad), contract)
        assert str(err.value) == (
            f"params.yaml: decision.value_column: {bad!r} is not a numeric feature column"
        )


def test_row_profit_is_the_expected_value_of_one_contact():
    # churner: 0.5 * (100 - 20) - 10 = 30; stayer: -10.
    rows = decision.row_profit(
        np.array([1, 0, 1]),
        np.array([100.0, 200.0, 20.0]),
        policy(incentive_cost=20.0, retention_rate=0.5, contact_cost=10.0),
    )
    assert rows.tolist() == [30.0, -10.0, -10.0]


def test_perfect_ranking_profit_peaks_exactly_at_the_prevalence():
    rows = decision.row_profit(Y_SORTED, np.full(N, 100.0), policy())  # churner +40, stayer -10
    curve = decision.profit_curve(rows, PERFECT)
    assert curve.shape == (N + 1,)
    assert (curve[0], curve[20], curve[-1]) == (0.0, 800.0, 0.0)
    assert decision.best_count(curve) == 20
    per_1000 = decision.profit_at(curve)
    assert per_1000[20] == 8000.0  # share 0.2: 800 over 100 customers, per 1,000
    assert (per_1000[10], per_1000[100]) == (4000.0, 0.0)


def test_best_count_takes_the_fewest_contacts_among_equal_profits():
    assert decision.best_count(np.array([0.0, 5.0, 5.0, 2.0])) == 1
    assert decision.best_count(np.array([0.0, -1.0])) == 0


def test_choose_threshold_cuts_between_whole_score_groups():
    scores = np.array([0.8, 0.9, 0.3, 0.8])
    profits = np.array([-1.0, 5.0, -4.0, 3.0])
    # Groups by score: 0.9 -> +5, 0.8 -> +2, 0.3 -> -4: contact two groups, 7 over 4 rows.
    threshold, per_customer = decision.choose_threshold(scores, profits)
    assert (threshold, per_customer) == (pytest.approx(0.55), 1.75)


def test_choose_threshold_edges_contact_nobody_or_everybody():
    scores = np.array([0.9, 0.4])
    assert decision.choose_threshold(scores, np.array([-1.0, -2.0])) == (0.95, 0.0)
    assert decision.choose_threshold(scores, np.array([1.0, 2.0])) == (0.2, 1.5)


def test_choose_threshold_makes_the_cut_it_reports_at_the_ends_of_float_range():
    """Scores of exactly 1, and neighbouring floats whose midpoint rounds onto one of them."""
    ones = np.array([1.0, 1.0, 0.5])
    # Nobody would be best (every contact loses), but no threshold <= 1 leaves out a 1.0:
    # the best cut that can be made is the 1.0 group, and its profit is what is reported.
    assert decision.choose_threshold(ones, np.array([-1.0, -1.0, -1.0])) == (0.75, -2 / 3)
    lone = np.array([0.5, 1.0])  # one top score of 1, not first in row order
    assert decision.choose_threshold(lone, np.array([-1.0, -1.0])) == (0.75, -0.5)
    low = 0.25
    high = float(np.nextafter(low, 1.0))
    assert (low + high) / 2 == low  # the midpoint rounds onto the lower score
    threshold, per_customer = decision.choose_threshold(
        np.array([high, low]), np.array([1.0, -1.0])
    )
    assert (threshold, per_customer) == (high, 0.5)
    assert (np.array([high, low]) >= threshold).tolist() == [True, False]
    # Contacting nobody below a top score one float under 1: the threshold is 1 itself.
    top = float(np.nextafter(1.0, 0.0))
    threshold, _ = decision.choose_threshold(np.array([top, 0.2]), np.array([-1.0, -1.0]))
    assert threshold == 1.0 > top


def test_the_chosen_threshold_contacts_exactly_the_churners_of_a_perfect_ranking():
    rows = decision.row_profit(Y_SORTED, np.full(N, 100.0), policy())
    threshold, per_customer = decision.choose_threshold(PERFECT, rows)
    assert PERFECT[19] > threshold > PERFECT[20]
    assert ((PERFECT >= threshold) == Y_SORTED.astype(bool)).all()
    assert per_customer == 8.0


def test_policy_rows_contact_at_or_above_the_threshold():
    gain, top = decision.policy_rows(
        np.array([1, 0, 1, 0]),
        np.array([0.9, 0.5, 0.4, 0.1]),
        np.full(4, 100.0),
        0.4,
        policy(top_share=0.25),
    )
    assert gain.tolist() == [40_000.0, -10_000.0, 40_000.0, 0.0]
    assert top.tolist() == [True, False, False, False]


def test_curve_points_are_the_plotted_records():
    points = decision.curve_points(Y_SORTED, PERFECT, np.full(N, 100.0), policy())
    assert points["gains"][10] == {"contact_share": 0.1, "churners_reached": 0.5}
    assert points["lift"][0] == {"contact_share": 0.01, "lift": 5.0}
    assert points["profit"][20] == {"contact_share": 0.2, "profit_per_1000": 8000.0}
    assert [len(points[k]) for k in ("gains", "lift", "profit")] == [101, 100, 101]


def test_measured_threshold_is_the_recorded_one():
    measured = decision.Measured({"policy": "fixed", "threshold": 0.25}, np.zeros(1), {})
    assert measured.threshold == 0.25


def test_everything_is_bit_for_bit_reproducible():
    rng = np.random.default_rng(3)
    y, scores = (rng.random(500) < 0.3).astype(int), np.round(rng.random(500), 2)  # many ties
    rows = decision.row_profit(y, rng.random(500) * 100, policy())
    first = (decision.gains(y, scores), decision.choose_threshold(scores, rows))
    second = (decision.gains(y, scores), decision.choose_threshold(scores, rows))
    assert first[0].tobytes() == second[0].tobytes()
    assert first[1] == second[1]


def test_many_ties_keep_row_order_and_unsigned_scores_still_rank_high_first():
    """A non-stable sort reorders long runs of equal scores; negating uint wraps around."""
    scores = np.tile([0.5, 0.7], 100)
    expected = [*range(1, 200, 2), *range(0, 200, 2)]  # the 0.7s, then the 0.5s, each in order
    assert decision.order(scores).tolist() == expected
    assert decision.order(np.array([0, 3, 2], dtype=np.uint8)).tolist() == [1, 2, 0]


def test_gains_end_at_one_when_the_last_ranked_customer_churns():
    assert decision.gains(
        np.array([0, 1]), np.array([0.9, 0.1]), np.array([0.5, 1.0])
    ).tolist() == [
        0.0,
        1.0,
    ]


def test_a_tie_after_the_first_score_is_one_group():
    # Groups: 0.9 -> +1, the two 0.5 -> 5 - 10 = -5: contact the first group only.
    threshold, per_customer = decision.choose_threshold(
        np.array([0.9, 0.5, 0.5]), np.array([1.0, 5.0, -10.0])
    )
    assert (threshold, per_customer) == (pytest.approx(0.7), pytest.approx(1 / 3))


def test_the_top_mask_is_boolean():
    assert decision.top_mask(np.array([0.1, 0.2]), 0.5).dtype == bool


def test_customer_values_are_floats_and_a_missing_one_is_zero():
    frame = pd.DataFrame({"monthly": pd.array([10, None, 3], dtype="Int64")})
    values = decision.customer_value(frame, policy(value=2.5, value_column="monthly"))
    assert values.dtype == float
    assert values.tolist() == [25.0, 0.0, 7.5]
    assert decision.customer_value(frame, policy(value=2.0)).dtype == float


def test_the_best_count_a_threshold_can_contact_takes_whole_groups_of_ties():
    """Ten tied at 0.5 (three churners), ten at 0.1: the best is all ten or none, in any order.

    The plain curve's best count split the tie, and came out 6000 or 4500 per 1,000 as the
    churners sat first or last among the tied rows.
    """
    scores = np.r_[np.full(10, 0.5), np.full(10, 0.1)]
    profits = np.r_[np.full(3, 40.0), np.full(7, -10.0), np.full(10, -10.0)]
    for shuffled in (profits, np.r_[profits[3:10], profits[:3], profits[10:]]):
        curve = decision.profit_curve(shuffled, scores)
        assert decision.best_whole_groups(curve, scores) == 10
        assert curve[10] / 20 * decision.PER == 2500.0
    assert decision.best_count(decision.profit_curve(profits, scores)) == 3  # inside the tie
    # No group worth contacting: none; distinct scores: any count.
    assert decision.best_whole_groups(np.array([0.0, -1.0, -2.0]), np.array([0.9, 0.8])) == 0
    assert decision.best_whole_groups(np.array([0.0, 5.0, 3.0]), np.array([0.9, 0.8])) == 1
    assert decision.best_whole_groups(np.array([0.0, 5.0, 9.0]), np.array([0.8, 0.8])) == 2
    # A tie after a distinct top score: the best stop inside it (2) is no whole group.
    tied_after = np.array([0.9, 0.5, 0.5])
    curve = decision.profit_curve(np.array([-1.0, 5.0, -1.0]), tied_after)
    assert decision.best_whole_groups(curve, tied_after) == 3


def test_with_a_top_score_of_one_the_ceiling_never_contacts_nobody():
    """No threshold up to 1 contacts nobody when a score is 1: "best share 0.0%" was no cut.

    The same rule as choose_threshold's: the best count it can reach is the top group.
    """
    scores = np.array([1.0, 1.0, 0.4])
    curve = decision.profit_curve(np.array([-5.0, -5.0, -1.0]), scores)
    assert decision.best_count(curve) == 0  # the plain best: contact nobody
    assert decision.best_whole_groups(curve, scores) == 2
    threshold, _ = decision.choose_threshold(scores, np.array([-5.0, -5.0, -1.0]))
    assert int(np.sum(scores >= threshold)) == 2  # the same cut, from the same rule
    alone = np.array([1.0, 0.4, 0.3])  # one score of 1, the rest below it
    curve = decision.profit_curve(np.array([-5.0, -1.0, -1.0]), alone)
    assert decision.best_whole_groups(curve, alone) == 1
    assert decision.best_whole_groups(np.array([0.0, -1.0]), np.array([1.0])) == 1
    below = np.array([0.99, 0.99, 0.4])  # under 1: contacting nobody is a cut
    assert decision.best_whole_groups(decision.profit_curve(np.full(3, -1.0), below), below) == 0


@pytest.mark.filterwarnings("error")  # refused in one line: no overflow warning on the way
def test_a_customer_worth_more_than_money_allows_is_refused():
    """1e308 times 12 was infinite, 0 times that NaN: the threshold chosen on NaN profits."""
    frame = pd.DataFrame({"monthly": [10.0, 1e308, 5.0, np.nan]})
    with pytest.raises(ChurnError) as err:
        decision.customer_value(frame, policy(value=12.0, value_column="monthly"))
    assert str(err.value) == (
        "params.yaml: decision.value_column: 'monthly' value 1e+308 times decision.value 12 is "
        "beyond 1e+12, the most a customer may be worth (as decision.value); scale one of them down"
    )
    edge = pd.DataFrame({"monthly": [1e11, -1e11, np.nan]})  # 1e12 exactly: allowed
    values = decision.customer_value(edge, policy(value=10.0, value_column="monthly"))
    assert values.tolist() == [1e12, -1e12, 0.0]
    over = pd.DataFrame({"monthly": [1.0, -1.000001e11]})
    with pytest.raises(ChurnError, match=r"'monthly' value -100000100000\.0 times"):
        decision.customer_value(over, policy(value=10.0, value_column="monthly"))
    infinite = pd.DataFrame({"monthly": [np.inf]})
    with pytest.raises(ChurnError, match=r"'monthly' value inf times decision.value 0 is"):
        decision.customer_value(infinite, policy(value=0.0, value_column="monthly"))
