# Two commands for a newcomer: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[envs,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m rtrrl.online
	$(BIN)/rtrrl train

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check rtrrl tests benchmarks tools examples
	$(BIN)/ruff format --check rtrrl tests benchmarks tools examples
	$(BIN)/pyright

bench: $(STAMP)
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/paper.py --subset quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
