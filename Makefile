# `make html` and `make doctest` are all a reader or a maintainer needs: both
# create or refresh .venv from pyproject.toml before they run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SPHINXOPTS ?= -W -n
# `make livehtml PORT=8001 HOST=0.0.0.0 SPHINXOPTS="-W -n -j auto"`
PORT ?= 8000
HOST ?= 127.0.0.1
# -M must come first; the configuration is the root's conf.py.
sphinx = $(BIN)/sphinx-build -M $(1) docs/source build -c . $(SPHINXOPTS)

# pytest-xdist workers for `make doctest`: two per core, since most tests
# spend much of their time waiting (on servers, timeouts, the browser) and
# a second worker uses the core meanwhile; 0 runs in one process.
PYTEST_WORKERS ?= $(shell echo $$(( $$(getconf _NPROCESSORS_ONLN) * 2 )))

.PHONY: html doctest livehtml lint clean mutate measure bench bench-redis bench-resume

# Rebuilt whenever pyproject.toml is newer than the last install.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --group dev
	touch $@

html: $(STAMP)
	$(call sphinx,html)

# The pytest suite under coverage (subprocesses included; .pycon sessions run
# as doctests), then lint: any failure fails the target.
doctest: $(STAMP)
	rm -f .coverage .coverage.*
	$(BIN)/coverage run -m pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)
	$(BIN)/coverage combine --quiet
	$(BIN)/coverage report
	$(MAKE) --no-print-directory lint

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

livehtml: $(STAMP)
	$(BIN)/sphinx-autobuild docs/source build/html -c . -d build/doctrees $(SPHINXOPTS) --port $(PORT) --host $(HOST) --watch snippets --watch docs/_ext --watch conf.py

clean:
	rm -rf build .coverage .coverage.* .pytest_cache

# Mutation check: needs the results of a passing `make doctest`. After adding
# tests, MUTATE_ARGS=--survivors re-runs only the last run's survivors.
mutate: $(STAMP)
	$(BIN)/python tests/mutate.py $(MUTATE_ARGS)

# The resilient room's measured costs, written to docs/resilient.json and
# shown on its page; a blocked event loop's, in docs/blocking.json; what
# per-message compression costs, in docs/deflate.json; what the "Beyond the
# chat" recipes cost, in docs/recipes.json. Run it on a quiet machine; the
# pages name the machine.
measure: $(STAMP)
	$(BIN)/python tests/measure_chatroom.py
	$(BIN)/python tests/measure_blocking.py
	$(BIN)/python tests/measure_deflate.py
	$(BIN)/python tests/measure_recipes.py

# The fan-out benchmark (about ten minutes here): rewrites the committed results that
# the "How fast is it?" page draws its tables and plot from.
bench: $(STAMP)
	$(BIN)/python snippets/bench_fanout.py --out docs/bench/fanout.json

# Measure the Redis room (latency, restarts, loss) into docs/redis-bench.json,
# which the scale-out page renders; commit the file with the change it measures.
bench-redis: $(STAMP)
	$(BIN)/python tests/bench_redis.py

# Measure the resumable room (replay time, extra latency, stream memory) into
# docs/resume-bench.json, which its page renders; commit the file with the change.
bench-resume: $(STAMP)
	$(BIN)/python tests/bench_resume.py
