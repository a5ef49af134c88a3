# The README's two commands are `make demo` and `make test`; both bootstrap .venv
# from uv.lock first. All state goes to $(MLOPS_HOME) (default ./var).
SHELL := /bin/bash
export MLOPS_HOME ?= $(CURDIR)/var
export AIRFLOW_HOME ?= $(MLOPS_HOME)/airflow
# Python's bytecode cache on: with PYTHONDONTWRITEBYTECODE set (some machine images set it),
# every process (each test worker, each `airflow` command, the demo) compiles the ~4,300
# modules it imports from source again, about 15 s of CPU each.
unexport PYTHONDONTWRITEBYTECODE

# uv from PATH, else a private copy in .tools/ (a venv, so it works even where the
# system Python refuses pip installs).
UV ?= $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := .tools/bin/uv
endif
VENV := .venv
BIN := $(VENV)/bin
UI_PORT ?= 8080
MLFLOW_PORT ?= 5000

.PHONY: demo test test-fast lint docs ui mlflow-ui bench venv venv-spark clean up down requirements audit

# Two stamps: `.synced`, the lock without extras (the demo and the other targets), and `.synced-spark`,
# with the optional Spark engine too (PySpark; the tests). `uv sync` is exact, so the plain sync removes
# the extra and its stamp with it; the Spark sync holds everything the plain one does and refreshes both.
# After `make test`, `make demo` re-syncs nothing (PySpark stays, unused); after a plain re-sync,
# `make test` puts it back.
venv: $(VENV)/.synced
venv-spark: $(VENV)/.synced-spark

UV_BOOTSTRAP = @$(UV) --version >/dev/null 2>&1 || { python3 -m venv .tools && .tools/bin/python -m pip install --quiet uv; }

$(VENV)/.synced: pyproject.toml uv.lock
	$(UV_BOOTSTRAP)
	$(UV) sync --frozen
	@rm -f $(VENV)/.synced-spark
	@touch $@

$(VENV)/.synced-spark: pyproject.toml uv.lock
	$(UV_BOOTSTRAP)
	$(UV) sync --frozen --extra spark
	@touch $(VENV)/.synced $@

demo: venv ## Fresh state, then the whole loop on simulated data (about 5 minutes), a replay of the simulated days in-process
	@case "$(MLOPS_HOME)" in /|"$$HOME"|"") echo "refusing to reset MLOPS_HOME=$(MLOPS_HOME)"; exit 1;; esac
	@if [ -f "$(MLOPS_HOME)/server/processes.json" ]; then $(BIN)/mlops server status --quick >/dev/null 2>&1; \
	  if [ $$? -ne 3 ]; then echo "refusing to reset $(MLOPS_HOME): the server profile runs on it (make down first)"; exit 1; fi; fi
	@echo "resetting $(MLOPS_HOME) (the demo starts from a fresh state every time)"
	rm -rf "$(MLOPS_HOME)"
	$(BIN)/mlops demo

# Test workers: one per core (pytest-xdist); each is its own process with its own Airflow state.
WORKERS ?= auto

test: venv-spark ## Lint, the whole test suite (in parallel; with the Spark engine's extra), the docs site built strictly
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -n $(WORKERS) --dist loadgroup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

test-fast: venv-spark ## The edit-test lane: unit, DAG integrity, data and integration tests (no DAG runs, no whole loop)
	$(BIN)/pytest -n $(WORKERS) --dist loadgroup -m "not e2e and not slow and not reliability"

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

docs: venv ## The configuration reference from the config models, then the docs site (var/site), strictly
	$(BIN)/python -m mlops.docs_reference docs/reference/configuration.md
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

ui: venv ## Airflow (api-server, scheduler, dag-processor, triggerer) on the demo's state
	$(BIN)/mlops ui --port $(UI_PORT)

mlflow-ui: venv ## MLflow's UI on the demo's runs, models, aliases and model cards
	$(BIN)/mlops mlflow-ui --port $(MLFLOW_PORT)

up: venv ## The server profile (docker-compose.yaml) as processes on this machine's PostgreSQL and Redis
	$(BIN)/mlops server up

down: venv ## Stop exactly what `make up` started
	$(BIN)/mlops server down

requirements: ## docker/requirements.txt, the image's dependencies, exported from uv.lock (a test checks it is current); -spark.txt with the Spark engine's extra
	$(UV) export --frozen --no-dev --no-emit-project --quiet -o docker/requirements.txt
	$(UV) export --frozen --no-dev --no-emit-project --extra spark --quiet -o docker/requirements-spark.txt

audit: ## uv's audit of uv.lock against OSV (needs api.osv.dev; see docs/reliability)
	$(UV) audit --frozen

bench: venv ## Benchmarks (by hand, not in CI; about 35 minutes; the scheduler's needs PostgreSQL and Redis)
	$(BIN)/python bench/imports.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/features.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/inference.py
	$(BIN)/python bench/drift.py
	$(BIN)/python bench/scheduler.py
	$(BIN)/python bench/demo.py

clean: ## Delete all runtime state
	rm -rf "$(MLOPS_HOME)"
