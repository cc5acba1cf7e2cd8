"""Under ``make mutation``: run the tests most likely to kill the mutant, cheapest, first.

mutmut runs each mutant against every unit test that reached its function, with ``-x``,
in an arbitrary order (a set's). A killed mutant stops at its first failing test, so the
order decides the cost, never the verdict: a mutant survives only if all of its tests
pass, whatever order they ran in. Here the tests of the mutated module's own file(s)
(``test_stats*.py`` for ``churn.core.stats``) go first, each group fastest first by the
durations mutmut measured on the clean code. Outside a mutmut run nothing is reordered.

tests/conftest.py imports the hook (a tests/unit/conftest.py would shadow that one's
``REPO``, which test modules import as ``from conftest import REPO``).
"""

import json
import logging
import os
import re
from pathlib import Path

import pytest

log = logging.getLogger(__name__)

# mutmut's mutant names: churn.core.stats.x_weighted_scores__mutmut_3
MUTANT = re.compile(r"^churn\.(?:\w+\.)*(?P<module>\w+)\.x_.+__mutmut_\d+$")
# Written by mutmut into mutants/, the directory it runs the tests from.
STATS = Path("mutmut-stats.json")


def _durations() -> dict[str, float]:
    """Seconds per test id from mutmut's clean run; empty if unreadable."""
    try:
        return json.loads(STATS.read_text(encoding="utf-8"))["duration_by_test"]
    except (OSError, ValueError, KeyError) as err:
        log.debug("no mutmut test durations (%s): keeping the order", err)
        return {}


def mutation_order(
    items: list[pytest.Item], mutant: str, durations: dict[str, float]
) -> list[pytest.Item]:
    """``items`` with the mutated module's own tests first, fastest first in each group."""
    match = MUTANT.match(mutant)
    if not match:
        return items
    own = f"test_{match['module']}"

    def key(item: pytest.Item) -> tuple[bool, float]:
        stem = item.path.stem
        mine = stem == own or stem.startswith(own + "_")
        return (not mine, durations.get(item.nodeid, 0.0))

    return sorted(items, key=key)  # stable: ties keep pytest's order


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Reorder only inside a mutmut mutant run (``MUTANT_UNDER_TEST`` names a mutant)."""
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    if MUTANT.match(mutant):
        items[:] = mutation_order(items, mutant, _durations())
