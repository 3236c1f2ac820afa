# Vitrine: `make demo` runs a whole simulated store, `make test` runs the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Four test processes on two cores: most tests wait on brokers, edges and browsers, not the
# CPU. A test file stays on one process (module fixtures are built once), files are handed
# out in collection order (the longest first: tests/conftest.py LONG_FILES); see
# docs/benchmarks.md ("make test"). `make test PYTEST_WORKERS=` runs them one by one.
PYTEST_WORKERS ?= -n 4 --dist loadfile --no-loadscope-reorder

.PHONY: demo test bench lint deps-demo deps-test clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,embedded-broker]'
	touch $(STAMP)

deps-demo:
	@scripts/system-deps.sh demo

deps-test:
	@scripts/system-deps.sh test

demo: deps-demo $(STAMP)
	$(PY) -m vitrine demo

test: deps-test $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q $(PYTEST_WORKERS)

bench: deps-test $(STAMP)
	$(PY) -m bench.ingest
	$(PY) -m bench.latency
	$(PY) -m bench.request
	$(PY) -m bench.pipeline
	$(PY) -m bench.kiosk
	$(PY) -m bench.central_ingest
	$(PY) -m bench.drain
	$(PY) -m bench.profile_read
	$(PY) -m bench.panel
	$(PY) -m bench.flood
	$(PY) -m bench.soak
	$(PY) -m bench.attribution
	$(PY) -m bench.signage

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) var build *.egg-info .pytest_cache .ruff_cache .hypothesis
