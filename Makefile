# Quickstart: `make demo` (server + sandbox + example queries) and `make test` (the whole suite).
PYTHON ?= python3
# more flags for `make demo`, e.g. make demo ARGS='--port 8816 --http-port 8002'
ARGS ?=
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench install dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Each install leaves a stamp in .venv, so `make demo` again starts at once (no pip run, no setuptools noise);
# a changed pyproject.toml installs again.
$(VENV)/.installed-client: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[client]'
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed-client  # the product and the Python client libraries the README's Quickstart uses (ADBC)

demo: install  # from the checkout: the sandbox and demo/ are not part of the installed product
	$(BIN)/python -m clients.cli serve --demo $(ARGS)

dev: $(VENV)/.installed-test  # the product with the test extras: pytest, ruff, mypy and the clients the tests drive

test: dev
	$(BIN)/ruff check .
	$(BIN)/mypy .
	$(BIN)/python -m pytest -q -p no:warnings tests

lint: dev  # ruff and mypy come with the test extras (make install alone has neither)
	$(BIN)/ruff check . && $(BIN)/mypy .

bench: install
	$(BIN)/pip install --quiet -e '.[test,bench]'
	PYTHONPATH=. $(BIN)/python perf/bench_roundtrip.py
	PYTHONPATH=. $(BIN)/python perf/bench_api_economy.py
	PYTHONPATH=. $(BIN)/python perf/bench_freshness.py
	PYTHONPATH=. $(BIN)/python perf/bench_overhead.py

clean:
	rm -rf $(VENV) build *.egg-info
