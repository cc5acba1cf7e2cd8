# The front door. Each target is one line that calls the `churn` command or a tool.
# Everything runs inside .venv, made from the pinned requirements on first use, with
# this package installed into it (editable), so `churn` works in an activated shell too.

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
# dvc.yaml runs `python`; putting the venv first makes that the pinned interpreter.
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1

.DEFAULT_GOAL := help
BASE ?= main
OUT ?= monitoring
REPORT_ARGS ?=
# Recipes read these from the environment ("$$VERSION"), never pasted into the shell
# line, so a value such as `1.0.0; rm -rf x` stays one argument.
export BASE OUT REPORT_ARGS VERSION STAGE INPUT REMOTE OUTPUT MODEL_REF CHUNK_ROWS ON_ERROR ENGINE
export SCHEDULER GRID JOBS

.PHONY: help install check run test lint format bench bench-serve bench-score bench-monitor score report example-comment mutation remote-check release promote serve monitor sweep clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV) && $(PIP) -r requirements-dev.txt && $(PIP) --no-deps --no-build-isolation -e . && touch $@

install: $(STAMP) ## Create .venv with the pinned requirements and this package (editable)

check: $(STAMP) ## Check params.yaml and the raw file's header in a second, running nothing
	churn check

run: $(STAMP) ## Pull what the remote has, compute the rest, print the metrics
	dvc repro --pull && churn summary

test: $(STAMP) lint ## Lint, then the whole test suite on 2 workers, with coverage (fails under 85 %)
	python -m pytest -n 2 --dist loadfile --cov --cov-report=term

lint: $(STAMP) ## ruff lint and format check, and the import-linter layer contracts
	ruff check . && ruff format --check . && lint-imports

format: $(STAMP) ## Apply ruff's fixes and formatting
	ruff check --fix . && ruff format .

bench: $(STAMP) ## Scale curve at 7,043/100k/1M rows: dvc repro, each stage, two floors; docs/scale.png
	python -m benchmarks.bench --plot docs/scale.png

mutation: $(STAMP) ## Mutation score per module of core and the stages (mutmut, ~10 min); fails under 90 %
	python -m tools.mutation

report: $(STAMP) ## PR report vs BASE (default main) into report.md: metrics, params, verdict, plots
	churn report --base "$$BASE" --out report.md $$REPORT_ARGS

example-comment: $(STAMP) ## Regenerate docs/example-pr-comment.md from a real branch-vs-main run
	python -m tools.example

remote-check: $(STAMP) ## Check that a DVC remote can be used: credentials, its S3 bucket (REMOTE=s3; default: the default remote)
	churn remote check $${REMOTE:+"$$REMOTE"}

release: $(STAMP) ## Tag a model release VERSION=X.Y.Z, if clean, pushed and past the metric gate
	churn release create "$$VERSION"

promote: $(STAMP) ## Assign a stage to a release: VERSION=X.Y.Z STAGE=prod
	churn release promote "$$VERSION" "$$STAGE"

bench-serve: $(STAMP) ## Time the HTTP service vs in-process predict_proba (needs the model)
	python -m benchmarks.bench_serve

serve: $(STAMP) ## Serve models/model.pkl (or MODEL_REF=churn-model@vX.Y.Z) on 127.0.0.1, PORT 8000
	churn serve

score: $(STAMP) ## Score a file: INPUT=in.parquet OUTPUT=out.parquet [MODEL_REF CHUNK_ROWS ON_ERROR ENGINE SCHEDULER]
	churn score --input "$$INPUT" --output "$$OUTPUT" --chunk-rows "$${CHUNK_ROWS:-131072}" --on-error "$${ON_ERROR:-fail}" --engine "$${ENGINE:-local}" $${SCHEDULER:+--scheduler "$$SCHEDULER"}

bench-score: $(STAMP) ## Time `churn score` at 1M and 10M rows vs bare predict_proba; peak memory; Dask
	python -m benchmarks.bench_score

bench-monitor: $(STAMP) ## Time `churn monitor` on a 1M-row batch: wall and peak memory
	python -m benchmarks.bench_monitor

monitor: $(STAMP) ## Drift of a new batch vs training: INPUT=batch.csv (.parquet, .jsonl) [OUT=monitoring]
	churn monitor --input "$$INPUT" --out "$$OUT"

sweep: $(STAMP) ## A sweep on this machine's DVC queue, then its table: GRID="KEY=V1,V2 ..." [JOBS=1]
	churn sweep queue --grid "$$GRID" --jobs "$${JOBS:-1}"

clean: ## Remove the virtualenv and caches (not data: that is DVC's)
	rm -rf $(VENV) .pytest_cache .ruff_cache .coverage .coverage.*
