# The two commands a newcomer runs: `make demo` (the whole hub on SQLite, seeded) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: demo test bench install install-dev lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

install-dev: $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'

.env:
	cp .env.example .env

demo: install .env
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python manage.py seed_demo
	@echo "Starting web, worker, beat and the platform emulators: open http://127.0.0.1:$(PORT)/admin/ (Ctrl-C stops them)"
	PATH="$(CURDIR)/$(BIN):$$PATH" DEMO_HUB_URL=http://127.0.0.1:$(PORT) GOOGLE_EMULATOR=1 $(BIN)/honcho -f Procfile.demo start -p $(PORT)

# Provisions throwaway PostgreSQL + Redis (installs the Debian packages if missing), runs the suite on
# SQLite and again on PostgreSQL + Redis, then stops what it started.
test: install-dev
	scripts/test_all

# Benchmarks on a fresh SQLite database each (minutes; results are recorded in BENCHMARKS.md). For
# PostgreSQL: scripts/testenv start && . var/testenv.env && make bench; scripts/testenv stop
bench: install-dev
	$(BIN)/python -m bench.conflicts
	$(BIN)/python -m bench.api
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.ical

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) var *.egg-info
