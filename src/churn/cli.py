"""The ``churn`` command: one subcommand for each job a user runs, each a thin wrapper.

The work lives in the layers below (``churn.ops``, ``churn.serving``,
``churn.core``); this module only parses arguments and maps outcomes to exit
codes. Modules are imported inside the handlers, so ``churn --help`` answers
without loading scikit-learn or FastAPI. The pipeline's stages are not here:
DVC runs them as ``python -m churn.stages <stage>`` (see dvc.yaml).
"""

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from churn.core import entry
from churn.core.errors import clip

OK_OR_BAD_INPUT = "exit codes: 0 done; 1 bad input (one line on stderr says why); 2 bad usage"


def _check(_: argparse.Namespace) -> int:
    from churn.ops.check import check

    return entry.run(lambda: print(check()))  # noqa: T201


def _summary(_: argparse.Namespace) -> int:
    from churn.ops import summary

    return entry.run(summary.main)


def _contract(args: argparse.Namespace) -> int:
    from churn.core.contract import freeze_yaml, markdown_table, read_contract
    from churn.core.integrity import LOCK_FILE, check_made_from
    from churn.core.io import read_yaml, require_file
    from churn.core.params import load_params

    def contract() -> str:
        params = load_params()
        if not args.freeze:
            return markdown_table(params.data)
        # The resolved contract (prepare's output), not params: with `features: infer`
        # only that file holds the rules; and it must be this raw file's.
        resolved = read_contract(params.paths.contract)
        lock = read_yaml(require_file(LOCK_FILE))
        check_made_from(params.paths.contract, params.paths.raw, lock)
        return freeze_yaml(resolved, params.paths.raw)

    return entry.run(lambda: print(contract().rstrip("\n")))  # noqa: T201


def _report(args: argparse.Namespace) -> int:
    from churn.ops.report import write_report

    def report() -> None:
        write_report(args.base, args.out, args.images)

    return entry.run(report)


def _release(args: argparse.Namespace) -> int:
    from churn.ops import release

    actions: dict[str, Callable[[], str]] = {
        "create": lambda: release.create(args.version),
        "promote": lambda: release.promote(args.version, args.stage),
        "verify": lambda: release.verify(args.tag),
        "gate": lambda: release.gate_tag(args.tag),
        "notes": lambda: release.notes(args.tag),
        "resolve": lambda: release.release_tag(args.tag),
    }
    return entry.run(lambda: print(actions[args.action]().rstrip("\n")))  # noqa: T201


def _serve(_: argparse.Namespace) -> int:
    try:
        from churn.serving.app import main
    except ModuleNotFoundError as err:  # installed without the serve extra
        print(  # noqa: T201 (the one-line message is the interface)
            f"error: churn serve needs {err.name}: pip install 'churn[serve]'", file=sys.stderr
        )
        return 1
    return entry.run(main)


def _monitor(args: argparse.Namespace) -> int:
    from churn.ops.monitor import run

    return entry.run(lambda: run(args.input, args.out, args.chunk_rows), error_status=2)


SCORE_CODES = (
    "exit codes: 0 every row scored; 1 bad input (one line on stderr says why; with "
    "--on-error fail a row that breaks the data contract, and no output is written); "
    "2 bad usage; 3 done, but some rows were rejected (--on-error reject: see "
    "OUTPUT.rejects.csv)"
)


def _score(args: argparse.Namespace) -> int:
    from churn.core.errors import ChurnError
    from churn.ops.score import run

    def score() -> int:
        try:
            counts = run(
                args.input,
                args.output,
                model_ref=args.model_ref or _env_model_ref(),
                chunk_rows=args.chunk_rows,
                on_error=args.on_error,
                engine=args.engine,
                scheduler=args.scheduler or None,
            )
        except ModuleNotFoundError as err:
            if args.engine != "dask" or err.name not in {"dask", "distributed"}:
                raise
            raise ChurnError(f"--engine dask needs {err.name}: pip install 'churn[dask]'") from None
        return 3 if counts.rejected else 0

    return entry.run(score)


def _remote(args: argparse.Namespace) -> int:
    from churn.ops.remote import check

    return entry.run(lambda: check(args.remote, offline=args.offline))


SWEEP_CODES = (
    "exit codes: 0 done; 1 bad input (one line on stderr names the key or value) or a dvc "
    "command failed; 2 bad usage; 3 (pull, table, queue) some sets have no results (pull "
    "names them and pulls the others; table and queue still print the table)"
)


def _sweep(args: argparse.Namespace) -> int:
    from churn.ops import sweep

    actions: dict[str, Callable[[], int | None]] = {
        "plan": lambda: print(sweep.plan_json(args.grid)),  # noqa: T201
        "run": lambda: sweep.run(args.grid, args.name),
        "pull": lambda: sweep.EXIT_MISSING if sweep.pull(args.grid, args.remote) else 0,
        "table": lambda: sweep.print_table(args.grid),
        "queue": lambda: sweep.queue(args.grid, args.jobs),
    }
    return entry.run(actions[args.action])


def _path(text: str) -> Path:
    """A local path option's value; an empty one would be ".", the current directory.

    A URL is refused by name: ``Path`` folds ``s3://b/x.csv`` into ``s3:/b/x.csv``, a
    local name that was then "not found".
    """
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path (give a file or directory name)")
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", text):
        raise argparse.ArgumentTypeError(
            f"{clip(_line(text))} is a URL: this option takes a local path (copy the file here)"
        )
    return Path(_line(text))


def _line(text: str) -> str:
    """A name, path or URL option's value: one line of text.

    Every message echoes it; with a newline in it, one error became two lines, the
    second saying whatever the value said.
    """
    if not text.isprintable():
        raise argparse.ArgumentTypeError(f"{clip(text)} has a control character")
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty value")
    return text


def _line_or_default(text: str) -> str:
    """:func:`_line` of an option that has a default: "" was no value, and took the default."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty value (leave the option out for its default)")
    return _line(text)


def _env_model_ref() -> str | None:
    """``$MODEL_REF`` for score, named as such: an option's default, it was "--model-ref".

    Empty is unset (the workspace), as the service reads it.
    """
    from churn.core.errors import ChurnError

    value = os.environ.get("MODEL_REF") or None
    if value is not None and not value.isprintable():
        raise ChurnError(f"MODEL_REF: {clip(value)} has a control character")
    if value is not None and not value.strip():
        raise ChurnError("MODEL_REF: only blanks (unset it, or leave it empty, for the workspace)")
    return value


def _rows(text: str) -> int:
    """A count of rows of at least 1: ``--chunk-rows 0`` is a usage error (exit 2), as ``x`` is."""
    try:
        rows = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {clip(repr(text))}") from None
    if rows < 1:
        raise argparse.ArgumentTypeError(f"{rows}: must be at least 1")
    return rows


def _remote_name(text: str) -> str:
    """A git or DVC remote's name: one line, and never read as an option of dvc or git."""
    text = _line_or_default(text)
    if text.startswith("-"):
        raise argparse.ArgumentTypeError(f"{clip(text)}: a remote's name cannot start with '-'")
    return text


def _add(
    commands: argparse._SubParsersAction,
    name: str,
    handler: Callable[[argparse.Namespace], int],
    help_text: str,
    codes: str = OK_OR_BAD_INPUT,
) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        name,
        help=help_text,
        description=f"{help_text}.",
        epilog=codes,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=handler)
    return parser


def _actions(parent: argparse.ArgumentParser, *specs: tuple[str, str]) -> dict:
    """Second-level subcommands (``churn release create``...), each stating its exit codes."""
    actions = parent.add_subparsers(dest="action", required=True, metavar="ACTION")
    return {
        name: actions.add_parser(name, help=text, epilog=OK_OR_BAD_INPUT) for name, text in specs
    }


def _release_parser(commands: argparse._SubParsersAction) -> None:
    release = _add(commands, "release", _release, "Model releases as git tags (GTO grammar)")
    actions = _actions(
        release,
        ("create", "tag HEAD churn-model@vVERSION if clean, pushed and past the metric gate"),
        ("promote", "assign a stage to a release (gto assign)"),
        ("verify", "check the model file's md5 against dvc.lock (and TAG's); prints it"),
        ("gate", "re-apply the metric gate to release TAG at HEAD (the release workflow)"),
        ("notes", "print release notes: the model card, tag and commit"),
        ("resolve", "print the release TAG stands for (a stage tag: the release on its commit)"),
    )
    actions["create"].add_argument("version", help="MAJOR.MINOR.PATCH, e.g. 1.0.0")
    actions["promote"].add_argument("version", help="a released MAJOR.MINOR.PATCH")
    actions["promote"].add_argument("stage", help="lowercase stage name, e.g. prod")
    actions["verify"].add_argument(
        "tag", nargs="?", help="also check the md5 in this release (or stage) tag, at HEAD"
    )
    actions["gate"].add_argument("tag", help="a release or stage tag whose commit is HEAD")
    actions["notes"].add_argument("tag", help="a release tag, e.g. churn-model@v1.0.0")
    actions["resolve"].add_argument("tag", help="a release or stage tag, e.g. churn-model#prod#1")


def _score_parser(commands: argparse._SubParsersAction) -> None:
    score = _add(commands, "score", _score, "Score every row of a CSV or Parquet file", SCORE_CODES)
    score.add_argument(
        "--input", type=_line, required=True, help="CSV or Parquet file (or s3://... URL)"
    )
    score.add_argument(
        "--output",
        type=_line,
        required=True,
        help="Parquet or CSV to write: id, churn_probability, churn",
    )
    score.add_argument(
        "--model-ref",
        type=_line_or_default,
        help="release tag, e.g. churn-model@v1.0.0 (default: $MODEL_REF, else the workspace)",
    )
    score.add_argument(
        "--chunk-rows",
        type=_rows,
        default=131_072,
        help="rows read and checked at a time (best a multiple of 65,536: the model's block)",
    )
    score.add_argument(
        "--on-error",
        choices=["fail", "reject"],
        default="fail",
        help="a row that breaks the data contract: stop (fail) or write it to "
        "OUTPUT.rejects.csv and score the others (reject)",
    )
    score.add_argument(
        "--engine", choices=["local", "dask"], default="local", help="where chunks are scored"
    )
    score.add_argument(
        "--scheduler",
        type=_line_or_default,
        help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (default: a local cluster)",
    )


def _sweep_parser(commands: argparse._SubParsersAction) -> None:
    sweep = _add(
        commands,
        "sweep",
        _sweep,
        "Parameter sweeps as DVC experiments, on one machine or many",
        SWEEP_CODES,
    )
    actions = sweep.add_subparsers(dest="action", required=True, metavar="ACTION")
    specs = {
        "plan": "print the sets of GRID as a GitHub Actions matrix (JSON), each checked",
        "run": "run one set of GRID: dvc exp run --name NAME with -S KEY=VALUE per key",
        "pull": "dvc exp pull this grid's experiments (and their outputs) from a git remote",
        "table": "print the Markdown table of this grid's experiments, best first",
        "queue": "queue every set, run the queue, print the table (make sweep)",
    }
    parsers = {
        name: actions.add_parser(name, help=text, description=f"{text}.", epilog=SWEEP_CODES)
        for name, text in specs.items()
    }
    for parser in parsers.values():
        parser.add_argument(
            "--grid",
            default=os.environ.get("GRID"),
            required=not os.environ.get("GRID"),
            help="KEY=V1,V2,... per key, separated by spaces (Hydra's syntax, as dvc exp "
            "run -S), e.g. 'train.logistic_regression.C=0.1,1 train.class_weight=null,balanced'"
            " (or set $GRID)",
        )
    parsers["run"].add_argument(
        "--name", type=_line, required=True, help="the set's name, from plan"
    )
    parsers["pull"].add_argument(
        "--remote", type=_remote_name, default="origin", help="git remote (origin)"
    )
    parsers["queue"].add_argument(
        "--jobs", type=int, default=1, help="experiments run at once (default 1)"
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: ``churn --help`` lists every subcommand."""
    parser = argparse.ArgumentParser(
        prog="churn",
        description="Customer-churn pipeline on DVC: reports, releases, serving and monitoring. "
        "The pipeline itself runs with `dvc repro`.",
        epilog="Each subcommand's --help states its exit codes.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add(commands, "summary", _summary, "Print the test metrics next to the prior baseline")
    _add(
        commands,
        "check",
        _check,
        "Check params and the raw file's header; runs nothing",
        "exit codes: 0 fine (one line says what was checked); 1 a problem (one line says "
        "which key or column); 2 bad usage",
    )
    contract = _add(
        commands, "contract", _contract, "Print the data contract as the README's table"
    )
    contract.add_argument(
        "--freeze",
        action="store_true",
        help="print the resolved contract (data/prepared/contract.json, inferred or declared) "
        "as the data: section to paste into params.yaml",
    )
    report = _add(
        commands, "report", _report, "Write the PR report: metrics and params against a base"
    )
    report.add_argument(
        "--base",
        type=_line_or_default,
        default="main",
        help="git revision to compare with (default: main)",
    )
    report.add_argument(
        "--out", type=_path, default=Path("report.md"), help="markdown to write (report.md)"
    )
    report.add_argument(
        "--images", type=_path, help="opt-in: write PNG charts here and link them from the report"
    )
    _release_parser(commands)
    _add(
        commands,
        "serve",
        _serve,
        "Serve the model over HTTP (settings from the environment)",
        "exit codes: 1 the model or its settings are bad (one line says why); "
        "otherwise runs until stopped: 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP",
    )
    monitor = _add(
        commands,
        "monitor",
        _monitor,
        "Drift of a new batch against the training data",
        "exit codes: 0 no drift; 1 drift; 2 invalid input or usage (one line says why)",
    )
    monitor.add_argument(
        "--input",
        type=_path,
        required=True,
        help="CSV or Parquet batch, or the service's log (.jsonl)",
    )
    monitor.add_argument(
        "--out", type=_path, default=Path("monitoring"), help="report directory (monitoring/)"
    )
    monitor.add_argument(
        "--chunk-rows",
        type=_rows,
        default=131_072,
        help="rows read, checked and counted at a time (memory follows it, not the batch)",
    )
    _score_parser(commands)
    _sweep_parser(commands)
    remote = _add(commands, "remote", _remote, "Check a DVC remote before pushing or pulling")
    check = _actions(
        remote, ("check", "one line naming what is missing: credentials, the bucket, the endpoint")
    )
    check["check"].add_argument(
        "remote", nargs="?", type=_remote_name, help="remote name (default: the default remote)"
    )
    check["check"].add_argument(
        "--offline",
        action="store_true",
        help="do not contact an S3 bucket: check its URL and credentials only",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the subcommand; returns the exit status."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return args.handler(args)


def console() -> NoReturn:
    """The ``churn`` command: :func:`main`, then an exit that skips the interpreter's teardown.

    After a CSV read pyarrow gave up on (a field larger than its read block), one of its
    threads aborted the process during teardown about one run in three: SIGABRT, exit
    134, after the one-line error. Teardown also frees every module for nothing.
    """
    try:
        status = main()
    except KeyboardInterrupt:  # while a subcommand's modules were still being imported
        status = entry.interrupted()
    except SystemExit as done:  # argparse: usage errors (2) and --help (0)
        status = done.code if isinstance(done.code, int) else int(done.code is not None)
        if isinstance(done.code, str):
            print(done.code, file=sys.stderr)  # noqa: T201 (what SystemExit prints)
    entry.leave(status)


if __name__ == "__main__":
    console()
