# Quickstart: `make demo` (server + sandbox + example queries) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench install dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python  # the product and the Python client libraries the README's Quickstart uses (ADBC)
	$(BIN)/pip install --quiet -e '.[client]'

demo: install  # from the checkout: the sandbox and demo/ are not part of the installed product
	$(BIN)/python -m clients.cli serve --demo

dev: $(BIN)/python  # the product with the test extras: pytest, ruff, mypy and the clients the tests drive
	$(BIN)/pip install --quiet -e '.[test]'

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
