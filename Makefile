# `make test` is the one command that installs what the tests need and runs them (CI calls it).
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: test install test-deps data lint

lint:
	$(PYTHON) -m ruff check src tests benchmarks
	$(PYTHON) -m ruff format --check src tests benchmarks

install:
	$(PYTHON) -m pip install -q -e '.[test]'

# BLAST+ writes the small BLAST databases our reader is checked against; Chromium (headless)
# drives the web page test.
test-deps:
	@command -v makeblastdb >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq ncbi-blast+ >/dev/null; }
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; }

# Real data for the tests, fetched by the project's own command (idempotent, seconds when cached).
data: install
	instructprotein data fetch --group data --group test --group tools

# ruff first: a lint or format failure costs a second, the suite minutes.
test: install test-deps data lint
	$(PYTHON) -m pytest -q
