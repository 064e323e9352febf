# Two commands for a newcomer: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-fast docs lint bench clean

# --no-compile: Python writes the bytecode of the modules it imports on first import;
# compiling every installed module up front took 19 of the install's 42 s on a 2-core CPU.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -e ".[envs,dev,docs]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m rtrrl.online
	$(BIN)/rtrrl train

# The docs are built first, strictly: a broken link or API reference fails the tests (not
# with --quiet, which hides the warnings that --strict counts, so they would pass).
# The tests run in TEST_WORKERS processes (pytest-xdist), each test file on one worker so
# that a file's shared fixtures are built once; every worker runs XLA on one thread
# (tests/conftest.py), so two workers keep both cores of a 2-core machine busy. The 25
# slowest tests, and the 25 that spent the most time in XLA compilation (with the count of
# compilations), are listed at the end: where the time goes (tests/_compile_report.py).
TEST_WORKERS ?= 2
test: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d site
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=25 --compile-report=25

# The development loop: the estimator-agreement tests and the library's unit tests, no
# training runs, no environments' agreement suites, no docs build.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow" tests/estimators tests/cells tests/heads tests/online \
		tests/test_traces.py tests/test_layers.py tests/test_prng.py

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d site

# The last step fails when `pyright --verifytypes rtrrl` scores the public API below 95%.
lint: $(STAMP)
	$(BIN)/ruff check rtrrl tests benchmarks tools examples
	$(BIN)/ruff format --check rtrrl tests benchmarks tools examples
	$(BIN)/pyright
	$(BIN)/python tools/verifytypes_score.py --threshold 95

bench: $(STAMP)
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/paper.py --subset quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache site
