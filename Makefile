# `make html` and `make doctest` are all a reader or a maintainer needs: both
# create or refresh .venv from pyproject.toml before they run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SPHINXOPTS ?= -W --keep-going -n
# -M must come first; the configuration is the root's conf.py.
sphinx = $(BIN)/sphinx-build -M $(1) docs/source build -c . $(SPHINXOPTS)

.PHONY: html doctest livehtml lint clean mutate bench-redis

# Rebuilt whenever pyproject.toml is newer than the last install.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --group dev
	touch $@

html: $(STAMP)
	$(call sphinx,html)

# Sphinx's doctest builder, then the pytest suite under coverage (subprocesses
# included), then lint: any failure fails the target.
doctest: $(STAMP)
	$(call sphinx,doctest)
	rm -f .coverage .coverage.*
	$(BIN)/coverage run -m pytest $(PYTEST_ARGS)
	$(BIN)/coverage combine --quiet
	$(BIN)/coverage report
	$(MAKE) --no-print-directory lint

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

livehtml: $(STAMP)
	$(BIN)/sphinx-autobuild -c . docs/source build/html --watch snippets --watch docs/_ext --watch conf.py

clean:
	rm -rf build .coverage .coverage.* .pytest_cache

# Mutation check: needs the results of a passing `make doctest`. After adding
# tests, MUTATE_ARGS=--survivors re-runs only the last run's survivors.
mutate: $(STAMP)
	$(BIN)/python tests/mutate.py $(MUTATE_ARGS)

# Measure the Redis room (latency, restarts, loss) into docs/redis-bench.json,
# which the scale-out page renders; commit the file with the change it measures.
bench-redis: $(STAMP)
	$(BIN)/python tests/bench_redis.py
