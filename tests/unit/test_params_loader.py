"""The YAML loader behind params.yaml, dvc.yaml and dvc.lock against hostile files.

Each refusal is one line naming the file (and the line where known), raised before any
object is built, after a bounded number of parser events and in little memory, whatever
the file tries to expand to. The bounds are counts, not seconds: a timed bound flaked on a
busy 2-core box (ruamel's 5,000 values under coverage took 1.03 CPU s against 1.0).
"""

import contextlib
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from churn.core import integrity, io
from churn.core.errors import ChurnError, clip
from churn.core.params import load_params
from conftest import REPO

LIMIT = io.MAX_YAML_BYTES
DEPTH = io.MAX_YAML_DEPTH
NODES = io.MAX_YAML_NODES
# Events a refusal may read: every value opened (NODES + 1 at most, the one over the
# limit included) and closed, plus the stream's and document's start. A check that read
# the whole file first would count 100,000 and more in the tests below.
EVENT_BOUND = 2 * NODES + 4


@contextlib.contextmanager
def counted_events() -> Iterator[list[int]]:
    """Count the events either parser hands out while the block runs: ``[n]``."""
    count = [0]

    def counting(events: Iterator) -> Iterator:
        for event in events:
            count[0] += 1
            yield event

    real_parse = yaml.parse

    class CountingYAML(io.YAML):
        def parse(self, stream):
            return counting(super().parse(stream))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(io.yaml, "parse", lambda *a, **k: counting(real_parse(*a, **k)))
        patch.setattr(io, "YAML", CountingYAML)
        yield count


def refused_traced(call: Callable[[], object]) -> tuple[str, int, int]:
    """What ``call`` is refused with: the message, the parser events read, peak traced bytes."""
    tracemalloc.start()
    try:
        with counted_events() as count, pytest.raises(ChurnError) as err:
            call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return str(err.value), count[0], peak


def billion_laughs(levels: int = 9) -> str:
    """The classic bomb, hung under prepare.seed: 9**levels strings from ~1 KB."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        refs = ",".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "prepare:\n  seed: {" + ", ".join(lines) + "}\n"


def refused(data: str | bytes, origin: str = "params.yaml") -> str:
    """The one-line message parse_yaml refuses ``data`` with, within EVENT_BOUND events."""
    with counted_events() as count, pytest.raises(ChurnError) as err:
        io.parse_yaml(data, origin)
    assert count[0] <= EVENT_BOUND
    message = str(err.value)
    assert "\n" not in message
    return message


def write(tmp_path: Path, data: str | bytes, name: str = "params.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_billion_laughs_fails_fast_and_small(tmp_path):
    path = write(tmp_path, billion_laughs())
    message, count, peak = refused_traced(lambda: load_params(path))
    assert message == f"{path}: line 2: YAML anchor &a0 not allowed (params never need them)"
    # stream, document, three mappings and their three keys, then the anchored sequence
    assert count == 9
    assert peak < 20_000_000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seed: &s 42\n", "line 1: YAML anchor &s not allowed"),
        ("a: 1\nb:\n  c: &m {d: 1}\n", "line 3: YAML anchor &m not allowed"),
        ("a: 1\nb: &l [1]\n", "line 2: YAML anchor &l not allowed"),
        ("a: 1\nb: *x\n", "line 2: YAML alias *x not allowed"),  # even one that is undefined
        ("a: {<<: {b: 1}}\n", "line 1: YAML merge key (<<) not allowed"),
        ("a:\n  <<: {b: 1}\n  c: 2\n", "line 2: YAML merge key (<<) not allowed"),
        ("a:\n  !!merge x: {b: 1}\n", "line 2: YAML merge key (<<) not allowed"),
    ],
)
def test_anchors_aliases_and_merge_keys_are_refused(text, message):
    assert refused(text) == f"params.yaml: {message} (params never need them)"


def test_a_long_anchor_name_is_clipped():
    name = "n" * 5000
    assert refused(f"a: &{name} 1\n") == (
        f"params.yaml: line 1: YAML anchor &{'n' * 40}... (5000 characters) not allowed "
        "(params never need them)"
    )


def test_a_quoted_merge_key_or_ampersand_is_just_text():
    assert io.parse_yaml('"<<": 1\na: "<<"\nb: "&x *y"\nc: !!str <<\n') == {
        "<<": 1,
        "a": "<<",
        "b": "&x *y",
        "c": "<<",
    }


@pytest.mark.parametrize(
    ("opener", "closer"),
    [("[", "]"), ("{a: ", "}")],
    ids=["sequences", "mappings"],
)
def test_100k_deep_flow_nesting_fails_fast(opener, closer):
    text = opener * 100_000 + closer * 100_000
    assert refused(text) == f"params.yaml: line 1: nested deeper than {DEPTH} levels"


def nested(depth: int, style: str) -> str:
    """A document nested exactly ``depth`` collections deep, holding one 7."""
    if style == "flow":
        return "[" * depth + "7" + "]" * depth
    if style == "block mapping":
        return "".join(f"{'  ' * i}k:\n" for i in range(depth - 1)) + f"{'  ' * (depth - 1)}k: 7\n"
    return "".join(f"{'  ' * i}-\n" for i in range(depth - 1)) + f"{'  ' * (depth - 1)}- 7\n"


def innermost(value: object) -> object:
    while isinstance(value, list | dict):
        value = value[0] if isinstance(value, list) else value["k"]
    return value


@pytest.mark.parametrize("style", ["flow", "block mapping", "block sequence"])
def test_nesting_at_the_limit_loads_and_one_more_is_refused(style):
    assert innermost(io.parse_yaml(nested(DEPTH, style))) == 7
    message = refused(nested(DEPTH + 1, style))
    assert message.startswith("params.yaml: line ")
    assert message.endswith(f": nested deeper than {DEPTH} levels")


def test_depth_counts_back_down_one_level_per_closed_collection():
    """Siblings at the limit load; a sibling one level deeper is refused after them.

    Guards against the count being reset, or dropped two levels, when a collection
    closes: either would let the deeper sibling through.
    """
    outer = "[" * (DEPTH - 1)
    at_limit = io.parse_yaml(outer + "[1], [2]" + "]" * (DEPTH - 1))
    assert innermost(at_limit) == 1
    assert refused(outer + "[1], [[2]]" + "]" * (DEPTH - 1)) == (
        f"params.yaml: line 1: nested deeper than {DEPTH} levels"
    )


def test_the_refusal_names_the_line_of_the_deepest_collection():
    assert refused(nested(DEPTH + 1, "block sequence")) == (
        f"params.yaml: line {DEPTH + 1}: nested deeper than {DEPTH} levels"
    )


def test_depth_counts_open_collections_not_all_of_them():
    """Many collections side by side are one level each, however many there are."""
    text = "".join(f"k{i}: [[1], {{a: [2]}}]\n" for i in range(3 * DEPTH))
    assert io.parse_yaml(text)[f"k{3 * DEPTH - 1}"] == [[1], {"a": [2]}]


def test_a_file_at_the_size_limit_loads(tmp_path):
    body = b"#" + b"x" * (LIMIT - 6) + b"\nb: 1"  # the last byte matters
    assert len(body) == LIMIT
    assert io.read_yaml(write(tmp_path, body)) == {"b": 1}
    assert io.parse_yaml(body) == {"b": 1}


def test_a_file_one_byte_over_the_limit_is_refused_unread(tmp_path):
    path = write(tmp_path, b"#" + b"x" * (LIMIT - 5) + b"\nb: 1")
    message, count, peak = refused_traced(lambda: io.read_yaml(path))
    assert (count, peak < LIMIT // 4) == (0, True)  # neither parsed nor read in
    assert message == f"{path}: {LIMIT + 1} bytes, over the {LIMIT}-byte limit for YAML"


def test_a_huge_sparse_file_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "params.yaml"
    with path.open("wb") as fh:
        fh.truncate(4 * 1024**3)  # 4 GiB of holes: reading it would take seconds and memory
    message, count, peak = refused_traced(lambda: load_params(path))
    assert "4294967296 bytes, over" in message
    assert count == 0
    assert peak < 5_000_000


def test_text_over_the_limit_is_refused_by_its_utf8_size():
    """Counted in bytes, as the file check is: 2-byte characters fill the limit at half."""
    assert io.parse_yaml("a: " + "é" * ((LIMIT - 3) // 2)) == {"a": "é" * ((LIMIT - 3) // 2)}
    assert refused("a: " + "é" * ((LIMIT - 3) // 2 + 1)) == (
        f"params.yaml: over the {LIMIT}-byte limit for YAML"
    )
    assert refused(b"a: " + b"x" * (LIMIT - 2)) == (
        f"params.yaml: over the {LIMIT}-byte limit for YAML"
    )


def test_latin1_bytes_are_refused_with_their_line(tmp_path):
    path = write(tmp_path, "a: 1\nb: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ChurnError) as err:
        load_params(path)
    assert str(err.value) == f"{path}: line 2: not UTF-8 (byte 0xe9); re-save the file as UTF-8"


def test_a_bad_byte_on_the_first_line_is_line_1():
    assert refused(b"\xff\nb: 1\n") == (
        "params.yaml: line 1: not UTF-8 (byte 0xff); re-save the file as UTF-8"
    )


def test_text_holding_a_lone_surrogate_is_refused_with_its_line():
    """Text no UTF-8 file can hold (a lone surrogate) is one line, not an encoder's error.

    The line counts the newlines before it: the first character may be one, later ones
    do not count.
    """
    assert refused("\nb: \ud800\nc: 1\nd: 2\n") == (
        "params.yaml: line 2: not UTF-8 text (a lone surrogate U+D800)"
    )
    with pytest.raises(ChurnError) as err:
        io.parse_json('{"a": "\ud800"}', "HEAD:metrics.json")
    assert str(err.value) == "HEAD:metrics.json: line 1: not UTF-8 text (a lone surrogate U+D800)"


def test_a_stray_byte_after_a_leading_newline_is_on_line_2():
    assert refused(b"\nb: caf\xe9\nc: 1\n") == (
        "params.yaml: line 2: not UTF-8 (byte 0xe9); re-save the file as UTF-8"
    )


def test_command_output_with_a_stray_byte_names_the_byte_as_a_file_would():
    """Command output keeps a stray byte as an escape; the parser names it like the file's."""
    shown = b"a: 1\nb: caf\xe9\n".decode("utf-8", "surrogateescape")
    assert (
        refused(shown)
        == refused(b"a: 1\nb: caf\xe9\n")
        == ("params.yaml: line 2: not UTF-8 (byte 0xe9); re-save the file as UTF-8")
    )
    with pytest.raises(ChurnError) as err:
        io.parse_json('{"a": "caf\udce9"}', "HEAD:metrics.json")
    assert str(err.value) == (
        "HEAD:metrics.json: line 1: not UTF-8 (byte 0xe9); re-save the file as UTF-8"
    )


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    """YAML allows a BOM at the start and DVC reads it; Windows editors write one."""
    plain = (REPO / "params.yaml").read_bytes()
    assert load_params(write(tmp_path, b"\xef\xbb\xbf" + plain)) == load_params(
        REPO / "params.yaml"
    )


def test_empty_input_is_an_empty_mapping():
    assert io.parse_yaml(b"") == {}
    assert io.parse_yaml(None) == {}
    assert io.parse_yaml("# only a comment\n") == {}


def test_yaml_errors_are_one_clipped_line():
    """The duplicate-key error echoes the value: the message keeps 300 characters."""
    message = refused(f'a: 1\na: "{"k" * 5000}"\n')
    assert message.startswith('params.yaml: not valid YAML (while constructing a mapping in "')
    assert message.endswith("kkkk... (5236 characters))")  # without ruamel's advice
    assert len(message) == len("params.yaml: not valid YAML (") + 300 + len(
        "... (5236 characters))"
    )


def flat_list(values: int) -> str:
    """A flow sequence holding ``values`` - 1 scalars: ``values`` values with itself."""
    return "[" + "1," * (values - 2) + "1]"


def test_values_at_the_limit_load_and_one_more_is_refused():
    assert len(io.parse_yaml(flat_list(NODES))) == NODES - 1
    assert refused(flat_list(NODES + 1)) == f"params.yaml: line 1: more than {NODES} values"


def test_a_mapping_counts_its_keys_and_values():
    text = "{" + ", ".join(f"k{i}: {i}" for i in range(NODES // 2)) + "}"
    assert refused(text) == f"params.yaml: line 1: more than {NODES} values"
    assert len(io.parse_yaml("{" + text[1:].split(", ", 1)[1])) == NODES // 2 - 1


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a: [" + "x, " * 100_000 + "\nb: }", 1),
        (": [" + "x, " * 100_000 + "]", 1),
        ("- x\n" * 100_000, NODES),
    ],
    ids=["invalid", "ruamel-only", "block"],
)
def test_many_values_fail_fast_whichever_parser_reads_them(text, line):
    assert refused(text) == f"params.yaml: line {line}: more than {NODES} values"


def test_a_huge_value_gives_a_short_message(tmp_path):
    text = (REPO / "params.yaml").read_text(encoding="utf-8")
    huge = "9" * 500_000
    path = write(tmp_path, text.replace("seed: 42", f"seed: '{huge}'", 1))
    with pytest.raises(ChurnError) as err:
        load_params(path)
    assert str(err.value) == (
        f"{path}: prepare.seed: Input should be a valid integer "
        f"(got '{'9' * 79}... (500002 characters))"
    )


def test_a_huge_unknown_key_gives_a_short_message(tmp_path):
    text = (REPO / "params.yaml").read_text(encoding="utf-8")
    key = "k" * 5000
    path = write(tmp_path, text.replace("prepare:\n", f"prepare:\n  ? {key}\n  : 1\n", 1))
    with pytest.raises(ChurnError) as err:
        load_params(path)
    assert str(err.value).startswith(
        f"{path}: prepare.{'k' * 192}... (5008 characters): unknown key (allowed: seed, "
    )


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("abc", 3, "abc"),
        ("abcd", 3, "abc... (4 characters)"),
        ("x" * 80, None, "x" * 80),
        ("x" * 81, None, "x" * 80 + "... (81 characters)"),
        (12345, 4, "1234... (5 characters)"),
    ],
)
def test_clip_boundaries(text, limit, expected):
    assert (clip(text) if limit is None else clip(text, limit)) == expected


def test_dvc_lock_goes_through_the_same_loader(tmp_path):
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages: &s {}\n", encoding="utf-8")
    with pytest.raises(ChurnError) as err:
        integrity.read_lock(root=tmp_path)
    assert str(err.value) == (
        f"{tmp_path / 'dvc.lock'}: line 2: YAML anchor &s not allowed (params never need them)"
    )


def test_params_missing_in_a_subdirectory_of_the_project_says_where_it_is(tmp_path, monkeypatch):
    """In a subdirectory only "params.yaml: file not found" was said."""
    (tmp_path / "params.yaml").write_text("{}\n")
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "src" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "src" / "deep")
    with pytest.raises(ChurnError) as err:
        load_params()
    assert str(err.value) == (
        f"params.yaml: file not found here; the project is {tmp_path}: run churn there"
    )
    with pytest.raises(ChurnError) as err:  # a path of its own: nothing to add
        load_params(tmp_path / "src" / "params.yaml")
    assert str(err.value) == f"{tmp_path / 'src' / 'params.yaml'}: file not found"
    (tmp_path / "dvc.yaml").unlink()  # a params.yaml above, but no pipeline: no project
    with pytest.raises(ChurnError) as err:
        load_params()
    assert str(err.value) == "params.yaml: file not found"
