"""Parameter sweeps as DVC experiments, on one machine or many: ``churn sweep``.

A grid such as ``train.logistic_regression.C=0.1,1,10 train.class_weight=null,balanced``
is Hydra's override syntax, the one ``dvc exp run -S`` reads, so every value means here
what it means to DVC. :func:`plan` expands it into parameter sets, each checked against
the typed params (a bad key or value fails in one line naming it) and named by a hash of
its values, so every machine derives the same experiment name for the same set.

- many machines (.github/workflows/sweep.yml): ``plan`` is the job matrix; each matrix
  job runs one set (``run``) and pushes it with ``dvc exp push``; a last job pulls them
  (``pull``) and writes the ``table``;
- one machine (``make sweep``): ``queue`` puts every set on DVC's queue, runs it and
  prints the same table.

The table is built from ``dvc exp show --json``: one row per set of the grid, sorted by
``release.metric`` (the headline metric a release is gated on), best first.
"""

import contextlib
import copy
import hashlib
import itertools
import json
import logging
import math
import posixpath
import re
import shlex
import subprocess
import sys
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churn.core import integrity, io
from churn.core.contract import check_slices
from churn.core.errors import ChurnError, clip
from churn.core.params import PARAMS_FILE, Params, load_params, parse_params
from churn.ops.check import check_untracked

log = logging.getLogger("churn.sweep")

MAX_SETS = 64  # a sweep bigger than this is a mistake more often than a plan
# One KEY=VALUES of a grid: 64 values of a few dozen characters, or one long list. Parsed
# in under half a second; 20,000 took Hydra over a minute.
MAX_OVERRIDE_CHARS = 8_192
WORKSPACE_LOCK = Path(".dvc/tmp/churn-sweep.lock")  # beside DVC's own locks, ignored by git
NAME_PREFIX = "sweep-"
# Hydra sweeps that name no finite list of values: glob() picks among config-group
# options (params.yaml has none), interval() is a continuous range for an optimiser.
UNLISTED_SWEEPS = {
    "GLOB_CHOICE_SWEEP": "glob() chooses among config groups, which params.yaml has none of",
    "INTERVAL_SWEEP": "interval() is a continuous range, which a grid cannot list",
}
EXIT_MISSING = 3  # the table was written, but some sets have no results
MISSING = "—"


@dataclass(frozen=True)
class ParamSet:
    """One experiment of a sweep: its name and the values it sets."""

    name: str
    overrides: tuple[str, ...]  # "key=value" exactly as `dvc exp run -S` takes them
    values: tuple[tuple[str, Any], ...]  # (key, parsed value), in the grid's key order

    @property
    def label(self) -> str:
        """The overrides on one line, for logs and the job names of the matrix."""
        return " ".join(self.overrides)


def _parser() -> Any:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def _parse_one(parser: Any, token: str) -> Any:
    from hydra.errors import HydraException

    if len(token) > MAX_OVERRIDE_CHARS:  # Hydra's parser takes time in the square of it
        raise ChurnError(
            f"grid: {clip(repr(token), 60)}: {len(token):,} characters, more than "
            f"{MAX_OVERRIDE_CHARS:,} in one KEY=VALUES"
        )
    try:
        (override,) = parser.parse_overrides([token])
    except (HydraException, ValueError) as err:  # ValueError: an int of over 4,300 digits
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ChurnError(f"grid: cannot read {clip(repr(token))}: {clip(first, 200)}") from None
    return override


def _choices(parser: Any, token: str, limit: int) -> tuple[str, list[tuple[str, Any]]]:
    """``key`` and its ``(text for -S, parsed value)`` choices, from one grid token."""
    from hydra.core.override_parser.types import OverrideType
    from hydra.errors import HydraException

    override = _parse_one(parser, token)
    key = override.key_or_group
    if not key:  # "=1": Hydra reads an empty key
        raise ChurnError(f"grid: {clip(repr(token))}: no key before '=' (KEY=V1,V2,...)")
    if override.type != OverrideType.CHANGE or override.package is not None:
        raise ChurnError(
            f"grid: {clip(repr(token))}: only KEY=VALUE[,VALUE...] (changing a key "
            "params.yaml already has)"
        )
    unlisted = UNLISTED_SWEEPS.get(override.value_type.name)
    if unlisted:
        raise ChurnError(f"grid: {clip(key)}: {unlisted}: list the values, a,b,c or range()")
    try:
        if override.is_sweep_override():
            texts = list(itertools.islice(override.sweep_string_iterator(), limit + 1))
        else:
            texts = [override.get_value_element_as_str()]
    except (HydraException, ValueError) as err:  # ValueError: range(0, 10, 0)
        raise ChurnError(f"grid: {key}: {clip(str(err), 200)}") from None
    if not texts:  # range(5, 1): a sweep over nothing
        raise ChurnError(f"grid: {clip(repr(token))}: no values")
    if len(texts) > limit:
        raise ChurnError(f"grid: {key}: more than {limit} values")
    # Each text parsed back as DVC will parse `-S key=text`: the value DVC writes.
    choices = [(text, _parse_one(parser, f"{key}={text}").value()) for text in texts]
    for _, value in choices:
        if _unresolved(value):
            raise ChurnError(
                f"grid: {clip(key)}: {clip(repr(value))}: an interpolation (${{...}}) or a "
                "missing value (???), which DVC resolves as it writes params.yaml (from each "
                "machine's environment): give the value itself"
            )
    return key, choices


def _unresolved(value: Any) -> bool:
    """Whether OmegaConf, which DVC's ``-S`` goes through, would resolve ``value``.

    ``${oc.env:VAR}`` took the value from the environment of the machine that ran the set
    (one name, a different value on each), even escaped; ``???`` ended in DVC's traceback.
    """
    if isinstance(value, str):
        return "${" in value or value == "???"
    if isinstance(value, list):
        return any(map(_unresolved, value))
    if isinstance(value, dict):
        return any(map(_unresolved, value.values()))
    return False


def _leaf(raw: Mapping[str, Any], key: str) -> None:
    """Raise unless ``key`` (dotted) names a single value that params.yaml already has."""
    node: Any = raw
    for depth, part in enumerate(key.split(".")):
        if not isinstance(node, Mapping) or part not in node:
            where = ".".join(key.split(".")[:depth]) or "the top level"
            known = ", ".join(sorted(map(str, node))) if isinstance(node, Mapping) else "none"
            raise ChurnError(
                f"grid: {clip(key)}: not a key of {PARAMS_FILE} (keys at {where}: {known})"
            )
        node = node[part]
    if isinstance(node, Mapping):
        raise ChurnError(f"grid: {clip(key)}: a section, not a single value: name a key inside it")


def _set(raw: dict, key: str, value: Any) -> None:
    *parents, last = key.split(".")
    node = raw
    for part in parents:
        node = node[part]
    node[last] = value


def _canonical(value: Any) -> Any:
    """``value`` with every integral float an int: 1 and 1.0 are the same C.

    The typed params make both 1.0 (or both 1 for an int key). Floats become ints, never
    ints floats: exact at any size (``float(10**309)`` overflows), and the names of sets
    with ints (seeds, counts, ``C=10``) stay what they were.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    return value


def _identity(value: Any) -> str:
    """Equal values, equal text: what a value given twice, and a set's name, compare."""
    return json.dumps(_canonical(value), sort_keys=True, default=str)


def set_name(values: Iterable[tuple[str, Any]]) -> str:
    """The experiment name of a parameter set: the same on every machine, in any key order.

    Equal values give equal names (``C=1`` and ``C=1.0``), as they are one set to the grid.
    """
    canonical = _identity({key: value for key, value in values})
    return NAME_PREFIX + hashlib.sha256(canonical.encode()).hexdigest()[:10]


OPENERS, CLOSERS = "[({", "])}"
# A grid value is a list of lists at most; Hydra's parser recurses per bracket, so a
# few thousand of them end in RecursionError after seconds. Refused before it parses.
MAX_NESTING = 16


def split_grid(grid: str) -> list[str]:
    """The overrides of a grid: split at whitespace outside quotes and brackets.

    Quotes stay in the tokens, for Hydra: ``key='a b',c`` is one override whose first
    value is ``a b`` (``shlex`` would drop the quotes and split the value at its comma).
    """
    tokens, current, quote, depth, escaped = [], [], "", 0, False
    for char in grid:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in OPENERS or char in CLOSERS:
            depth += 1 if char in OPENERS else -1
            if depth > MAX_NESTING:
                raise ChurnError(f"grid: brackets nested deeper than {MAX_NESTING} levels")
        elif char.isspace() and depth <= 0:
            tokens.append("".join(current))
            current = []
            continue
        current.append(char)
    if quote:
        raise ChurnError(f"grid: a {quote} quote is not closed")
    tokens.append("".join(current))
    return [token for token in tokens if token]


DVC_YAML = "dvc.yaml"
INTERPOLATED = re.compile(r"\$\{\s*([\w.-]+)\s*\}")


def stage_keys(pipeline: Mapping[str, Any]) -> frozenset[str]:
    """The params.yaml keys (or sections) a stage of ``dvc.yaml`` reads.

    Its ``params:`` entries of params.yaml, and every ``${...}`` the stages interpolate
    (``paths.*``, ``source.out``): changing any other key reruns nothing.
    """
    keys: set[str] = set()
    for stage in (pipeline.get("stages") or {}).values():
        for entry in (stage or {}).get("params") or []:
            if isinstance(entry, str):
                keys.add(entry)
            elif isinstance(entry, Mapping):
                keys.update(k for name, ks in entry.items() if name == PARAMS_FILE for k in ks)
        keys.update(INTERPOLATED.findall(json.dumps(stage)))
    return frozenset(keys)


def _read_by_a_stage(key: str, read: Collection[str] | None) -> None:
    """Raise unless a stage reads ``key`` (itself, or a section holding it)."""
    if read is None:
        return
    parts = key.split(".")
    if not any(".".join(parts[:depth]) in read for depth in range(1, len(parts) + 1)):
        raise ChurnError(
            f"grid: {clip(key)}: no stage of {DVC_YAML} reads it: every set would be the "
            f"committed run (the stages read keys of: "
            f"{', '.join(sorted({known.split('.')[0] for known in read}))})"
        )


def _grid_choices(
    grid: str, raw: Mapping[str, Any], limit: int, read: Collection[str] | None = None
) -> list[tuple[str, list[tuple[str, Any]]]]:
    tokens = split_grid(grid)
    if not tokens:
        raise ChurnError("grid: empty: give KEY=VALUE[,VALUE...] for each key to sweep")
    parser = _parser()
    grid_keys: list[tuple[str, list[tuple[str, Any]]]] = []
    for token in tokens:
        key, choices = _choices(parser, token, limit)
        if any(key == known for known, _ in grid_keys):
            raise ChurnError(f"grid: {clip(key)} given twice: list all its values once, a,b,c")
        _leaf(raw, key)
        _read_by_a_stage(key, read)
        distinct: set[str] = set()
        for text, value in choices:
            if _identity(value) in distinct:
                raise ChurnError(f"grid: {clip(key)}: value {clip(text)} given twice")
            distinct.add(_identity(value))
        grid_keys.append((key, choices))
    return grid_keys


def plan(
    grid: str,
    raw: Mapping[str, Any],
    max_sets: int = MAX_SETS,
    read: Collection[str] | None = None,
) -> list[ParamSet]:
    """Every parameter set of ``grid``, checked against the params, in the grid's order.

    Args:
        grid: Whitespace-separated Hydra overrides, ``KEY=V1,V2,...`` (or ``range(...)``,
            ``choice(...)``); quote a value that holds spaces.
        raw: ``params.yaml`` as a plain mapping: every key must be one of its values.
        max_sets: The most sets (experiments) the product may have.
        read: The keys a stage reads (:func:`stage_keys`); None: not checked.

    Raises:
        ChurnError: One line naming the key or value: unreadable, unknown key, a
            section, a key no stage reads, a value given twice, a key given twice, a
            value the typed params reject, a slice that is not a declared feature, an
            empty grid or more than ``max_sets`` sets.
    """
    grid_keys = _grid_choices(grid, raw, max_sets, read)
    size = math.prod(len(choices) for _, choices in grid_keys)
    if size > max_sets:
        shape = " x ".join(str(len(choices)) for _, choices in grid_keys)
        raise ChurnError(f"grid: {shape} = {size} sets, more than the limit of {max_sets}")
    sets = []
    for combination in itertools.product(*(choices for _, choices in grid_keys)):
        values = tuple(
            (key, value) for (key, _), (_, value) in zip(grid_keys, combination, strict=True)
        )
        candidate = copy.deepcopy(dict(raw))
        for key, value in values:
            _set(candidate, key, value)
        # The typed params reject a bad value by key; evaluate's slices check needs them.
        params = parse_params(candidate, "grid")
        _check_slices(params)
        if any(key == "source.out" or key.startswith("paths.") for key, _ in values):
            check_untracked(params, "grid")  # a stage would write over the file before DVC refuses
        overrides = tuple(
            f"{key}={text}" for (key, _), (text, _) in zip(grid_keys, combination, strict=True)
        )
        sets.append(ParamSet(set_name(values), overrides, values))
    return sets


def _check_slices(params: Params) -> None:
    """``evaluate.slices`` must name features: evaluate's check, made before any run.

    Only declared features can be checked: ``data.features: infer`` takes them from the
    data, which a plan does not read (prepare checks the slices first in the run).
    """
    features = params.data.features
    if features == "infer":
        return
    try:
        check_slices(list(params.evaluate.slices), list(features), "data.features")
    except ChurnError as err:  # said of params.yaml: here the grid set the value
        raise ChurnError("grid: " + str(err).removeprefix(f"{PARAMS_FILE}: ")) from None


def matrix(sets: Sequence[ParamSet]) -> dict[str, list[dict[str, str]]]:
    """The GitHub Actions matrix: one ``include`` entry (name, label) per set."""
    return {"include": [{"name": s.name, "label": s.label} for s in sets]}


def find(sets: Sequence[ParamSet], name: str) -> ParamSet:
    """The set called ``name``; a name the grid does not produce is an error."""
    for candidate in sets:
        if candidate.name == name:
            return candidate
    raise ChurnError(f"sweep: no set of this grid is named {clip(repr(name))}")


@dataclass(frozen=True)
class Result:
    """What ``dvc exp show`` says about one experiment."""

    name: str
    rev: str
    params: Mapping[str, Any]  # params.yaml as the experiment ran it
    metrics: Mapping[str, Any] | None  # its metrics file; None: none, or the run never finished


# States of a run that has no results of its own: dvc exp show gives a queued, running or
# failed run the metrics of the commit it started from (a failed one also an "error").
UNFINISHED = frozenset({"queued", "running", "failed"})


def _finished(group: Mapping[str, Any], rev: Mapping[str, Any]) -> bool:
    """Whether the metrics ``dvc exp show`` gives ``rev`` (of ``group``) are its run's own."""
    state = (group.get("executor") or {}).get("state")
    return not rev.get("error") and state not in UNFINISHED


def _file_data(data: Mapping[str, Any], kind: str, path: str) -> Mapping[str, Any] | None:
    """A file's data in ``dvc exp show --json``; ``reports/`` and ``./reports`` are one folder.

    params.yaml may spell ``paths.reports`` either way, and DVC keys the file as it
    resolved it: looked up as written, every set of a sweep read as "no results".
    """
    files = data.get(kind) or {}
    found = files.get(path)
    if found is None:
        wanted = posixpath.normpath(path)
        found = next((v for k, v in files.items() if posixpath.normpath(k) == wanted), None)
    return (found or {}).get("data")


def results(
    shown: Sequence[Mapping[str, Any]],
    metrics_file: str,
    param_sets: Sequence[ParamSet] = (),
) -> dict[str, Result]:
    """Named experiments in ``dvc exp show --json`` output, by name.

    A run that failed, or is queued or running, has no metrics here (None): dvc shows it
    with those of the commit it started from.

    Args:
        shown: The parsed JSON: one entry per baseline commit (and the workspace), each
            with its experiments under ``experiments[].revs[]``.
        metrics_file: The metrics file to read, e.g. ``reports/metrics.json``; an
            experiment that ran with another ``paths.reports`` is read from its own.
        param_sets: The sweep's sets: of two experiments of one name, the one that ran
            the set's values stands for it.
    """
    sets = {param_set.name: param_set for param_set in param_sets}
    found: dict[str, Result] = {}
    for baseline in shown:
        for group in baseline.get("experiments") or []:
            for rev in group.get("revs") or []:
                name = rev.get("name") or group.get("name")
                if not name:
                    continue
                data = rev.get("data") or {}
                params = _file_data(data, "params", PARAMS_FILE) or {}
                own = _own_metrics_file(params, metrics_file)
                result = Result(
                    name,
                    str(rev.get("rev", "")),
                    params,
                    _file_data(data, "metrics", own) if _finished(group, rev) else None,
                )
                if _better(result, found.get(name), sets.get(name)):
                    found[name] = result
    return found


def _own_metrics_file(params: Mapping[str, Any], default: str) -> str:
    """The metrics file an experiment wrote: under its own ``paths.reports``, if swept."""
    reports = _dotted(params, "paths.reports", None)
    return f"{reports}/metrics.json" if isinstance(reports, str) else default


def _better(result: Result, held: Result | None, param_set: ParamSet | None) -> bool:
    """Whether ``result`` should stand for its name rather than ``held``.

    A failed queue entry of the same name must not hide a finished run, and a run of
    other values (an older queue entry, or a hand-made experiment of the name) must not
    hide the run of this set's values.
    """
    if held is None:
        return True
    if param_set is not None and ran_as(held, param_set) != ran_as(result, param_set):
        return ran_as(result, param_set)
    return held.metrics is None


def ran_as(result: Result, param_set: ParamSet) -> bool:
    """Whether ``result`` ran with every value of ``param_set`` (as its name promises)."""
    return all(
        _identity(_dotted(result.params, key, None)) == _identity(value)
        for key, value in param_set.values
    )


def baseline_metrics(
    shown: Sequence[Mapping[str, Any]], metrics_file: str
) -> Mapping[str, Any] | None:
    """The committed baseline's metrics (the first entry that is not the workspace)."""
    for baseline in shown:
        if baseline.get("rev") != "workspace":
            return _file_data(baseline.get("data") or {}, "metrics", metrics_file)
    return None


@dataclass(frozen=True)
class Row:
    """One set of the sweep in the table; ``metrics`` is None when it has no results."""

    param_set: ParamSet
    shown: tuple[Any, ...]  # each grid key's value as the experiment ran it
    metrics: Mapping[str, Any] | None


@dataclass(frozen=True)
class Table:
    """The sorted rows, the best one, and the names that have no results."""

    metric: str
    rows: tuple[Row, ...]
    best: Row | None
    missing: tuple[str, ...]
    # Of ``missing``: experiments of the set's name that ran other values (never ranked).
    differ: tuple[str, ...] = ()


def _dotted(mapping: Mapping[str, Any], key: str, default: Any) -> Any:
    node: Any = mapping
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def _higher_is_better(metric: str) -> bool:
    # churn.core.stats imports scikit-learn (1-2 s): plan and run, on every machine of a
    # sweep, need none of it, so only the table imports it.
    # DIRECTIONS, not HIGHER_IS_BETTER: release.metric may be a decision metric too
    # (profit, lift_at_k, capture_at_k), which ranked as a KeyError traceback.
    from churn.core.stats import DIRECTIONS

    return DIRECTIONS[metric]


def _metric(metrics: Mapping[str, Any] | None, metric: str) -> float | None:
    value = None if metrics is None else metrics.get(metric)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    # NaN would sort anywhere (every comparison is false): no number, ranked with the missing.
    return float(value) if math.isfinite(value) else None


def rank(sets: Sequence[ParamSet], found: Mapping[str, Result], metric: str) -> Table:
    """Rows for every set, best ``metric`` first (ties by name), sets without it last."""
    higher = _higher_is_better(metric)
    rows = []
    differ = []
    for param_set in sets:
        result = found.get(param_set.name)
        shown = tuple(
            _dotted(result.params, key, value) if result else value
            for key, value in param_set.values
        )
        metrics = result.metrics if result else None
        if result is not None and not ran_as(result, param_set):
            differ.append(param_set.name)  # its name, other values: not this set's result
            metrics = None
        rows.append(Row(param_set, shown, metrics))

    def order(row: Row) -> tuple[int, float, str]:
        value = _metric(row.metrics, metric)
        if value is None:
            return (1, 0.0, row.param_set.name)
        return (0, -value if higher else value, row.param_set.name)

    rows.sort(key=order)
    scored = [row for row in rows if _metric(row.metrics, metric) is not None]
    missing = tuple(row.param_set.name for row in rows if _metric(row.metrics, metric) is None)
    return Table(metric, tuple(rows), scored[0] if scored else None, missing, tuple(differ))


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return clip(text, 40).replace("|", "\\|")


def _number(metrics: Mapping[str, Any] | None, metric: str) -> str:
    value = _metric(metrics, metric)
    return MISSING if value is None else f"{value:.4f}"


def columns(metric: str) -> list[str]:
    """The metric columns: the headline metric first, then the other headline metrics."""
    from churn.core.stats import HEADLINE

    return [metric, *(name for name in HEADLINE if name != metric)]


def markdown(table: Table, baseline: Mapping[str, Any] | None = None) -> str:
    """The table as Markdown, with the best set named and the missing ones listed."""
    metric = table.metric
    keys = [key for key, _ in table.rows[0].param_set.values] if table.rows else []
    metric_columns = columns(metric)
    direction = "higher" if _higher_is_better(metric) else "lower"
    lines = [
        f"### Sweep: {len(table.rows)} experiments, by {metric} ({direction} is better)",
        "",
        "| rank | experiment | " + " | ".join([*keys, *metric_columns]) + " |",
        "|---:|---|" + "---|" * len(keys) + "---:|" * len(metric_columns),
    ]
    for place, row in enumerate(table.rows, start=1):
        rank_text = str(place) if _metric(row.metrics, metric) is not None else MISSING
        cells = [rank_text, f"`{row.param_set.name}`", *map(_show, row.shown)]
        cells += [_number(row.metrics, name) for name in metric_columns]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if table.best is None:
        lines.append("**No experiment of this sweep has results.**")
    else:
        best = table.best
        lines.append(
            f"**Best: `{best.param_set.name}`**, {metric} "
            f"{_number(best.metrics, metric)}: `{best.param_set.label}`. "
            f"Bring it into the workspace with `dvc exp apply {best.param_set.name}`."
        )
    if baseline is not None and _metric(baseline, metric) is not None:
        lines += ["", f"Baseline (params.yaml as committed): {metric} {_number(baseline, metric)}."]
    absent = [name for name in table.missing if name not in table.differ]
    if absent:
        names = ", ".join(f"`{name}`" for name in absent)
        lines += ["", f"No {metric} (failed, or not pushed): {names}."]
    if table.differ:
        names = ", ".join(f"`{name}`" for name in table.differ)
        lines += [
            "",
            f"Ran other values than their names say (an older or hand-made experiment of "
            f"the name; not ranked): {names}.",
        ]
    return "\n".join(lines) + "\n"


# --- thin wrappers over dvc: each function below only gathers inputs and runs commands ---


def _dvc(*args: str, capture: bool = False) -> subprocess.CompletedProcess:
    """Run ``dvc ARGS`` (an argument list, never a shell line).

    Uncaptured, its output goes to our stderr: stdout holds only the command's product
    (the matrix, the table), so ``make sweep > table.md`` works.
    """
    log.info("dvc %s", " ".join(shlex.quote(arg) for arg in args))
    if capture:
        # DVC writes UTF-8; a stray byte stays an escape for io.parse_json to name.
        return subprocess.run(
            ["dvc", *args],
            capture_output=True,
            encoding="utf-8",
            errors="surrogateescape",
            check=False,
            pass_fds=io.held_locks(),
        )
    return subprocess.run(
        ["dvc", *args], stdout=sys.stderr, text=True, check=False, pass_fds=io.held_locks()
    )


def _require(done: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    if done.returncode != 0:
        detail = (done.stderr or "").strip().splitlines()[-1:] if done.stderr else []
        raise ChurnError(f"{what} exited {done.returncode}" + (f": {detail[0]}" if detail else ""))
    return done


def load_plan(grid: str, max_sets: int = MAX_SETS) -> list[ParamSet]:
    """:func:`plan` against the workspace's ``params.yaml`` (checked as a whole first)."""
    load_params()
    pipeline = io.read_yaml(io.require_file(DVC_YAML, hint=" (a sweep runs its stages)"))
    return plan(grid, io.read_yaml(PARAMS_FILE), max_sets, stage_keys(pipeline))


def plan_json(grid: str, max_sets: int = MAX_SETS) -> str:
    """``churn sweep plan``: the matrix as one line of JSON."""
    sets = load_plan(grid, max_sets)
    log.info("%d sets: %s", len(sets), "; ".join(s.label for s in sets))
    return json.dumps(matrix(sets), separators=(",", ":"))


def _set_args(param_set: ParamSet) -> list[str]:
    return [arg for override in param_set.overrides for arg in ("-S", override)]


@contextlib.contextmanager
def workspace_alone(lock: Path = WORKSPACE_LOCK) -> Iterator[None]:
    """Hold the workspace while ``dvc exp run`` edits its params.yaml; refuse if another does.

    DVC applies ``-S`` to params.yaml before it takes its own lock: a second run started
    during the first rewrote the first's params, which then trained on the second's.
    """
    lock.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(io.file_lock(lock, wait=False))
        except BlockingIOError:
            raise ChurnError(
                "another churn sweep run or queue is running in this workspace: wait for it "
                "(one workspace runs one experiment at a time; make sweep queues them all)"
            ) from None
        yield


# DVC runs an experiment on the workspace as it is: an uncommitted params.yaml edit went
# into every set, unnamed, and the table credited it to the set's values.
UNCOMMITTED = (
    "a sweep runs the committed params plus each set's values (what its name, the table's "
    "baseline and every other machine take it to be); commit or stash first"
)


def run(grid: str, name: str) -> None:
    """``churn sweep run``: run the set called ``name`` as ``dvc exp run --name NAME -S ...``."""
    param_set = find(load_plan(grid), name)
    integrity.check_dvc_config()
    with workspace_alone():
        integrity.check_committed(UNCOMMITTED)  # under the lock: another run edits params.yaml
        _require(_dvc("exp", "run", "--name", name, *_set_args(param_set)), f"dvc exp run {name}")


def _names_at_head(*remote: str) -> set[str]:
    done = _require(_dvc("exp", "list", *remote, "--names-only", capture=True), "dvc exp list")
    return set(done.stdout.split())


def pull(grid: str, remote: str) -> list[str]:
    """``churn sweep pull``: pull this grid's experiments (and their outputs) from ``remote``.

    Returns the names the git remote does not have (failed or not pushed), then those
    that came without their outputs: ``dvc exp pull`` only warns when the DVC remote
    lacks them (pushed with ``--no-cache``, or the push of the data failed).
    """
    sets = load_plan(grid)
    integrity.check_dvc_config()
    there = _names_at_head(remote)
    names = [s.name for s in sets if s.name in there]
    absent = [s.name for s in sets if s.name not in there]
    if absent:
        log.warning("%d of %d sets are not on %s: %s", len(absent), len(sets), remote, absent)
    if not names:
        return absent
    _require(_dvc("exp", "pull", "--force", remote, *names), "dvc exp pull")
    lacking = {name: paths for name, paths in _uncached(names).items() if paths}
    if lacking:
        log.warning(
            "%d of %d sets came without their outputs (the DVC remote lacks them; `dvc exp "
            "push` sends them unless --no-cache): %s",
            len(lacking),
            len(sets),
            "; ".join(f"{name} ({listed(paths)})" for name, paths in lacking.items()),
        )
    return absent + list(lacking)


def uncached(outputs: Iterable[tuple[str, Sequence[str]]], cached: Any) -> list[str]:
    """The paths among ``outputs`` (path, the objects its data needs) not all ``cached``."""
    return [path for path, oids in outputs if not all(cached(oid) for oid in oids)]


def listed(paths: Sequence[str], limit: int = 3) -> str:
    """The first ``limit`` paths, and how many more."""
    more = len(paths) - limit
    return ", ".join(paths[:limit]) + (f" and {more} more" if more > 0 else "")


def _uncached(names: Sequence[str]) -> dict[str, list[str]]:
    """Per experiment at HEAD: its cached outputs whose data the local DVC cache lacks."""
    from dvc.repo import Repo
    from dvc.repo.experiments.refs import ExpRefInfo

    with Repo() as repo:
        head = repo.scm.get_rev()
        revs = {name: repo.scm.get_ref(str(ExpRefInfo(head, name))) for name in names}
        return {name: _outputs_lacking(repo, rev) for name, rev in revs.items() if rev}


def _outputs_lacking(repo: Any, rev: str) -> list[str]:
    from dvc_data.hashfile.tree import Tree

    odb = repo.cache.local
    outputs = []
    for _ in repo.brancher(revs=[rev], workspace=False):
        for out in repo.index.outs:
            info = out.hash_info
            if not out.use_cache or not info.value:
                continue
            oids = [info.value]
            if info.isdir and odb.exists(info.value):  # the listing is there: each file too
                oids += [entry.value for _, (_, entry) in Tree.load(odb, info).iteritems()]
            outputs.append((str(out.def_path), oids))
    return uncached(sorted(outputs), odb.exists)


def table(grid: str) -> tuple[str, Table]:
    """The Markdown table of this grid's experiments at HEAD, from ``dvc exp show --json``."""
    params = load_params()
    sets = load_plan(grid)
    integrity.check_dvc_config()
    done = _require(_dvc("exp", "show", "--json", capture=True), "dvc exp show")
    shown = io.parse_json(done.stdout, "dvc exp show --json")
    metrics_file = f"{params.paths.reports}/metrics.json"
    ranked = rank(sets, results(shown, metrics_file, sets), params.release.metric)
    return markdown(ranked, baseline_metrics(shown, metrics_file)), ranked


def print_table(grid: str) -> int:
    """``churn sweep table``: print it; exit 3 when some sets have no results."""
    text, ranked = table(grid)
    print(text, end="")  # noqa: T201 (the table is the output)
    return EXIT_MISSING if ranked.missing else 0


def queued_entries(status: str) -> list[str]:
    """The names of the entries ``dvc queue status`` lists as Queued, in its order.

    Its table reads ``Task  Name  Created  Status``; Created may hold spaces (``09:46 PM``),
    so the name is the second field and the status the last.
    """
    rows = (line.split() for line in status.splitlines())
    return [row[1] for row in rows if len(row) >= 3 and row[0] != "Task" and row[-1] == "Queued"]


def _refuse_queued() -> None:
    """Refuse a sweep while DVC's queue holds entries: ``--run-all`` would run them too.

    A leftover entry (an interrupted sweep's, or one queued by hand) ran beside the sweep,
    its compute spent unasked, and one of a set's name with other values stood in its row.
    """
    done = _require(_dvc("queue", "status", capture=True), "dvc queue status")
    waiting = queued_entries(done.stdout)
    if waiting:
        raise ChurnError(
            f"DVC's queue already holds {len(waiting)} queued experiment(s) "
            f"({clip(listed(waiting), 200)}), which a sweep would run too: run them "
            "(dvc queue start) or remove them (dvc queue remove --queued) first"
        )


def queue(grid: str, jobs: int) -> int:
    """``churn sweep queue`` (``make sweep``): every set on DVC's queue, run, then the table.

    Refused while the queue holds other entries (:func:`_refuse_queued`). A set that
    already has an experiment of its name at HEAD is removed first, so the table shows
    this run's results, not an older one's.
    """
    if not 1 <= jobs <= MAX_SETS:
        # Each job is a DVC queue worker process: more than the sets is never useful.
        raise ChurnError(f"--jobs {jobs}: must be 1 to {MAX_SETS}")
    sets = load_plan(grid)
    integrity.check_dvc_config()
    # DVC's queue runs each set in a copy of the repository and saves nothing from one
    # made of a shallow clone: every set would show "Success" and have no results.
    integrity.check_full_history("DVC's experiment queue")
    with workspace_alone():
        integrity.check_committed(UNCOMMITTED)
        _refuse_queued()
        stale = sorted(_names_at_head() & {s.name for s in sets})
        if stale:
            _require(_dvc("exp", "remove", *stale), "dvc exp remove")
        for param_set in sets:
            args = ("exp", "run", "--queue", "--name", param_set.name, *_set_args(param_set))
            _require(_dvc(*args), f"dvc exp run --queue {param_set.name}")
    done = _dvc("exp", "run", "--run-all", "--jobs", str(jobs))
    if done.returncode != 0:
        log.warning(
            "dvc exp run --run-all exited %d: the table shows what finished", done.returncode
        )
    return print_table(grid)
