"""Drift statistics (churn.ops.drift) and monitoring, on small batches and on the real data."""

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from scipy import stats

from churn.core import io
from churn.core.contract import Column, Contract, read_contract
from churn.core.errors import ChurnError
from churn.core.params import MonitorParams
from churn.ops import drift
from churn.ops import monitor as mon
from churn.ops.drift import (
    CategoricalSummary,
    Check,
    NumericSummary,
    compare_categorical,
    compare_numeric,
    judge,
    ks_distance,
    pooled_shares,
    psi,
    shares,
)
from churn.ops.monitor import refused_rows
from churn.serving.app import create_app
from churn.serving.settings import Settings
from conftest import REPO, spy_reads


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift():
    ref = np.array([0.25, 0.25, 0.25, 0.25])
    assert psi(ref, ref) == 0.0
    small, big = (
        psi(ref, np.array([0.3, 0.2, 0.25, 0.25])),
        psi(ref, np.array([0.7, 0.1, 0.1, 0.1])),
    )
    assert 0 < small < 0.1 < big
    assert shares(np.array([0.5, 1.5, 2.5, 9.0]), np.array([1.0, 2.0])).tolist() == [
        0.25,
        0.25,
        0.5,
    ]


PARAMS = MonitorParams(
    bins=10,
    psi=0.2,
    ks_statistic=0.1,
    alpha=0.01,
    unseen_share=0.01,
    out_of_range_share=0.05,
    missing_change=0.05,
    min_rows=50,
)


def test_psi_of_a_side_without_values_is_zero_not_drift():
    """A column missing in every batch row: clipped zero shares gave ~13."""
    ref = np.array([0.25, 0.25, 0.25, 0.25])
    assert psi(ref, np.zeros(4)) == 0.0
    assert psi(np.zeros(4), ref) == 0.0
    assert psi(ref, np.array([1.0, 0.0, 0.0, 0.0])) > 1  # one bin holding all: still drift


@pytest.mark.parametrize("cell", ["0x7", "0X1F", "1_0", "\u0667"])
def test_a_number_the_contract_refuses_is_not_read_as_one(tmp_path, cell, tiny_model):
    """The pyarrow cast read "0x7" as 7; prepare, churn score and the service refuse it."""
    frame = tiny_batch(100)
    frame["n"] = frame["n"].round().astype("Int64").astype(str)  # whole: an int64 cast
    frame.loc[3, "n"] = cell
    frame.to_csv(tmp_path / "batch.csv", index=False)
    batch = mon.Batch(tiny_batch(100), np.linspace(0, 1, 10), TINY, PARAMS)
    with pytest.raises(ChurnError, match=r"batch.csv: 1 data contract check\(s\) failed"):
        mon.read(batch, mon.open_batch(tmp_path / "batch.csv", TINY), None, 1000)
    frame.loc[3, "n"] = " 7 "  # blanks around digits are a number everywhere
    frame.to_csv(tmp_path / "batch.csv", index=False)
    batch = mon.Batch(tiny_batch(100), np.linspace(0, 1, 10), TINY, PARAMS)
    mon.read(batch, mon.open_batch(tmp_path / "batch.csv", TINY), tiny_model, 1000)
    assert batch.rows == 100


def test_numbers_outside_the_observed_training_range_are_counted():
    ref = pd.Series(np.linspace(0, 10, 200))
    new = pd.Series([*np.linspace(1, 9, 90), -1.0, 11.0, 12.0, *[np.nan] * 7])
    column = Column("numeric", observed_min=0.0, observed_max=10.0)
    check = compare_numeric("x", ref, new, PARAMS, column)
    assert check.out_of_range_share == pytest.approx(3 / 93)  # of the present values
    assert not any("outside" in r for r in judge(check, PARAMS).reasons)  # 3.2 % < 5 %
    # The contract's range, not the reference's, decides; an old contract has none.
    narrow = Column("numeric", observed_min=2.0, observed_max=8.0)
    assert compare_numeric("x", ref, new, PARAMS, narrow).out_of_range_share == pytest.approx(
        (3 + 12 + 12) / 93  # 12 of the 90 inner values lie below 2, and 12 above 8
    )
    assert compare_numeric("x", ref, new, PARAMS).out_of_range_share == pytest.approx(3 / 93)


def test_out_of_range_at_the_threshold_is_drift():
    ref = pd.Series(np.linspace(0, 10, 200))
    new = pd.Series([*np.linspace(1, 9, 190), *[20.0] * 10])  # 5 % outside
    check = judge(compare_numeric("x", ref, new, PARAMS), PARAMS)
    p_value = stats.binom.sf(9, 200, 2 / 201)  # 10 or more of 200 at the chance of an extreme
    assert check.out_of_range_p_value == pytest.approx(p_value)
    assert check.reasons[-1] == f"outside the training range 5.0% >= 5.0% (p {p_value:.2g} < 0.01)"


def test_a_rule_past_its_threshold_by_chance_alone_is_no_drift():
    """Over 50 rows one empty decile read PSI 1.2, and 80 % of test-split samples "drifted".

    Each share-like rule also needs its count test: chi-square on PSI's bins, binomial
    for the range (a new extreme has chance 2/(m+1)) and for the missing rate.
    """
    ref = pd.Series(np.linspace(0, 10, 200))
    one = pd.Series([*np.linspace(1, 9, 19), 20.0])  # 1 of 20 outside: 5 %, by chance 18 %
    check = judge(compare_numeric("x", ref, one, PARAMS), PARAMS)
    assert check.out_of_range_share == pytest.approx(0.05)
    assert check.out_of_range_p_value == pytest.approx(1 - (1 - 2 / 201) ** 20)
    assert not check.drifted
    # An empty decile among 50 values drawn evenly: PSI past 0.2, chi-square p far from 0.01.
    even = pd.Series(np.r_[np.linspace(0.1, 0.9, 0), np.linspace(1.1, 9.9, 50)])
    check = judge(compare_numeric("x", ref, even, PARAMS), PARAMS)
    counts = drift.bin_counts(ref.to_numpy(), drift.numeric_bins(ref, 10))
    new_counts = drift.bin_counts(even.to_numpy(), drift.numeric_bins(ref, 10))
    table = np.vstack([counts, new_counts])
    assert check.psi >= 0.2
    assert check.psi_p_value == pytest.approx(stats.chi2_contingency(table).pvalue)
    assert check.psi_p_value > 0.01
    assert not check.drifted
    # The same shares over 2,000 rows: real.
    many = pd.Series(np.tile(even.to_numpy(), 40))
    check = judge(compare_numeric("x", ref, many, PARAMS), PARAMS)
    assert check.reasons[0].startswith(f"PSI {check.psi:.3f} >= 0.2 (p ")
    # Missing rate: 3 of 50 where the reference has none is real; 0 of 50 at 8 % is chance.
    gaps = pd.Series([*np.linspace(1, 9, 47), None, None, None])
    check = judge(compare_numeric("x", ref, gaps, PARAMS), PARAMS)
    assert check.missing_p_value == 0.0
    assert check.reasons == ["missing rate +6.0% (limit ±5.0%, p 0 < 0.01)"]
    holey = pd.Series([*np.linspace(0, 10, 92), *[None] * 8])
    check = judge(compare_numeric("x", holey, pd.Series(np.linspace(1, 9, 50)), PARAMS), PARAMS)
    assert check.missing_change == pytest.approx(-0.08)
    assert check.missing_p_value == pytest.approx(stats.binomtest(0, 50, 0.08).pvalue)
    assert not check.drifted


def test_the_gating_p_values_of_all_checks_are_adjusted_together():
    """Benjamini-Hochberg over every gate; a raw-category chi-square and None gate nothing.

    By hand: sorted 0.005, 0.01, 0.03, 0.04 of m = 4 tests; p(k) * m / k, then the
    running minimum from the top: 0.02, 0.02, 0.04, 0.04.
    """
    numeric = Check("x", "numeric", 0.5, "ks", 0.3, 0.04, 0.1, 0.0, 0.2, 0, 0.01, 0.03, 0.005)
    categorical = Check("k", "categorical", 0.0, "chi-square", 9.0, 1e-9, 0.0)
    drift.adjust([numeric, categorical])
    assert numeric.adjusted_p_values == pytest.approx(
        {
            "psi_p_value": 0.02,
            "p_value": 0.04,
            "out_of_range_p_value": 0.04,
            "missing_p_value": 0.02,
        }
    )
    assert categorical.adjusted_p_values == {}
    assert drift.gating(categorical) == {}
    assert drift.adjust([]) == []


def test_a_rule_reads_its_adjusted_p_value_and_says_so():
    """A KS p of 0.004 fires alone; among 20 gates with nothing else unlikely it is 0.08."""

    def check(name, p_value):
        return Check(name, "numeric", 0.0, "ks", 0.3, p_value, 0.0, 0.0, 0.0, 0, 1.0, 1.0, 1.0)

    alone = judge(check("x", 0.004), PARAMS)
    assert alone.reasons == ["KS 0.300 >= 0.1 (p 0.004 < 0.01)"]
    family = drift.judge_all([check("x", 0.004), *(check(f"c{i}", 1.0) for i in range(4))], PARAMS)
    assert family[0].adjusted_p_values["p_value"] == pytest.approx(0.004 * 20)
    assert not family[0].drifted
    assert family[0].reasons == []
    strong = drift.judge_all([check("x", 1e-6), *(check(f"c{i}", 1.0) for i in range(4))], PARAMS)
    assert strong[0].reasons == ["KS 0.300 >= 0.1 (adjusted p 2e-05 < 0.01)"]
    assert [c.drifted for c in strong] == [True, False, False, False, False]


def test_samples_of_the_test_split_are_not_flagged_once_adjusted_together(trained):
    """Each of 19 features tested at alpha alone flagged 5 of 40 samples of 50 rows."""
    contract = read_contract(trained / "data/prepared/contract.json")
    reference = io.read_parquet(trained / "data/prepared/train.parquet")
    test = io.read_parquet(trained / "data/prepared/test.parquet")
    alone = together = 0
    for seed in range(40):
        batch = test.sample(50, random_state=seed)
        checks = mon.compare(reference, batch, contract, PARAMS)
        together += any(c.drifted for c in checks)
        for c in checks:
            c.adjusted_p_values.clear()
            c.reasons.clear()
        alone += any(judge(c, PARAMS).drifted for c in checks)
    assert (alone, together) == (5, 0)


def test_a_share_just_under_its_threshold_does_not_read_as_reaching_it(tmp_path, tiny_model):
    """0.996 % unseen beside a 1 % limit read "1.0%", and no reason said why it passed."""
    ref = pd.Series(["a"] * 50 + ["b"] * 50)
    new = pd.Series(["a"] * 500 + ["b"] * 500 + ["c"])  # 1 of 1,001 rows unseen: 0.0999 %
    column = Column("categorical", categories=("a", "b"))
    check = judge(compare_categorical("x", ref, new, column), PARAMS)
    assert check.unseen_share == pytest.approx(1 / 1001)
    assert not check.drifted
    near = dataclasses.replace(check, unseen_share=0.00996)
    row = mon.summary_markdown([near], None, 1001, "", PARAMS).splitlines()[-1]
    assert row.split(" | ")[7] == "0.996%"
    strict = MonitorParams(**{**PARAMS.model_dump(), "unseen_share": 0.001})
    assert not judge(compare_categorical("x", ref, new, column), strict).drifted
    row = mon.summary_markdown([check], None, 1001, "", strict).splitlines()[-1]
    assert row.split(" | ")[7] == "0.0999%"  # not "0.1%", the limit it is under
    chi = dataclasses.replace(check, statistic=0.09996, p_value=0.00996)  # no KS limit here
    assert mon.check_cells(chi, PARAMS).split(" | ")[2:4] == ["0.100", "0.01"]
    ks = dataclasses.replace(chi, test="ks")
    assert mon.check_cells(ks, PARAMS).split(" | ")[2:4] == ["0.09996", "0.00996"]
    loose = MonitorParams(**{**PARAMS.model_dump(), "unseen_share": 0.00099})
    flagged = judge(compare_categorical("x", ref, new, column), loose)
    assert flagged.reasons == ["unseen categories 0.1% >= 0.099%"]


def test_unseen_means_outside_the_contracts_categories():
    ref = pd.Series(["a"] * 50 + ["b"] * 50)
    new = pd.Series(["a"] * 45 + ["c"] * 5 + [None] * 10)
    declared = Column("categorical", categories=("a", "b", "c"))
    assert compare_categorical("k", ref, new, declared).unseen_share == 0.0  # c is allowed
    assert compare_categorical("k", ref, new).unseen_share == pytest.approx(0.1)  # vs training


def test_categories_rare_on_both_sides_share_one_psi_bin():
    """Shares: [a, b, rare...] -> [a, b, the rare ones together]."""
    ref = np.array([500, 300, 5, 5, 0, 190])
    new = np.array([450, 300, 0, 8, 2, 240])
    pooled_ref, pooled_new = pooled_shares(ref, new)
    assert pooled_ref.tolist() == pytest.approx([0.5, 0.3, 0.19, 0.01])
    assert pooled_new.tolist() == pytest.approx([0.45, 0.3, 0.24, 0.01])
    edge = np.array([980, 10, 10])  # 1 % exactly is common
    assert pooled_shares(edge, edge)[0].tolist() == pytest.approx([0.98, 0.01, 0.01])
    common = np.array([60, 40])
    assert [s.tolist() for s in pooled_shares(common, common)] == [[0.6, 0.4], [0.6, 0.4]]


def test_a_high_cardinality_column_of_the_same_distribution_is_not_drift():
    """2,000 categories of a row or two: PSI summed noise per category, 0.41 on own rows."""
    rng = np.random.default_rng(0)
    levels = [f"c{i}" for i in range(2000)]
    ref = pd.Series(rng.choice(levels, 2400))
    column = Column("categorical", categories=tuple(levels))  # the file's, as inferred
    same = compare_categorical("city", ref, pd.Series(rng.choice(levels, 3000)), column)
    assert same.psi == 0.0
    assert judge(same, PARAMS).drifted is False
    # A new category that takes half the batch is common there: its own bin, drift.
    half = np.where(rng.random(3000) < 0.5, "new", rng.choice(levels, 3000))
    assert compare_categorical("city", ref, pd.Series(half), column).psi > 1


def test_refused_rows_are_those_with_a_category_outside_the_contract():
    contract = Contract(
        "y",
        1,
        None,
        "row_id",
        False,
        {
            "n": Column("numeric"),
            "k": Column("categorical", categories=("a", "b")),
            "free": Column("categorical"),  # no list: anything goes
        },
    )
    batch = pd.DataFrame(
        {"n": [1.0, 2.0, 3.0, 4.0], "k": ["a", "z", None, "b"], "free": ["q", "r", "s", "t"]}
    )
    assert refused_rows(batch, contract).tolist() == [False, True, False, False]
    # Read as categories, the same verdicts: each category judged once, missing passes.
    batch["k"] = batch["k"].astype("category")
    assert refused_rows(batch, contract).tolist() == [False, True, False, False]


def test_ks_distance_from_counts_at_the_reference_values():
    # Reference 1, 2, 2, 3; batch 2, 2.5, 4: the widest gap is at 2 (3/4 against 1/3).
    assert ks_distance(np.array([1, 3, 4]), 4, np.array([0, 1, 2]), np.array([0, 0, 2]), 3) == (
        0.75 - 1 / 3
    )
    # Reference 1, 2, 3; batch 0.5, 1.5, 1.6: the batch's ECDF reaches 1 just below 2.
    assert ks_distance(np.array([1, 2, 3]), 3, np.array([1, 3, 3]), np.array([1, 3, 3]), 3) == (
        1 - 1 / 3
    )
    for ref, new in (([1, 2, 2, 3], [2, 2.5, 4]), ([1, 2, 3], [0.5, 1.5, 1.6])):
        summary = NumericSummary(pd.Series(ref, dtype=float), 4, -np.inf, np.inf)
        summary.kept = None  # the counts, not the values
        summary.add(np.array(new))
        # (scipy's exact mode rounds the distance to a multiple of 1 / lcm(n1, n2))
        assert summary.ks()[0] == stats.ks_2samp(ref, new, method="asymp").statistic


def sample(seed: int, n: int, shift: float = 0.0) -> np.ndarray:
    """Rounded values (many ties with the reference), some missing, some outside it."""
    rng = np.random.default_rng(seed)
    values = np.round(rng.gamma(2.0, 20.0, n) + shift, 1)
    values[rng.random(n) < 0.05] = np.nan
    return values


@pytest.mark.parametrize("n", [300, 12_000])
@pytest.mark.parametrize("shift", [0.0, 3.0, -50.0])
def test_ks_is_scipys_on_the_whole_batch(n, shift):
    ref = pd.Series(sample(0, 2_000))
    new = sample(1, n, shift)
    summary = NumericSummary(ref, 10, 0.0, 100.0)
    for start in range(0, n, 1_000):
        summary.add(new[start : start + 1_000])
    assert (summary.kept is None) == (n > drift.EXACT_KS_ROWS)
    expected = stats.ks_2samp(ref.dropna(), new[~np.isnan(new)])
    assert summary.ks() == (expected.statistic, expected.pvalue)  # exact, not approximate


def test_ks_past_the_exact_range_is_scipys_asymptotic_formula(monkeypatch):
    monkeypatch.setattr(drift, "EXACT_KS_ROWS", 50)  # the counts path on a small batch
    ref, new = pd.Series(sample(2, 400)), sample(3, 300, 2.0)
    summary = NumericSummary(ref, 10, 0.0, 100.0)
    summary.add(new)
    assert summary.kept is None
    expected = stats.ks_2samp(ref.dropna(), new[~np.isnan(new)], method="asymp")
    assert summary.ks() == (expected.statistic, expected.pvalue)


def summarize(values, chunk: int, make):
    summary = make()
    for start in range(0, len(values), chunk):
        summary.add(values[start : start + chunk])
    return summary


def test_a_value_many_quantiles_fall_on_has_a_bin_of_its_own():
    """A 0/1 column going from 5 % to 19 % ones: every value from 0 up shared one bin, PSI 0."""
    ref = pd.Series([0.0] * 950 + [1.0] * 50)
    new = pd.Series([0.0] * 810 + [1.0] * 190)
    # By hand: bins below 0, at 0, above 0; shares 0.95/0.05 against 0.81/0.19.
    expected = (0.81 - 0.95) * np.log(0.81 / 0.95) + (0.19 - 0.05) * np.log(0.19 / 0.05)
    assert compare_numeric("x", ref, new, PARAMS).psi == pytest.approx(expected, rel=1e-9)
    assert compare_numeric("x", ref, ref, PARAMS).psi == 0.0
    edges = drift.numeric_bins(ref, 10)
    assert list(edges) == [0.0, np.nextafter(0.0, 1.0)]  # 0 alone, then everything above
    # Distinct deciles are left as they were.
    spread = np.arange(11.0)
    deciles = np.quantile(spread, np.linspace(0, 1, 11)[1:-1])
    assert list(drift.numeric_bins(pd.Series(spread), 10)) == list(deciles)


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_chunked_counts_equal_the_whole_batch(chunk, monkeypatch):
    monkeypatch.setattr(drift, "EXACT_KS_ROWS", 100)  # both KS paths within 500 rows
    ref = pd.Series(sample(4, 1_000))
    column = Column("numeric", observed_min=5.0, observed_max=90.0)
    new = sample(5, 500, 1.5)
    whole = compare_numeric("x", ref, pd.Series(new), PARAMS, column)
    chunked = summarize(new, chunk, lambda: drift.numeric_summary(ref, PARAMS, column))
    assert dataclasses.asdict(chunked.check("x")) == dataclasses.asdict(whole)
    assert chunked.bins.sum() + chunked.missing == 500
    assert chunked.outside == np.count_nonzero((new < 5.0) | (new > 90.0))
    assert (chunked.minimum, chunked.maximum) == (np.nanmin(new), np.nanmax(new))
    words = pd.Series(["a", "b", None, "c", "a", "d", "b"] * 70)
    one = compare_categorical("k", pd.Series(["a", "b", "c"] * 50), words)
    counted = summarize(words, chunk, CategoricalSummary)
    assert counted.counts == {"a": 140, "b": 140, "c": 70, "d": 70}
    assert (counted.rows, counted.missing) == (490, 70)
    check = drift.categorical_check("k", pd.Series(["a", "b", "c"] * 50), counted)
    assert dataclasses.asdict(check) == dataclasses.asdict(one)
    assert check.unseen_share == 70 / 420


TINY = Contract(
    "y",
    1,
    None,
    "row_id",
    False,
    {
        "n": Column("numeric", min=0.0, observed_min=0.0, observed_max=50.0),
        "k": Column("categorical", categories=("a", "b")),
    },
)


def tiny_batch(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(6)
    frame = pd.DataFrame(
        {
            "n": np.round(rng.uniform(0, 60, rows), 1),
            "k": rng.choice(["a", "b", "z"], rows),
            "extra": np.arange(rows),
        }
    )
    frame.loc[frame.sample(5, random_state=0).index, "n"] = np.nan
    return frame


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_a_batch_file_is_read_in_chunks_of_at_most_chunk_rows(tmp_path, suffix):
    frame = tiny_batch(25).assign(churn_probability=np.arange(25) / 32)  # short in JSON
    path = tmp_path / f"batch{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_json(path, orient="records", lines=True)
    source = mon.open_batch(path, TINY)
    assert source.logged_scores == (suffix == ".jsonl")
    parts = list(mon.chunks(source, TINY, 7))
    assert [len(f) for f, _ in parts] == [7, 7, 7, 4]
    assert [f.index[0] for f, _ in parts] == [0, 7, 14, 21]  # row positions, for messages
    whole = pd.concat([f for f, _ in parts])
    assert whole["n"].equals(frame["n"])
    assert whole["k"].astype(object).tolist() == frame["k"].tolist()
    logged = [s for _, s in parts]
    if suffix == ".jsonl":
        assert np.concatenate(logged).tolist() == frame["churn_probability"].tolist()
    else:
        assert logged == [None] * 4


def test_read_ahead_keeps_the_order_holds_two_items_at_most_and_passes_errors_on():
    made = []

    def items(fail_at: int):
        for i in range(5):
            if i == fail_at:
                raise ValueError(f"item {i}")
            made.append(i)
            yield i

    seen = []
    for item in mon.read_ahead(items(fail_at=99)):
        assert len(made) <= item + 2  # the one in hand and at most the next
        seen.append(item)
    assert seen == [0, 1, 2, 3, 4]
    made.clear()
    ahead = mon.read_ahead(items(fail_at=2))
    assert [next(ahead), next(ahead)] == [0, 1]
    with pytest.raises(ValueError, match="item 2"):
        next(ahead)


@pytest.fixture(scope="module")
def tiny_model():
    """A real (small) model of the tiny contract's features."""
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = tiny_batch(100)
    features = make_column_transformer(
        (SimpleImputer(), ["n"]), (OneHotEncoder(handle_unknown="ignore"), ["k"])
    )
    target = (frame["n"].fillna(0) > 30).astype(int)
    return make_pipeline(features, LogisticRegression()).fit(frame[["n", "k"]], target)


def whole_batch_checks(reference, frame, test_scores, scores) -> list[dict]:
    """TINY's checks of the whole batch at once and the scores', judged as one family."""
    checks = [
        drift.compare_numeric("n", reference["n"], frame["n"], PARAMS, TINY.columns["n"]),
        drift.compare_categorical("k", reference["k"], frame["k"], TINY.columns["k"]),
    ]
    summary = drift.NumericSummary(pd.Series(test_scores), PARAMS.bins, -np.inf, np.inf)
    summary.add(scores)
    checks.append(drift.score_check(summary))
    return [dataclasses.asdict(c) for c in drift.judge_all(checks, PARAMS)]


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_the_chunked_batch_gives_the_whole_batchs_checks(tmp_path, chunk, tiny_model):
    frame = tiny_batch(60)
    logged = np.arange(60) / 64
    frame.assign(churn_probability=logged).to_json(
        tmp_path / "log.jsonl", orient="records", lines=True
    )
    frame.to_csv(tmp_path / "batch.csv", index=False)
    reference, test_scores = tiny_batch(200).drop(columns="extra"), np.linspace(0.1, 0.9, 50)
    accepted = frame[frame["k"] != "z"]  # the service would refuse z
    scored = tiny_model.predict_proba(accepted[["n", "k"]])[:, 1]
    for name, scores in (("log.jsonl", logged), ("batch.csv", scored)):
        batch = mon.Batch(reference, test_scores, TINY, PARAMS)
        mon.read(batch, mon.open_batch(tmp_path / name, TINY), tiny_model, chunk)
        features, prediction = batch.judged()
        whole = whole_batch_checks(reference, frame, test_scores, scores)
        assert [dataclasses.asdict(c) for c in [*features, prediction]] == whole
        assert (batch.rows, batch.scores.rows) == (60, len(scores))
    assert batch.refused == 60 - len(accepted) > 0


def test_predictions_are_not_computed_when_no_row_is_scored(tmp_path, tiny_model):
    """Every row refused: PSI 0 and p 1 of no scores made "Predictions: stable"."""
    tiny_batch(60).assign(k="z").to_csv(tmp_path / "batch.csv", index=False)
    test_scores = np.linspace(0.1, 0.9, 50)
    batch = mon.Batch(tiny_batch(200).drop(columns="extra"), test_scores, TINY, PARAMS)
    mon.read(batch, mon.open_batch(tmp_path / "batch.csv", TINY), tiny_model, 7)
    assert (batch.rows, batch.refused, batch.scores.rows) == (60, 60, 0)
    assert batch.prediction() is None
    assert drift.compare_scores(test_scores, np.empty(0), PARAMS) is None
    lines = mon.summary_markdown(batch.checks(), None, 60, "", PARAMS).splitlines()
    assert (
        lines[2] == "2 of 2 features drifted (60 rows). Predictions: not computed (0 rows scored)."
    )
    assert [line.split(" | ")[0] for line in lines[6:]] == ["| k", "| n"]  # no prediction row
    assert mon.prediction_json(None) == {
        "name": "prediction",
        "kind": "score",
        "psi": None,
        "test": "ks",
        "statistic": None,
        "p_value": None,
        "missing_change": 0.0,
        "unseen_share": 0.0,
        "out_of_range_share": 0.0,
        "unseen_pooled": 0,
        "psi_p_value": None,
        "out_of_range_p_value": None,
        "missing_p_value": None,
        "adjusted_p_values": {},
        "drifted": None,
        "reasons": [],
    }


def test_a_feature_name_with_a_pipe_stays_in_its_cell(tmp_path, tiny_model):
    """'| fee|usd | numeric |' was a row of one column more."""
    tiny_batch(60).to_csv(tmp_path / "batch.csv", index=False)
    test_scores = np.linspace(0.1, 0.9, 50)
    batch = mon.Batch(tiny_batch(200).drop(columns="extra"), test_scores, TINY, PARAMS)
    mon.read(batch, mon.open_batch(tmp_path / "batch.csv", TINY), tiny_model, 7)
    checks = [dataclasses.replace(c, name=f"{c.name}|usd") for c in batch.checks()]
    rows = mon.summary_markdown(checks, batch.prediction(), 60, "", PARAMS).splitlines()[6:8]
    assert sorted(row.split(" | ")[0] for row in rows) == ["| k\\|usd", "| n\\|usd"]


def read_refused(path: Path, model: Any, chunk_rows: int) -> str:
    """The one error reading ``path`` (a batch against TINY) stops at."""
    batch = mon.Batch(tiny_batch(100), np.linspace(0, 1, 10), TINY, PARAMS)
    with pytest.raises(ChurnError) as err:
        mon.read(batch, mon.open_batch(path, TINY), model, chunk_rows)
    return str(err.value)


def test_a_bad_value_in_a_later_chunk_names_its_row_in_the_file(tmp_path, tiny_model):
    frame = tiny_batch(20).astype({"n": object})
    frame.loc[11, "n"] = -3.0
    frame.loc[13, "n"] = "many"
    path = tmp_path / "batch.csv"
    frame.to_csv(path, index=False)
    refusal = read_refused(path, tiny_model, 7)
    assert refusal.splitlines() == [
        f"{path}: 2 data contract check(s) failed",
        "  n: is a number: 1 bad row(s) (row 14: 'many')",
        "  n: >= 0: 1 bad row(s) (row 12: '-3.0')",
    ]


def test_a_bad_json_lines_record_is_named_by_its_line_with_blank_lines_before_it(
    tmp_path, tiny_model
):
    """With blank lines in the file, the value on line 15 was "row 12".

    A line JSON cannot read was named by its line already; blank and whitespace-only
    lines count, as an editor shows them.
    """

    def write(records: pd.DataFrame) -> Path:
        lines = records.to_json(orient="records", lines=True).splitlines()
        # Lines 1-3: records 0-2; 4: blank; 5-7: records 3-5; 8: spaces; 9: "\r";
        # then record k (from 6 on) on line k + 4.
        text = "\n".join([*lines[:3], "", *lines[3:6], "   ", "\r", *lines[6:]]) + "\n"
        path.write_text(text)
        assert text.split("\n")[14] == lines[11]  # record 11 on line 15
        return path

    path = tmp_path / "log.jsonl"
    records = tiny_batch(20).drop(columns="extra").assign(churn_probability=0.5)
    records.loc[11, "n"] = -3.0
    write(records)
    for chunk_rows in (7, 100):  # in a later chunk, and in the first
        assert read_refused(path, tiny_model, chunk_rows).splitlines() == [
            f"{path}: 1 data contract check(s) failed",
            "  n: >= 0: 1 bad row(s) (line 15: -3.0)",
        ]
    records.loc[11, "n"] = 3.0
    records.loc[13, "churn_probability"] = 1.5
    write(records)
    assert read_refused(path, tiny_model, 7) == (
        f"{path}: churn_probability: not a probability in 0..1: 1 bad row(s) (line 17: 1.5)"
    )
    assert mon.record_lines(path, pd.RangeIndex(7, 14)).tolist() == [10, 11, 12, 13, 14, 15, 16]
    assert mon.record_lines(path, pd.RangeIndex(0, 4)).tolist() == [0, 1, 2, 4]


@pytest.mark.parametrize("between", ["", " ", "\r"])
def test_two_records_on_one_line_leave_the_records_counted(tmp_path, tiny_model, between):
    """The reader takes ``{...}{...}`` on one line as two records, and the records are counted.

    Lines counted one record each named the wrong line, or past the file's last line a
    traceback (exit 1: "drift").
    """
    records = tiny_batch(20).drop(columns="extra")
    records.loc[11, "n"] = -3.0
    lines = records.to_json(orient="records", lines=True).splitlines()
    lines[2:4] = [lines[2] + between + lines[3]]  # records 2 and 3 on line 3
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(lines) + "\n")
    for chunk_rows in (7, 12, 100):  # the chunk ends before, at and after the file's end
        assert read_refused(path, tiny_model, chunk_rows).splitlines() == [
            f"{path}: 1 data contract check(s) failed",
            "  n: >= 0: 1 bad row(s) (row 12: -3.0)",
        ]
    assert mon.record_lines(path, pd.RangeIndex(0, 2)).tolist() == [0, 1]  # before line 3
    assert mon.record_lines(path, pd.RangeIndex(0, 3)) is None
    assert mon.records_in(path, path.stat().st_size) == 20


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_batch_needs_no_id_column_even_when_the_data_has_one(tmp_path, suffix):
    with_id = dataclasses.replace(TINY, id="customer", id_in_data=True)
    path = tmp_path / f"batch{suffix}"
    frame = tiny_batch(10)
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    source = mon.open_batch(path, with_id)
    assert [len(f) for f, _ in mon.chunks(source, with_id, 7)] == [7, 3]


def test_whitespace_only_cells_are_missing_as_in_prepare(tmp_path):
    """'  ' in a number and a tab in a category: missing, not text the contract refuses."""
    (tmp_path / "batch.csv").write_text("n,k\n1.5,a\n  ,b\n3,\t\n")
    (chunk, _), *_ = mon.chunks(mon.open_batch(tmp_path / "batch.csv", TINY), TINY, 100)
    assert chunk["n"].isna().tolist() == [False, True, False]
    assert chunk["k"].isna().tolist() == [False, False, True]
    assert chunk["n"].dtype == float


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        # With a gap, pandas made True/False 1.0/0.0 and the contract took them as numbers.
        (pa.array([True, None, False]), "bool"),
        (pa.array([60, None, 120], pa.int64()).cast(pa.duration("s")), "duration[s]"),
        (
            pa.array([1577836800000000, None, 0], pa.timestamp("us", tz="UTC")),
            "timestamp[us, tz=UTC]",
        ),
        (pa.array([18262, None, 1], pa.int32()).cast(pa.date32()), "date32[day]"),
        (pa.array([1, None, 2], pa.int64()).cast(pa.time64("us")), "time64[us]"),
    ],
)
def test_true_false_dates_and_durations_are_not_numbers(tmp_path, tiny_model, values, kind):
    """The cast read True as 1 and a date or duration as a count: no drift, exit 0."""
    path = tmp_path / "batch.parquet"
    pq.write_table(pa.table({"n": pa.concat_arrays([values] * 4), "k": ["a"] * 12}), path)
    refusal = read_refused(path, tiny_model, 5)
    assert refusal == f"{path}: n: not a number: the column holds {kind} values"


def test_a_parquet_category_column_of_number_text_is_judged_by_its_text(tmp_path, tiny_model):
    """A dictionary column of whole numbers was cast whole: "0x1F" read as 31, not refused."""
    path = tmp_path / "batch.parquet"
    numbers = pa.array(["1.5", "7", None, "30"]).dictionary_encode()
    pq.write_table(pa.table({"n": numbers, "k": ["a"] * 4}), path)
    (chunk, _), *_ = mon.chunks(mon.open_batch(path, TINY), TINY, 100)
    assert chunk["n"].fillna(-1.0).tolist() == [1.5, 7.0, -1.0, 30.0]
    hex_text = pa.array(["15", "0x1F", None, "30"]).dictionary_encode()
    pq.write_table(pa.table({"n": hex_text, "k": ["a"] * 4}), path)
    refusal = read_refused(path, tiny_model, 100)
    assert refusal.splitlines() == [
        f"{path}: 1 data contract check(s) failed",
        "  n: is a number: 1 bad row(s) (row 2: '0x1F')",
    ]


@pytest.mark.parametrize("cell", ["", "  ", "\t"])
def test_an_empty_or_blank_category_in_json_lines_is_missing_as_in_a_csv(
    tmp_path, tiny_model, cell
):
    """The JSON lines reader kept "" and "  ": an unseen category (a warning, or drift)."""
    required = Column("categorical", nullable=False, categories=("a", "b"))
    strict = dataclasses.replace(TINY, columns={**TINY.columns, "k": required})
    rows = [{"n": 1.5, "k": "a"}, {"n": 2.5, "k": cell}, {"n": 3.5, "k": "b"}]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (tmp_path / "batch.csv").write_text(f"n,k\n1.5,a\n2.5,{cell}\n3.5,b\n")
    for name in ("log.jsonl", "batch.csv"):
        batch = mon.Batch(tiny_batch(100), np.linspace(0, 1, 10), strict, PARAMS)
        with pytest.raises(ChurnError) as err:
            mon.read(batch, mon.open_batch(tmp_path / name, strict), tiny_model, 100)
        unit = "line" if name.endswith(".jsonl") else "row"  # JSON lines: named by line
        assert str(err.value).splitlines() == [
            f"{tmp_path / name}: 1 data contract check(s) failed",
            f"  k: not null: 1 bad row(s) ({unit} 2: nan)",
        ]


def test_binary_text_is_read_as_text_and_other_bytes_are_one_line(tmp_path):
    """A category stored as binary: read as text; a byte that is not UTF-8 names the column."""
    frame = tiny_batch(10)
    values = [v.encode() for v in frame["k"]]
    path = tmp_path / "batch.parquet"
    table = pa.table({"n": frame["n"], "k": pa.array(values, pa.binary())})
    pq.write_table(table, path)
    source = mon.open_batch(path, TINY)
    (chunk, _), *_ = mon.chunks(source, TINY, 100)
    assert chunk["k"].tolist() == frame["k"].tolist()
    values[3] = b"\xff"
    pq.write_table(table.set_column(1, "k", pa.array(values, pa.binary())), path)
    with pytest.raises(ChurnError) as err:
        list(mon.chunks(mon.open_batch(path, TINY), TINY, 100))
    assert str(err.value) == f"{path}: column 'k' holds bytes that are not UTF-8 text"


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        (
            "short.csv",
            "n,k\n1,a\n2\n",
            "cannot read as CSV (CSV parse error: Row #3: Expected 2 columns, got 1: 2)",
        ),
        ("log.jsonl", '{"n": 1, "k": "a"}\nnot json\n', "line 2: not JSON (Expecting value at"),
        ("empty.jsonl", "\n\n", "no data rows"),
        ("list.jsonl", "\n[1, 2]\n", "not JSON lines (the first line is not an object)"),
        ("log.jsonl", '{"n": 1, "k": "a"}\n{"n": "x", "k": "a"}\n', "line 2: 'n' is text, not a"),
        # 80 KB in, inside the header probe's block: the row is named.
        (
            "wide.csv",
            "n,k\n" + "1,a\n" * 20_000 + "2,b,extra\n",
            "cannot read as CSV (CSV parse error: Row #20002: Expected 2 columns, got 3",
        ),
        (  # pyarrow named "CSV column #1", from 0, and no line
            "bytes.csv",
            b"n,k\n" + b"1,a\n" * 20_000 + b"2,\xe9\n",
            "not UTF-8 (byte 0xe9 at offset 80006, line 20002); re-save the file as UTF-8",
        ),
        ("log.jsonl", '{"n": 1, "k": ' + "[" * 5000 + "]" * 5000 + "}\n", "not JSON lines"),
        # pyarrow's JSON reader kept the byte; pandas raised UnicodeDecodeError (exit 1).
        (
            "log.jsonl",
            b'{"n": 1, "k": "a"}\n{"n": 2, "k": "D\xffSL"}\n',
            "line 2: not JSON ('utf-8'",
        ),
        ("thrift.parquet", b"PAR1" + b"\0" * 10 + b"PAR1", "not a Parquet file (Couldn't"),
        # A valid line across two of the JSON reader's blocks: pyarrow's words were shown.
        (
            "log.jsonl",
            '{"n": 1, "k": "a"}\n{"n": 2, "k": "' + "x" * (40 << 20) + '"}\n',
            "line 2: longer than the reader's block (16 MiB): one JSON object per line (a JSON "
            "array saved as .jsonl is one line)",
        ),
        (
            "log.jsonl",
            '{"n": 1, "k": "a", "churn_probability": 0.5}\n{"n": 1, "k": "a"}\n'
            '{"n": 1, "k": "a", "churn_probability": 5.0}\n',
            "churn_probability: not a probability in 0..1: 2 bad row(s) (line 2: nan)",
        ),
    ],
)
def test_a_broken_file_is_one_line_naming_it(tmp_path, tiny_model, name, text, says):
    if isinstance(text, bytes):
        (tmp_path / name).write_bytes(text)
    else:
        (tmp_path / name).write_text(text)
    refusal = read_refused(tmp_path / name, tiny_model, 30_000)
    assert refusal.startswith(f"{tmp_path / name}: ")
    assert says in refusal
    assert "\n" not in refusal


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('{"n": "7", "k": "a"}', "'n' is text, not a number"),
        ('{"n": true, "k": "a"}', "'n' is true, not a number"),
        ('{"n": [1], "k": "a"}', "'n' is an array, not a number"),
        ('{"n": 1, "k": 5}', "'k' is a number, not text"),
        ('{"n": 1, "k": {"a": 1}}', "'k' is an object, not text"),
        ('{"n": 1, "k": false}', "'k' is false, not text"),
        ('{"n": 1, "k": "a"', "not JSON (Expecting ',' delimiter at character 18)"),
        (
            '{"n": 1, "k": "a",}',
            "not JSON (Expecting property name enclosed in double quotes at character 19)",
        ),
        ('["n", "k"]', "an array, not a JSON object"),
        (
            '{"n": 1, "k": "a", "churn_probability": "high"}',
            "'churn_probability' is text, not a number",
        ),
        # pyarrow refuses a field it reads given twice, naming it by the key that came
        # again first; json.loads kept the last value.
        ('{"n": 1, "k": "a", "n": 2}', "the key 'n' is repeated"),
        ('{"n": 1, "k": "a", "k": "b", "n": null}', "the key 'k' is repeated"),
        (
            '{"n": 1, "k": "a", "churn_probability": 0.5, "churn_probability": 0.5}',
            "the key 'churn_probability' is repeated",
        ),
        # pyarrow stops at a number written with an exponent over 308 (plus its fraction
        # digits), in a field it reads or one it skips, whatever Python makes of it.
        ('{"n": 1e400, "k": "a"}', "'n': the number 1e400 is out of a double's range"),
        ('{"n": 0e400, "k": "a"}', "'n': the number 0e400 is out of a double's range"),
        (
            '{"n": 1, "k": "a", "x": {"y": [2, -1.5E+310]}}',
            "'x.y[1]': the number -1.5E+310 is out of a double's range",
        ),
        (
            '{"n": 2e308, "k": "a", "x": 1' + "0" * 60 + "e400}",
            "'x': the number 1" + "0" * 39 + "... (65 characters) is out of a double's range",
        ),
        # A key given twice: the value that holds the number is gone, the number is not.
        ('{"n": 1e400, "n": 1, "k": "a"}', "the number 1e400 is out of a double's range"),
        # The first as written, even where a later key of the same name replaced it.
        ('{"n": 1e400, "k": "a", "n": 2e400}', "the number 1e400 is out of a double's range"),
        ('{"": 1e400, "n": 1, "k": "a"}', "'[\"\"]': the number 1e400 is out of a double's range"),
        (
            '{"n\\n": 1e400, "n": 1, "k": "a"}',
            "'[\"n\\n\"]': the number 1e400 is out of a double's range",
        ),
        # The first as written, however deep; a field named by its text, whatever it holds.
        (
            '{"a": [[{"b.c": 3e400}]], "n": 1e999, "k": "a"}',
            "'a[0][0][\"b.c\"]': the number 3e400 is out of a double's range",
        ),
        (
            '{"n": 1, "k": "a", "x": ' + "[" * 500 + "9e999" + "]" * 500 + "}",
            "'x"
            + "[0]" * 26
            + "[... (1501 characters)': the number 9e999 is out of a double's range",
        ),
    ],
)
def test_a_bad_json_line_is_named_by_its_line_in_the_file(tmp_path, monkeypatch, line, says):
    """The message counts lines; pyarrow numbers rows from 0 within each block it reads.

    Blocks of 4 KiB here (16 MiB in use): the bad line is far past the first block.
    """
    monkeypatch.setattr(mon.scoring, "JSON_BLOCK_BYTES", 1 << 12)
    good = '{"n": 1.5, "k": "a", "churn_probability": 0.25}\n'
    path = tmp_path / "log.jsonl"
    path.write_text(good * 150 + "\n" + good * 99 + line + "\n" + good)
    with pytest.raises(ChurnError) as err:
        list(mon.chunks(mon.open_batch(path, TINY), TINY, 100))
    assert str(err.value) == f"{path}: line 251: {says}"


def test_a_repeated_key_the_reader_skips_is_no_problem(tmp_path, monkeypatch):
    """Only a field pyarrow reads stops it when given twice; a skipped or nested one does not."""
    monkeypatch.setattr(mon.scoring, "JSON_BLOCK_BYTES", 1 << 10)
    skipped = '{"n": 1, "k": "a", "x": 1, "x": {"n": 1, "n": 2, "k": [{"k": 1, "k": 2}]}}\n'
    path = tmp_path / "log.jsonl"
    path.write_text(skipped * 100)
    assert sum(len(frame) for frame, _ in mon.chunks(mon.open_batch(path, TINY), TINY, 30)) == 100
    path.write_text(skipped * 100 + '{"n": 1, "n": 2, "k": "a"}\n')
    with pytest.raises(ChurnError) as err:
        list(mon.chunks(mon.open_batch(path, TINY), TINY, 30))
    assert str(err.value) == f"{path}: line 101: the key 'n' is repeated"


def test_finding_the_field_costs_no_memory_per_value():
    """A path kept per value: 415 MB for this 0.2 MB line of 100,000 numbers 500 deep."""
    import tracemalloc

    line = ('{"n": 1, "x": ' + "[" * 500 + "1e400" + ",0" * 100_000 + "]" * 500 + "}").encode()
    tracemalloc.start()
    try:
        says = mon.json_line_problem(line, {"n": "number"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (
        says
        == "'x"
        + "[0]" * 26
        + "[... (1501 characters)': the number 1e400 is out of a double's range"
    )
    assert peak < 20 * 2**20  # the parsed line itself is about 1 MB


@pytest.mark.parametrize(
    ("path", "written"),
    [
        (["x", "y", 0], "x.y[0]"),
        ([3, "é"], "[3].é"),
        (["a.b", "c"], '["a.b"].c'),
        (["a", "b[0]", 'say "hi"', ""], 'a["b[0]"]["say \\"hi\\""][""]'),
        (["new\nline"], '["new\\nline"]'),
    ],
)
def test_a_field_path_has_one_reading(path, written):
    assert mon._field_path(path) == written


def test_pyarrow_is_asked_about_numbers_only_until_one_is_refused(monkeypatch):
    """A line of 20,000 distinct refused numbers asked pyarrow 20,000 times: seconds."""
    asked = []

    def refused(number: str) -> bool:
        asked.append(number)
        return number != "0.001e309"  # pyarrow takes this one: fraction digits make up

    monkeypatch.setattr(mon, "_refused_by_pyarrow", refused)
    line = b'{"n": [2e308, 0.001e309, 1e400, 1e401, 1e402], "k": "a"}'
    says = mon.json_line_problem(line, {"n": "number"})
    assert says == "'n[2]': the number 1e400 is out of a double's range"
    assert asked == ["0.001e309", "1e400"]


def test_a_good_json_line_has_no_problem():
    kinds = {"n": "number", "k": "text"}
    good = (b'{"n": 1, "k": "a"}\n', b'{"n": -2.5e3, "k": null, "x": true}\r\n', b"{}")
    # What pyarrow reads too: NaN and Infinity, a tiny number as 0, and some beyond a double
    # (a long whole one, 2e308, 2.5e309) as infinity; an exponent over 308 that fraction
    # digits make up for.
    odd = (b'{"n": NaN}', b'{"n": -Infinity}', b'{"n": 1e-400}', b'{"n": 1' + b"0" * 400 + b"}")
    odd += (b'{"n": 2e308}', b'{"n": -2.5e309}', b'{"n": 1' + b"0" * 400 + b".5}")
    odd += (b'{"n": 0.0001e310}', b'{"n": 1' + b"0" * 5000 + b"}")  # past int()'s digit limit
    for line in (*good, *odd):
        assert mon.json_line_problem(line, kinds) is None


def test_a_column_twice_or_holding_lists_is_refused_by_name(tmp_path):
    (tmp_path / "twice.csv").write_text("n,k,n\n1,a,2\n")
    with pytest.raises(ChurnError, match=r"twice.csv: column 'n' appears 2 times$"):
        mon.open_batch(tmp_path / "twice.csv", TINY)
    pq.write_table(pa.table({"n": [[1.0]], "k": ["a"]}), tmp_path / "lists.parquet")
    says = r"lists.parquet: column 'n' holds list<element: double> values, not numbers or text$"
    with pytest.raises(ChurnError, match=says):
        mon.open_batch(tmp_path / "lists.parquet", TINY)


def test_a_batch_of_another_kind_or_without_rows_is_refused(tmp_path):
    with pytest.raises(ChurnError, match=r"batch.txt: the batch must be .csv, .parquet or .jsonl"):
        mon.open_batch(tmp_path / "batch.txt", TINY)
    (tmp_path / "empty.csv").write_text("n,k\n")
    batch = mon.Batch(tiny_batch(100), np.linspace(0, 1, 10), TINY, PARAMS)
    with pytest.raises(ChurnError, match=r"empty.csv: no data rows"):
        mon.read(batch, mon.open_batch(tmp_path / "empty.csv", TINY), None, 7)
    (tmp_path / "unended.csv").write_text("n,k")  # pyarrow: "Empty CSV file"
    with pytest.raises(ChurnError, match=r"unended.csv: no data rows"):
        mon.read(batch, mon.open_batch(tmp_path / "unended.csv", TINY), None, 7)
    (tmp_path / "log.jsonl").write_text('{"n": 1.0}\n')
    with pytest.raises(ChurnError, match=r"log.jsonl: missing column\(s\) 'k'"):
        mon.open_batch(tmp_path / "log.jsonl", TINY)
    for name in ("folder.csv", "folder.jsonl"):  # "file not found" sent the user looking
        (tmp_path / name).mkdir()
        with pytest.raises(ChurnError) as err:
            mon.open_batch(tmp_path / name, TINY)
        assert str(err.value) == f"{tmp_path / name}: not a regular file"


@pytest.fixture
def batches(trained, telco, tmp_path):
    """Raw-format batches of test-split customers: as is, shifted, tiny, invalid."""
    test_ids = io.read_parquet(trained / "data/prepared/test.parquet").index
    rows = telco.set_index("rownames").loc[test_ids].reset_index()
    out = {"same": rows.sample(800, random_state=0)}
    shifted = rows.sample(800, random_state=1).copy()
    shifted["monthly_charges"] *= 1.3
    shifted.loc[shifted.sample(80, random_state=2).index, "payment_method"] = "Crypto wallet"
    out["shifted"] = shifted
    out["tiny"] = rows.head(30)
    invalid = rows.head(100).copy()
    invalid.loc[3, "tenure"] = -4
    out["invalid"] = invalid
    paths = {}
    for name, frame in out.items():
        paths[name] = tmp_path / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    return paths


def monitor(trained, batch, out, *options):
    env = {k: v for k, v in os.environ.items() if k.startswith("COVERAGE_")}  # counted too
    env.update(PYTHONPATH=str(REPO / "src"), PATH=str(REPO / ".venv/bin"))
    result = subprocess.run(
        [
            *(sys.executable, "-m", "churn", "monitor"),
            *("--input", str(batch), "--out", str(out), *options),
        ],
        cwd=trained,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    report = json.loads((out / "drift.json").read_text()) if (out / "drift.json").exists() else None
    return result, report


def test_batch_from_the_test_split_has_no_drift(trained, batches, tmp_path):
    result, report = monitor(trained, batches["same"], tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert report["drifted"] == []
    assert report["scored_rows"] == 800
    assert report["prediction"]["drifted"] is False
    assert report["rows"] == 800
    assert (
        "No feature drifted (800 rows). Predictions: stable."
        in (tmp_path / "out/summary.md").read_text()
    )


def test_shifted_charges_and_a_new_payment_method_are_exactly_what_drifts(
    trained, batches, tmp_path
):
    out = tmp_path / "out"
    result, report = monitor(trained, batches["shifted"], out)
    assert result.returncode == 1
    assert sorted(report["drifted"]) == ["monthly_charges", "payment_method"]
    by_name = {f["name"]: f for f in report["features"]}
    assert by_name["monthly_charges"]["psi"] > 0.2
    assert by_name["payment_method"]["unseen_share"] == pytest.approx(0.1)
    assert report["scored_rows"] == 720  # the 80 the service would refuse are not scored
    assert sorted(p.name for p in out.glob("*.png")) == [
        "monthly_charges.png",
        "payment_method.png",
    ]
    assert (out / "monthly_charges.png").read_bytes().startswith(b"\x89PNG")
    table = [
        line for line in (out / "summary.md").read_text().splitlines() if line.startswith("| ")
    ]
    first_two = {row.split(" | ")[0] for row in table[1:3]}  # drifted features come first
    assert first_two == {"| monthly_charges", "| payment_method"}


def test_a_report_is_published_whole_and_keeps_no_plot_of_an_earlier_run(
    trained, batches, tmp_path
):
    """A directory where summary.md goes: nothing replaced. A rerun: no stale PNGs."""
    out = tmp_path / "out"
    (out / "summary.md").mkdir(parents=True)
    result, _ = monitor(trained, batches["shifted"], out)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == f"error: {out / 'summary.md'}: Is a directory"
    assert sorted(p.name for p in out.iterdir()) == ["summary.md"]  # no drift.json, no PNG
    (out / "summary.md").rmdir()
    assert monitor(trained, batches["shifted"], out)[0].returncode == 1
    assert len(list(out.glob("*.png"))) == 2
    (out / "notes.png").write_bytes(b"not ours")  # a file of the user's stays
    result, report = monitor(trained, batches["same"], out)
    assert (result.returncode, report["drifted"]) == (0, [])
    assert sorted(p.name for p in out.iterdir()) == ["drift.json", "notes.png", "summary.md"]
    # Named like a feature, but no earlier report here drew it: the user's, kept.
    (out / "contract.png").write_bytes(b"the user's")
    (out / "drift.json").unlink()
    assert monitor(trained, batches["same"], out)[0].returncode == 0
    assert (out / "contract.png").read_bytes() == b"the user's"


def test_the_chunk_size_changes_nothing_in_the_report(trained, batches, tmp_path):
    results = {
        rows: monitor(trained, batches["shifted"], tmp_path / rows, "--chunk-rows", rows)
        for rows in ("7", "131072")
    }
    assert [result.returncode for result, _ in results.values()] == [1, 1]
    assert results["7"][1] == results["131072"][1]
    assert (tmp_path / "7/summary.md").read_text() == (tmp_path / "131072/summary.md").read_text()
    assert sorted(p.name for p in (tmp_path / "7").glob("*.png")) == [
        "monthly_charges.png",
        "payment_method.png",
    ]


def test_a_batch_the_service_refuses_whole_has_no_prediction_check(trained, batches, tmp_path):
    """Every contract a new one: drift.json had scored_rows 0 and "Predictions: stable"."""
    weekly = tmp_path / "weekly.csv"
    pd.read_csv(batches["same"]).assign(contract="Weekly").to_csv(weekly, index=False)
    result, report = monitor(trained, weekly, tmp_path / "out")
    assert result.returncode == 1, result.stderr  # the contract's unseen category: drift
    assert (report["rows"], report["scored_rows"], report["drifted"]) == (800, 0, ["contract"])
    assert report["prediction"] == mon.prediction_json(None)
    assert (
        "1 of 19 features drifted (800 rows). Predictions: not computed (0 rows scored)."
        in (tmp_path / "out/summary.md").read_text()
    )


def test_tiny_batch_warns_about_power(trained, batches, tmp_path):
    _, report = monitor(trained, batches["tiny"], tmp_path / "out")
    assert report["warning"] == (
        "Only 30 rows (fewer than 50): the tests have little power; a real shift may go "
        "unflagged, and with a handful of rows what is flagged may be chance."
    )
    assert "> Only 30 rows" in (tmp_path / "out/summary.md").read_text()


def test_invalid_batch_exits_2_with_the_contract_message(trained, batches, tmp_path):
    result, report = monitor(trained, batches["invalid"], tmp_path / "out")
    assert result.returncode == 2
    assert report is None
    assert result.stderr.splitlines()[-2:] == [
        f"error: {batches['invalid']}: 1 data contract check(s) failed",
        "  tenure: >= 0: 1 bad row(s) (row 4: -4)",
    ]


def test_the_service_prediction_log_is_monitor_input(trained, batches, tmp_path, monkeypatch):
    monkeypatch.chdir(trained)
    log = tmp_path / "predictions.jsonl"
    rows = json.loads(
        pd.read_csv(batches["same"]).drop(columns=["rownames", "churn"]).to_json(orient="records")
    )
    settings = Settings(prediction_log=str(log), log_sample_rate=1.0)
    with TestClient(create_app(settings)) as client:
        for start in range(0, 800, 400):
            assert (
                client.post(
                    "/v1/predict", json={"customers": rows[start : start + 400]}
                ).status_code
                == 200
            )
    logged = pd.read_json(log, lines=True)
    assert len(logged) == 800
    assert "churn_probability" in logged.columns
    result, report = monitor(trained, log, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert report["rows"] == 800


def test_logging_is_off_by_default(trained, batches, tmp_path, monkeypatch):
    monkeypatch.chdir(trained)
    rows = json.loads(
        pd.read_csv(batches["same"])
        .head(5)
        .drop(columns=["rownames", "churn"])
        .to_json(orient="records")
    )
    with TestClient(create_app(Settings())) as client:
        assert client.post("/v1/predict", json={"customers": rows}).status_code == 200
    assert not list(trained.glob("*.jsonl"))


class _Trap:
    """Unpickling this creates a file: proof that a pickle ran code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_model_dvc_lock_does_not_vouch_for_is_never_unpickled(trained, batches, tmp_path):
    import pickle
    import shutil

    work = shutil.copytree(trained, tmp_path / "work")
    trap = tmp_path / "code-ran"
    (work / "models/model.pkl").write_bytes(pickle.dumps(_Trap(str(trap))))
    result, report = monitor(work, batches["same"], tmp_path / "out")
    assert result.returncode == 2
    assert report is None
    assert not trap.exists()
    assert result.stderr.splitlines()[-1].startswith("error: models/model.pkl: md5 ")
    assert result.stderr.splitlines()[-1].endswith("in dvc.lock: refusing to unpickle it")


def hashed(name: str) -> str:
    """The plot file of a plain ``name`` that clashes with another but for case."""
    return f"{name}-{hashlib.sha256(name.encode()).hexdigest()[:12]}.png"


@pytest.mark.parametrize(
    ("text", "plots"),
    [
        # Either file of a name: the hashed one is drawn when another feature's name
        # differs from it only in case, and the contract may have changed since.
        (
            '{"drifted": ["tenure", "Contract"]}',
            {"tenure.png", "Contract.png", hashed("tenure"), hashed("Contract")},
        ),
        # A name with a '/' is the plain file plot_file makes of it, in this directory.
        ('{"drifted": ["../up", 3, null]}', {"up-8c722b8ae2c9.png"}),
        ('{"drifted": "tenure"}', set()),
        ("[1, 2]", set()),
        ("not json", set()),
        (None, set()),
    ],
)
def test_only_plots_an_earlier_report_drew_may_be_removed(tmp_path, text, plots):
    if text is not None:
        (tmp_path / "drift.json").write_text(text)
    assert mon.earlier_plots(tmp_path) == plots


@pytest.mark.parametrize(
    ("feature", "file"),
    [
        ("monthly_charges", "monthly_charges.png"),
        ("v1.2", "v1.2.png"),
        ("MonthlyCharges", "MonthlyCharges.png"),
        ("calls/day", "calls_day-{}.png"),
        ("../../evil", "evil-{}.png"),
        ("..", "{}.png"),
        (".hidden", "hidden-{}.png"),
        ("-x", "x-{}.png"),
        ("a b", "a_b-{}.png"),
        ("élan", "élan-{}.png"),
        ("", "{}.png"),
        ("x" * 266, "x" * 80 + "-{}.png"),
        # 80 bytes of UTF-8, not 80 letters: 80 of these were 257 bytes with the hash.
        ("界" * 100, "界" * 26 + "-{}.png"),
        ("é" * 60, "é" * 40 + "-{}.png"),
    ],
)
def test_a_plots_file_name_is_the_feature_or_a_plain_bounded_one(feature, file):
    """A CSV header made the file's path: '../../evil' wrote outside --out."""
    digest = hashlib.sha256(feature.encode()).hexdigest()[:12]
    assert mon.plot_file(feature) == file.format(digest)


def test_plots_of_hostile_feature_names_land_in_the_output_directory(tmp_path):
    out = tmp_path / "a" / "out"
    out.mkdir(parents=True)
    names = ["../../evil", "calls/day", "x" * 266, "calls_day"]
    files = mon.plot_files(names)
    for name in names:
        fig, ax = mon._figure()
        mon._save(fig, ax, name, out / files[name])
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png")) == sorted(
        f"a/out/{mon.plot_file(name)}" for name in names
    )
    (out / "drift.json").write_text(json.dumps({"drifted": names}))
    assert set(files.values()) <= mon.earlier_plots(out)


def test_plots_of_names_that_differ_only_in_case_are_different_files():
    """On a case-insensitive file system the plot of 'Age' replaced the plot of 'age'."""
    features = ["age", "Age", "AGE", "tenure", "Monthly_Charges", "e/x", "E/x"]
    # A plain name that is another's hashed file but for case: hashed too.
    features += ["calls/day", mon.plot_file("calls/day").upper().removesuffix(".PNG")]
    files = mon.plot_files(features)
    assert files == {
        "age": hashed("age"),
        "Age": hashed("Age"),
        "AGE": hashed("AGE"),
        "tenure": "tenure.png",  # no other name like it: plain, as before
        "Monthly_Charges": "Monthly_Charges.png",
        "e/x": mon.plot_file("e/x"),  # hashed anyway
        "E/x": mon.plot_file("E/x"),
        "calls/day": mon.plot_file("calls/day"),
        features[-1]: hashed(features[-1]),
    }
    assert len({file.casefold() for file in files.values()}) == len(files)


def test_a_drifted_feature_whose_name_clashes_but_for_case_gets_its_own_plot(tmp_path):
    """write_plots names files from the whole contract, not from what drifted this time."""
    contract = Contract(
        "y",
        1,
        None,
        "row_id",
        False,
        {name: Column("categorical") for name in ("plan", "Plan", "region")},
    )
    reference = pd.DataFrame({name: ["a", "b"] * 50 for name in contract.features})
    batch = mon.Batch(reference, np.array([0.5]), contract, PARAMS)
    batch.add(pd.DataFrame({name: ["c"] * 40 for name in contract.features}))
    files = {"plan": hashed("plan"), "Plan": hashed("Plan"), "region": "region.png"}
    for drifted in (["Plan"], ["plan", "Plan", "region"]):
        out = tmp_path / str(len(drifted))
        out.mkdir()
        checks = [check for check in batch.checks() if check.name in drifted]
        mon.write_plots(checks, batch, None, 10, out)
        assert sorted(p.name for p in out.iterdir()) == sorted(files[name] for name in drifted)


def test_publishing_drops_an_earlier_plot_but_never_the_file_just_written(tmp_path):
    """'Age.png' from an earlier report goes, unless (on macOS) it is the new 'age.png'."""
    out = tmp_path / "out"
    out.mkdir()
    for name in ("Age.png", "tenure.png", "notes.png"):
        (out / name).write_text(f"old {name}")

    def publish(ours: set[str], *names: str) -> list[str]:
        report = tmp_path / "report"
        report.mkdir()
        for name in names:
            (report / name).write_text(f"new {name}")
        mon.publish(report, out, ours)
        assert not list(report.iterdir())
        report.rmdir()
        return sorted(p.name for p in out.iterdir())

    # Here, a file system that tells case apart, Age.png is another file: it goes.
    ours = {"Age.png", "tenure.png"}
    assert publish(ours, "drift.json", "age.png") == ["age.png", "drift.json", "notes.png"]
    # Where it does not, Age.png is age.png; a link stands in for that.
    (out / "AGE.png").symlink_to("age.png")
    ours = {"AGE.png", "notes.png"}  # notes.png: named as one of ours, another file
    assert publish(ours, "drift.json", "age.png") == ["AGE.png", "age.png", "drift.json"]
    assert (out / "AGE.png").read_text() == "new age.png"


def test_bar_shares_keeps_the_largest_and_clips_labels():
    """A batch of 2 MB category text took minutes to plot: one tick label that long."""
    ref = pd.Series(["a", "a", "b", None])
    batch = drift.CategoricalSummary()
    batch.add(pd.Series(["a", "x" * 2_000_000, None, "b"]))
    shares = mon.bar_shares(ref, batch)
    assert shares.index.tolist() == ["a", "b", "x" * 29 + "…"]
    assert shares.loc["a"].tolist() == pytest.approx([2 / 3, 1 / 3])
    assert shares["batch"].sum() == pytest.approx(1.0)
    many = drift.CategoricalSummary()
    many.add(pd.Series([f"c{i:03d}" for i in range(200)] + ["a"] * 100 + ["b\nc"] * 50))
    shares = mon.bar_shares(ref, many)
    assert len(shares) == mon.PLOT_BARS
    assert shares.index[:3].tolist() == ["a", "b", "b\\nc"]  # largest on either side first
    assert shares.index[-1] == f"other ({3 + 200 - (mon.PLOT_BARS - 1)})"
    assert shares.sum().tolist() == pytest.approx([1.0, 1.0])  # nothing dropped


def test_a_json_array_saved_as_jsonl_is_refused_without_reading_it_whole(tmp_path, monkeypatch):
    """The header probe read (and parsed) a 172 MB one-line file whole: 1 GB, then the error."""
    monkeypatch.setattr(mon.scoring, "JSON_BLOCK_BYTES", 1 << 10)
    path = tmp_path / "array.jsonl"
    path.write_text("\n\n" + json.dumps([{"n": 1, "k": "a"}] * 200))
    reads = spy_reads(monkeypatch, "readline")
    with pytest.raises(ChurnError) as err:
        mon.open_batch(path, TINY)
    assert str(err.value) == f"{path}: line 3: {mon.LONG_LINE}"
    assert reads
    assert all(0 < limit <= (1 << 10) + 1 for limit in reads)


def test_a_missing_batch_is_not_sent_to_the_pipeline(tmp_path):
    """The hint "run the stage that makes it, or dvc pull" is for pipeline outputs only."""
    for name in ("nope.jsonl", "nope.csv", "nope.parquet"):
        with pytest.raises(ChurnError) as err:
            mon.open_batch(tmp_path / name, TINY)
        assert str(err.value) == f"{tmp_path / name}: file not found"


def test_float32_columns_are_read_as_the_numbers_written():
    """29.85 as float32 is 29.850000381...: the training file saved so drifted from itself."""
    written = [29.85, 18.4, None, 118.75, 0.1]
    values = pa.chunked_array([pa.array(written, pa.float32())])
    assert values.to_pylist()[0] != 29.85  # the float32's nearest double
    assert mon._as_numbers(values).to_pylist() == written
    assert mon._as_numbers(pa.chunked_array([pa.array([29.85])])).to_pylist() == [29.85]


def test_unseen_values_are_counted_up_to_a_bound_then_pooled(monkeypatch):
    """A batch of unique values in a categorical column grew the counts with the batch.

    The known categories are always counted; the first MAX_UNSEEN distinct unseen values in
    file order are counted one by one, whatever the chunks; the rows of later ones pooled.
    The unseen share stays exact.
    """
    monkeypatch.setattr(drift, "MAX_UNSEEN", 3)
    ref = pd.Series(["a", "b", "a", None])
    values = ["a", "u1", "u2", "b", "u1", "u3", "u4", "u5", "u4", None, "u2", "a"]
    results = []
    for size in (1, 2, 5, 12):
        summary = drift.categorical_summary(ref)
        for start in range(0, len(values), size):
            summary.add(pd.Series(values[start : start + size], dtype=object))
        results.append((summary.counts, summary.pooled, summary.unseen_kinds))
        assert summary.counts == {"a": 2, "u1": 2, "u2": 2, "b": 1, "u3": 1}
        assert (summary.pooled, summary.unseen_kinds) == (3, 3)  # u4 twice, u5 once
        check = drift.categorical_check("c", ref, summary)
        assert check.unseen_share == pytest.approx(8 / 11)
        assert check.unseen_pooled == 3
    assert all(r == results[0] for r in results)
    # A contract's category absent from the reference is known too: never pooled.
    column = Column(type="categorical", categories=["a", "b", "z"])
    summary = drift.categorical_summary(ref, column)
    summary.add(pd.Series(["u1", "u2", "u3", "u4", "z", "z"]))
    assert summary.counts["z"] == 2
    assert summary.pooled == 1
    shares = mon.bar_shares(ref, summary)
    assert shares.loc[mon.POOLED_LABEL, "batch"] == pytest.approx(1 / 6)
    assert shares["batch"].sum() == pytest.approx(1.0)


def test_ks_with_ties_says_nothing_on_stderr(capfd):
    """Scipy's exact method gives up on ties with a RuntimeWarning naming its own file."""
    summary = drift.NumericSummary(pd.Series(np.repeat(np.arange(50.0), 40)), 10, 0.0, 49.0)
    summary.add(np.r_[np.repeat(np.arange(50.0), 20), np.repeat(7.0, 300)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        statistic, p_value = summary.ks()
    assert 0 < statistic < 1
    assert 0 <= p_value <= 1
    assert capfd.readouterr().err == ""


def test_decimal_columns_are_read_to_the_nearest_float():
    """The Arrow cast made 89.10 89.10000000000001: the training file drifted from itself."""
    values = pa.chunked_array(
        [pa.array([Decimal("89.10"), Decimal("18.40"), None, Decimal("5")], pa.decimal128(12, 2))]
    )
    got = mon._as_numbers(values)
    assert got.to_pylist() == [89.1, 18.4, None, 5.0]
    assert got.to_pylist() == [None if v is None else float(v) for v in values.to_pylist()]


def test_links_to_nothing_and_an_out_that_cannot_be_written_are_named(
    trained, batches, tmp_path, monkeypatch
):
    """Links that lead nowhere, and an --out no report can be written in, are named.

    A loop of links was "file not found" (--input) or "a.csv: File exists" (--out); a
    read-only --out was named by its staging directory's random name.
    """
    (tmp_path / "a.csv").symlink_to(tmp_path / "b.csv")
    (tmp_path / "b.csv").symlink_to(tmp_path / "a.csv")
    result, _ = monitor(trained, tmp_path / "a.csv", tmp_path / "out")
    assert (result.returncode, result.stderr.splitlines()[-1]) == (
        2,
        f"error: {tmp_path / 'a.csv'}: a symbolic link to nothing (or a loop of links)",
    )
    result, _ = monitor(trained, batches["same"], tmp_path / "a.csv")
    assert (result.returncode, result.stderr.splitlines()[-1]) == (
        2,
        f"error: --out {tmp_path / 'a.csv'}: a symbolic link to nothing (or a loop of links)",
    )

    def refused(**kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "ro" / ".report-x1y2"))

    monkeypatch.setattr(mon.tempfile, "TemporaryDirectory", refused)
    with pytest.raises(ChurnError) as err:
        mon._staging(tmp_path / "ro")
    assert str(err.value) == f"--out {tmp_path / 'ro'}: Permission denied"


def test_a_prediction_log_that_is_compressed_is_named_so(trained, tmp_path):
    """A gzip file named .jsonl: "not JSON lines ('utf-8' codec can't decode byte 0x8b)"."""
    import gzip

    from churn.core.contract import read_contract

    path = tmp_path / "log.jsonl"
    path.write_bytes(gzip.compress(b'{"a": 1}\n'))
    contract = read_contract(trained / "data/prepared/contract.json")
    with pytest.raises(ChurnError) as err:
        mon.open_batch(path, contract)
    assert str(err.value) == (
        f"{path}: not JSON lines text but gzip-compressed data: save it as a UTF-8 JSON lines file"
    )


def test_the_report_never_lands_among_what_the_repository_keeps(tmp_path, monkeypatch):
    """`--out src` wrote drift.json and summary.md among the code; `--out models` by the model."""
    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "-q"], check=True)
    (tmp_path / "src").mkdir()
    (tmp_path / "src/a.py").write_text("")
    subprocess.run(["git", "add", "src/a.py"], check=True)
    (tmp_path / "dvc.lock").write_text("stages:\n  t:\n    outs:\n    - path: models/m.pkl\n")
    for out, said in [
        ("src", "holds files git tracks"),
        ("models", "holds a DVC output (models/m.pkl)"),
    ]:
        with pytest.raises(ChurnError) as err:
            mon.run(tmp_path / "batch.csv", Path(out))
        assert str(err.value) == f"--out {out}: {said}; write elsewhere"
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["a.py"]


def test_the_references_must_be_the_files_dvc_lock_records(trained, batches, tmp_path, monkeypatch):
    """Another predictions.csv gave a KeyError traceback, or "drift" (PSI 27), exit 1."""
    import shutil

    import yaml

    from churn.core.integrity import md5_of

    work = tmp_path / "work"
    shutil.copytree(trained, work, symlinks=True)
    monkeypatch.chdir(work)
    lock = yaml.safe_load(Path("dvc.lock").read_text())
    for path in ("reports/predictions.csv", "data/prepared/train.parquet"):
        lock["stages"]["train"]["outs"].append(
            {"path": path, "md5": md5_of(Path(path).read_bytes())}
        )
    Path("dvc.lock").write_text(yaml.safe_dump(lock))
    batch = batches["same"]
    assert mon.run(batch, tmp_path / "m0") == 0  # as recorded: read
    kept = Path("reports/predictions.csv").read_bytes()
    for text in ("a,b\n1,2\n", "id,label,probability\n1,0,0.5\n"):
        Path("reports/predictions.csv").write_text(text)
        with pytest.raises(ChurnError) as err:
            mon.run(batch, tmp_path / "m1")
        assert str(err.value) == (
            "reports/predictions.csv: not the output dvc.lock records (another commit's?): "
            "dvc checkout, or dvc repro, first"
        )
    Path("reports/predictions.csv").write_bytes(kept)
    Path("data/prepared/train.parquet").write_bytes(b"PAR1")
    with pytest.raises(ChurnError, match=r"^data/prepared/train.parquet: not the output dvc.lock"):
        mon.run(batch, tmp_path / "m2")
    assert not (tmp_path / "m1").exists()
    assert not (tmp_path / "m2").exists()
