# The front door. Each target is one line that calls the package or a tool.
# Everything runs inside .venv, made from the pinned requirements on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# dvc.yaml runs `python`; putting the venv first makes that the pinned interpreter.
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1
export PYTHONPATH := $(CURDIR)/src

.DEFAULT_GOAL := help
BASE ?= main
OUT ?= monitoring
REPORT_ARGS ?=

.PHONY: help install run test lint format bench bench-serve report example-comment remote-check release promote serve monitor clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt && touch $@

install: $(STAMP) ## Create .venv with the pinned requirements

run: $(STAMP) ## Pull what the remote has, compute the rest, print the metrics
	dvc repro --pull && python -m churn.summary

test: $(STAMP) lint ## Lint, then the whole test suite
	python -m pytest

lint: $(STAMP) ## ruff lint and format check
	ruff check . && ruff format --check .

format: $(STAMP) ## Apply ruff's fixes and formatting
	ruff check --fix . && ruff format .

bench: $(STAMP) ## Time the pipeline: dvc repro vs in-process, default size and 1M rows
	python -m churn.bench

report: $(STAMP) ## PR report vs BASE (default main) into report.md: metrics, params, verdict, plots
	python -m churn.report --base $(BASE) --out report.md $(REPORT_ARGS)

example-comment: $(STAMP) ## Regenerate docs/example-pr-comment.md from a real branch-vs-main run
	python -m churn.example

remote-check: $(STAMP) ## Check that a DVC remote has credentials (REMOTE=s3; default: the default remote)
	python -m churn.remote check $(REMOTE)

release: $(STAMP) ## Tag a model release VERSION=X.Y.Z, if clean, pushed and past the metric gate
	python -m churn.release create $(VERSION)

promote: $(STAMP) ## Assign a stage to a release: VERSION=X.Y.Z STAGE=prod
	python -m churn.release promote $(VERSION) $(STAGE)

bench-serve: $(STAMP) ## Time the HTTP service vs in-process predict_proba (needs the model)
	python -m churn.bench_serve

serve: $(STAMP) ## Serve models/model.pkl (or MODEL_REF=churn-model@vX.Y.Z) on 127.0.0.1:$${PORT:-8000}
	python -m churn.serve

monitor: $(STAMP) ## Drift of a new batch vs training: INPUT=batch.csv (or .jsonl) [OUT=monitoring]
	python -m churn.monitor --input $(INPUT) --out $(OUT)

clean: ## Remove the virtualenv and caches (not data: that is DVC's)
	rm -rf $(VENV) .pytest_cache .ruff_cache
