# The two commands a newcomer needs are `make run` and `make test`; both build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test check lint typecheck layers bench bench-quick chaos soak clean browser

# `make check CHECK_TESTS=0` runs the gates without the tests (CI has just run them through `make test`).
CHECK_TESTS ?= 1

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/autoquant run

test: $(STAMP) browser
	$(BIN)/pytest -q

# The status page's test drives a real headless browser: Debian's chromium, installed when missing.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		{ if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; fi; }

lint: $(STAMP)
	$(BIN)/ruff check autoquant tests
	$(BIN)/ruff format --check autoquant tests

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

check: lint typecheck layers
ifeq ($(CHECK_TESTS),1)
check: test
endif

bench: $(STAMP)
	$(BIN)/python -m autoquant.bench

bench-quick: $(STAMP)
	$(BIN)/python -m autoquant.bench --quick

chaos: $(STAMP)
	$(BIN)/python -m autoquant.chaos

# The daemon kept busy (12 symbols at 50 ms bars) for SOAK_SECONDS: RSS, loop lag and ledger size over time.
SOAK_SECONDS ?= 600
soak: $(STAMP)
	$(BIN)/python -m autoquant.bench.soak --seconds $(SOAK_SECONDS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
