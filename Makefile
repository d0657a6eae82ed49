# The README's two commands: `make run` and `make test`. Each sets up everything it needs on a machine
# that has only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: run test test-postgres lint setup db diagram bench clean

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found %s)." % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(INSTALLED)

setup: $(INSTALLED)

db: setup
	@mkdir -p var
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_catalogs
	$(BIN)/python manage.py setup_roles
	$(BIN)/python manage.py load_mapping_rules
	$(BIN)/python manage.py seed_demo

run: db
	@echo
	@echo "NHI Governance Portal: http://$(HOST):$(PORT)/admin/  (demo logins above)"
	@echo
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

test: setup
	@mkdir -p var
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest

test-postgres: setup
	DATABASE_URL=$(POSTGRES_URL) $(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

diagram: setup
	$(BIN)/python manage.py lifecycle_diagram --output docs/lifecycle.mmd

# Each benchmark exits 1 when it misses its target; run them all (-) and read docs/PERFORMANCE.md.
bench: setup
	-$(BIN)/python bench/changelists.py --database-url sqlite:///var/bench.sqlite3
	-$(BIN)/python bench/alignment_report.py --database-url sqlite:///var/bench-report.sqlite3 --reuse
	-$(BIN)/python bench/findings_import.py --database-url sqlite:///var/bench-findings.sqlite3

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
