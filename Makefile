# The README's two commands: `make run` and `make test`. Each sets up everything it needs on a machine
# that has only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test
# Where the single-machine worker of `make run` keeps its queue (kombu's filesystem transport) and beat its
# schedule: the portal's var/ directory (PORTAL_VAR_DIR, as in portal/settings.py).
VAR_DIR := $(or $(PORTAL_VAR_DIR),var)

.PHONY: run test test-postgres test-redis lint setup db diagram bench clean worker beat

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found %s)." % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(INSTALLED)

setup: $(INSTALLED)

db: setup
	@mkdir -p $(VAR_DIR)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_catalogs
	$(BIN)/python manage.py setup_roles
	$(BIN)/python manage.py load_mapping_rules
	$(BIN)/python manage.py seed_demo

# One machine, no Redis: the web server runs its tasks in-process (memory:// broker, eager), and one worker
# with an embedded beat runs the periodic jobs, exchanging messages as files under $(VAR_DIR)/celery/.
# The worker stops with the server (Ctrl-C).
run: db
	@mkdir -p $(VAR_DIR)/celery/queue $(VAR_DIR)/celery/control
	@echo
	@echo "NHI Governance Portal: http://$(HOST):$(PORT)/admin/  (demo logins above)"
	@echo "Periodic jobs: one local worker with beat (filesystem broker in $(VAR_DIR)/celery/)"
	@echo
	@CELERY_BROKER_URL=filesystem:// CELERY_TASK_ALWAYS_EAGER=0 \
		$(BIN)/celery -A portal worker --beat --pool=solo --loglevel=INFO \
		--schedule $(VAR_DIR)/celerybeat-schedule & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# Production: workers and exactly one beat, each its own process, sharing the Redis broker named by
# CELERY_BROKER_URL (see README, "Background jobs"). Run as many `make worker` as you need.
worker: setup
	@test -n "$$CELERY_BROKER_URL" || { echo "Set CELERY_BROKER_URL (e.g. redis://127.0.0.1:6379/0)." >&2; exit 1; }
	$(BIN)/celery -A portal worker --loglevel=INFO

beat: setup
	@test -n "$$CELERY_BROKER_URL" || { echo "Set CELERY_BROKER_URL (e.g. redis://127.0.0.1:6379/0)." >&2; exit 1; }
	@mkdir -p $(VAR_DIR)
	$(BIN)/celery -A portal beat --loglevel=INFO --schedule $(VAR_DIR)/celerybeat-schedule

test: setup
	@mkdir -p $(VAR_DIR)
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest

test-postgres: setup
	DATABASE_URL=$(POSTGRES_URL) $(BIN)/pytest

# Real worker processes against Redis on 127.0.0.1:6379 (failed, not skipped, when Redis is unreachable).
test-redis: setup
	REQUIRE_REDIS=1 DATABASE_URL=$(POSTGRES_URL) $(BIN)/pytest -m redis

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
	-$(BIN)/python bench/audit_chain.py --database-url sqlite:///var/bench-audit.sqlite3

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
