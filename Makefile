# Two commands on a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8888

.PHONY: run test lint typecheck pytest install clean bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/appbook publish notebooks/examples
	@# You approve the example's big invoices and get its overdue mail: a manager in accounting.
	$(BIN)/appbook users list | grep -q "^$$(whoami) " || \
	  $(BIN)/appbook users add "$$(whoami)" --role managers --role accounting
	$(BIN)/appbook serve --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check appbook tests bench
	$(BIN)/ruff format --check appbook tests bench
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint pytest

bench: $(STAMP)
	$(BIN)/python bench/records.py

clean:
	rm -rf $(VENV) .appbook .mypy_cache .ruff_cache .pytest_cache
