# The two commands a newcomer runs: `make demo` (the whole hub on SQLite, seeded) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: demo test bench install install-dev lint clean static-vendor

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python static-vendor
	$(BIN)/pip install -q -e .

install-dev: $(BIN)/python static-vendor
	$(BIN)/pip install -q -e '.[dev]'

# The calendar component (FullCalendar standard bundle, MIT) and its time-zone plugin (Luxon 3, MIT), pinned
# by package-lock.json and copied into static files; collectstatic picks them up from there.
VENDOR := scheduler/static/vendor
static-vendor: $(VENDOR)/.stamp

$(VENDOR)/.stamp: package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)/fullcalendar $(VENDOR)/luxon
	cp node_modules/fullcalendar/index.global.min.js node_modules/fullcalendar/LICENSE.md $(VENDOR)/fullcalendar/
	cp node_modules/@fullcalendar/luxon3/index.global.min.js $(VENDOR)/fullcalendar/luxon3.global.min.js
	cp node_modules/luxon/build/global/luxon.min.js node_modules/luxon/LICENSE.md $(VENDOR)/luxon/
	touch $@

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
	rm -rf $(VENV) var *.egg-info node_modules $(VENDOR)
