"""The bad-input corpus (tests/data/bad/).

prepare refuses each file with a precise message and a non-zero exit, and
leaves the previous outputs byte-identical.
"""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from churn.core import entry
from churn.stages import prepare
from conftest import REPO

BAD = Path(__file__).parent / "data" / "bad"
RAW = "data/raw/wa_churn.csv"
OUTPUTS = (
    "data/prepared/train.parquet",
    "data/prepared/test.parquet",
    "data/prepared/contract.json",
)


@pytest.fixture(scope="module")
def template(tmp_path_factory, params_raw, telco) -> Path:
    """A work dir whose outputs come from one good prepare run."""
    root = tmp_path_factory.mktemp("template")
    (root / "params.yaml").write_text(yaml.safe_dump(params_raw, sort_keys=False))
    (root / "data/raw").mkdir(parents=True)
    telco.to_csv(root / RAW, index=False)
    cwd = Path.cwd()
    os.chdir(root)
    try:
        assert entry.run(prepare.main) == 0
    finally:
        os.chdir(cwd)
    return root


def hashes(root: Path) -> dict[str, str]:
    return {rel: hashlib.md5((root / rel).read_bytes()).hexdigest() for rel in OUTPUTS}  # noqa: S324


@pytest.fixture
def workdir(template, tmp_path, monkeypatch) -> Path:
    work = tmp_path / "work"
    shutil.copytree(template, work)
    monkeypatch.chdir(work)
    return work


def run_prepare_on(work: Path, bad_file: str, capsys) -> tuple[int, str]:
    shutil.copyfile(BAD / bad_file, work / RAW)
    status = entry.run(prepare.main)
    return status, capsys.readouterr().err


CASES = {
    "empty.csv": [f"error: {RAW}: file is empty"],
    "header_only.csv": [f"error: {RAW}: header only, no data rows"],
    "missing_target.csv": [f"error: {RAW}: missing column(s) 'churn' (found: rownames, female,"],
    "missing_feature.csv": [f"error: {RAW}: missing column(s) 'tenure' (found: rownames, churn,"],
    "extra_column.csv": [
        f"error: {RAW}: unexpected column(s) 'promo_code': add them to data.features in "
        "params.yaml or remove them from the file"
    ],
    "semicolons.csv": [f"error: {RAW}: columns are separated by semicolons; expected commas"],
    "latin1.csv": [f"error: {RAW}: not UTF-8 (byte 0xe8 at offset "],
    "third_label.csv": [
        f"error: {RAW}: 1 data contract check(s) failed",
        "  churn: one of ['No', 'Yes']: 1 bad row(s) (row 5: 'Maybe')",
    ],
    "one_class.csv": [
        f"error: {RAW}: 1 data contract check(s) failed",
        "  churn: two classes needed to train and evaluate, found only ['No']",
    ],
    "text_in_numeric.csv": [
        f"error: {RAW}: 1 data contract check(s) failed",
        "  tenure: is a number: 1 bad row(s) (row 7: 'about a year')",
    ],
    "negative_tenure.csv": [
        f"error: {RAW}: 1 data contract check(s) failed",
        "  tenure: >= 0: 2 bad row(s) (row 4: -1, row 12: -12)",
    ],
    "missing_target_values.csv": [
        f"error: {RAW}: 1 data contract check(s) failed",
        "  churn: not null: 2 bad row(s) (row 8: nan, row 9: nan)",
    ],
    "duplicate_ids.csv": [
        f"error: {RAW}: 1 data contract check(s) failed",
        "  rownames: unique: 2 bad row(s) (row 10: 10, row 11: 10)",
    ],
    "short_rows.csv": [
        f"error: {RAW}: 2 line(s) do not have the header's 21 fields "
        "(line 6: 19 fields, line 10: 19 fields)"
    ],
    "repeated_header.csv": [f"error: {RAW}: the header is repeated as data row(s) 16"],
    "truncated.csv": [
        f"error: {RAW}: last line has 9 of 21 fields and no line end: the file looks truncated"
    ],
    "control_chars.csv": [
        f"error: {RAW}: 2 line(s) have control characters (line 12: U+0000, line 20: U+001B); "
        "only tab and LF or CRLF line ends are allowed"
    ],
}


@pytest.mark.parametrize("bad_file", sorted(CASES))
def test_bad_file_is_refused_and_outputs_survive(workdir, bad_file, capsys):
    before = hashes(workdir)
    status, err = run_prepare_on(workdir, bad_file, capsys)
    assert status == 1
    lines = err.splitlines()
    expected = CASES[bad_file]
    assert len(lines) == len(expected), err
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(start), err
    assert hashes(workdir) == before
    assert sorted(p.name for p in (workdir / "data/prepared").iterdir()) == [
        "contract.json",
        "test.parquet",
        "train.parquet",
    ]


def test_every_corpus_file_has_a_test():
    assert sorted(p.name for p in BAD.iterdir()) == sorted([*CASES, "quoted_newlines.csv"])


def test_quoted_newlines_and_commas_are_valid(workdir, capsys):
    # Row 6's payment method holds a quoted comma and newline: a category of its own,
    # refused as such until the contract lists it; then the file is valid.
    status, err = run_prepare_on(workdir, "quoted_newlines.csv", capsys)
    assert status == 1
    assert err.splitlines()[1:] == [
        "  payment_method: one of 'Bank transfer (automatic)', 'Credit card (automatic)', "
        "'Electronic check', 'Mailed check': 1 bad row(s) (row 6: 'Mailed check, then\\n"
        "electronic')"
    ]
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["data"]["features"]["payment_method"]["categories"].append(
        "Mailed check, then\nelectronic"
    )
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status, err = run_prepare_on(workdir, "quoted_newlines.csv", capsys)
    assert (status, err) == (0, "")
    train = pd.read_parquet(workdir / "data/prepared/train.parquet")
    test = pd.read_parquet(workdir / "data/prepared/test.parquet")
    both = pd.concat([train, test])
    assert len(both) == 30
    assert both.loc[6, "payment_method"] == "Mailed check, then\nelectronic"


def test_short_rows_in_a_quoted_file_are_found_too(tmp_path):
    path = tmp_path / "quoted.csv"
    path.write_text('a,b,c\n"1","x, y\nz",3\n"4","5"\n6,7,8\n')
    with pytest.raises(
        Exception, match=r"1 line\(s\) do not have the header's 3 fields \(line 4: 2"
    ):
        prepare.read_raw(path)


def test_blank_lines_are_not_short_rows(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("a,b,c\r\n1,2,3\r\n\r\n4,5,6\r\n")
    assert prepare.read_raw(path).shape == (2, 3)


def test_split_drift_fails_loudly():
    whole = pd.DataFrame({"y": [1] * 20 + [0] * 80})
    train, test = whole.iloc[15:85], pd.concat([whole.iloc[:15], whole.iloc[85:]])
    with pytest.raises(Exception, match=r"split: train positive rate 0\.071 is 12\.9 points"):
        prepare.check_split(whole, train, test, "y")


def test_split_with_shared_ids_fails_loudly():
    whole = pd.DataFrame({"y": [0, 1, 0, 1]}, index=[1, 2, 3, 4])
    with pytest.raises(Exception, match=r"split: 1 id\(s\) in both train and test"):
        prepare.check_split(whole, whole.iloc[:3], whole.iloc[2:], "y")


KILL_ON_RENAME = """
import os, signal, sys
sys.path.insert(0, {src!r})
os.chdir({work!r})
real_replace = os.replace
def replace(src, dst):
    # Die like a killed process: after the temp file is written, before the rename.
    os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
from churn.core import entry
from churn.stages import prepare
entry.run(prepare.main)
"""


def test_killed_mid_write_leaves_old_outputs(workdir, telco):
    before = hashes(workdir)
    telco.head(200).to_csv(workdir / RAW, index=False)  # valid input, different outputs
    script = KILL_ON_RENAME.format(src=str(REPO / "src"), work=str(workdir))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, check=False)
    assert result.returncode == -signal.SIGKILL
    assert hashes(workdir) == before


def _alias_bomb() -> str:
    """A billion laughs (9**9 strings once expanded) under prepare.seed, 1 KB on disk."""
    rows = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    rows += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    return "prepare:\n  seed: {" + ", ".join(rows) + "}\n"


HOSTILE_PARAMS = {
    "alias_bomb": (_alias_bomb(), "params.yaml: line 2: YAML anchor &a0 not allowed"),
    "deep": ("[" * 100_000, "params.yaml: line 1: nested deeper than 32 levels"),
    "latin1": (b"data:\n  target: d\xe9part\n", "params.yaml: line 2: not UTF-8 (byte 0xe9)"),
    "big": ("#" * (2 * 1024 * 1024), "params.yaml: 2097152 bytes, over the 1048576-byte limit"),
}


def _run_hostile(tmp_path: Path, case: str, command: list[str]) -> tuple[int, str, float]:
    text, _ = HOSTILE_PARAMS[case]
    data = text if isinstance(text, bytes) else text.encode()
    (tmp_path / "params.yaml").write_bytes(data)
    start = time.perf_counter()
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    return result.returncode, result.stderr, time.perf_counter() - start


@pytest.mark.parametrize("case", sorted(HOSTILE_PARAMS))
def test_hostile_params_yaml_is_one_line_from_the_churn_command(tmp_path, case):
    churn = str(Path(sys.executable).parent / "churn")
    status, err, elapsed = _run_hostile(tmp_path, case, [churn, "contract"])
    assert status == 1
    assert err.startswith(f"error: {HOSTILE_PARAMS[case][1]}"), err
    assert err.count("\n") == 1, err
    assert len(err) < 300, err
    assert elapsed < 20  # startup included; the bomb itself took minutes and gigabytes


def test_hostile_params_yaml_stops_a_stage(tmp_path):
    command = [sys.executable, "-m", "churn.stages", "prepare"]
    status, err, elapsed = _run_hostile(tmp_path, "alias_bomb", command)
    assert (status, err) == (
        1,
        f"error: {HOSTILE_PARAMS['alias_bomb'][1]} (params never need them)\n",
    )
    assert elapsed < 30
    assert not (tmp_path / "data").exists()


def test_the_repository_yaml_files_are_well_inside_the_loader_limits():
    """dvc.lock is the biggest and deepest YAML here; the limits leave room to grow."""
    from churn.core import io

    for name in ("params.yaml", "dvc.yaml", "dvc.lock"):
        path = REPO / name
        assert path.stat().st_size < io.MAX_YAML_BYTES // 50
        values = sum(isinstance(e, yaml.NodeEvent) for e in yaml.parse(path.read_text()))
        assert values < io.MAX_YAML_NODES // 5
        assert io.read_yaml(path)
