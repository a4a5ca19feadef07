# Enque: `make run` serves everything on http://127.0.0.1:8000, `make test` runs the suite.
# Needs only Python 3.11+ (SQLite and the embedded Redis come with it and the wheels).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Reinstall only when a requirements file changes.
STAMP := $(VENV)/.installed-requirements

.DEFAULT_GOAL := help
.PHONY: help venv run test lint format migrations-check clean bench-data bench bench-full

help:
	@echo "make run               migrate, seed the demo, serve web + worker + beat on :8000"
	@echo "make test [ARGS=...]   run the test suite (ARGS go to pytest, e.g. ARGS='-k ticket')"
	@echo "make lint              ruff check + ruff format --check"
	@echo "make format            ruff fixes + ruff format"
	@echo "make migrations-check  fail if a model change has no migration"
	@echo "make clean             remove caches and collected static files (keeps var/ data)"
	@echo "make bench-data [SIZE=10000]  generate the benchmark workspace bench-SIZE"
	@echo "make bench             the benchmark suite on 10,000 tickets (bench/results/)"
	@echo "make bench-full        the suite on 1,000,000 tickets on PostgreSQL"

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { \
		echo "error: '$(PYTHON)' was not found. Enque needs Python 3.11 or newer;" \
		     "install it, or point make at one: make PYTHON=/path/to/python3.12 run" >&2; \
		exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
		echo "error: Enque needs Python 3.11 or newer; '$(PYTHON)' is" \
		     "$$($(PYTHON) -c 'import platform; print(platform.python_version())')." \
		     "Install a newer Python, or: make PYTHON=python3.12 run" >&2; \
		exit 1; }
	@if [ -x $(PY) ] && ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then \
		echo "error: $(VENV) was made with Python" \
		     "$$($(PY) -c 'import platform; print(platform.python_version())'); Enque needs" \
		     "3.11 or newer. Remove it (rm -rf $(VENV)) and run make again." >&2; \
		exit 1; fi
	@[ -x $(PY) ] || { echo "Creating $(VENV) with $$($(PYTHON) --version)"; $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --disable-pip-version-check --quiet -r requirements-dev.txt
	@touch $@

run: venv
	$(PY) manage.py serve

test: venv
	$(PY) -m pytest $(ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrations-check: venv
	$(PY) manage.py makemigrations --check --dry-run

clean:
	rm -rf .pytest_cache .ruff_cache .hypothesis staticfiles test-artifacts
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

# Benchmarks (bench/): DATABASE_URL / REDIS_URL when set, else the embedded defaults.
SIZE ?= 10000
BENCH_FULL_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/enque_bench

bench-data: venv
	$(PY) bench/datagen.py --size $(SIZE)

bench: venv
	$(PY) bench/run.py --size 10000 $(ARGS)

bench-full: venv
	DATABASE_URL=$${DATABASE_URL:-$(BENCH_FULL_DATABASE_URL)} $(PY) bench/run.py --size 1000000 --name full $(ARGS)
