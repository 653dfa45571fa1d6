# The two commands a new user needs: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PYTHON ?= python3
PORT ?= 8000
# Every process of `make run` writes its Prometheus counters here (multiprocess
# mode, docs/operations.md#metrics); emptied before they start.
PROMETHEUS_MULTIPROC_DIR ?= var/prometheus

# make test runs against PostgreSQL and Redis; override to point elsewhere.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/webhooks
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
# make screenshots drops and recreates this database: keep it a throwaway one.
SCREENSHOTS_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/webhooks_screenshots
SCREENSHOTS_DIR ?= var/screenshots

.PHONY: install run test lint bench check-services screenshots browser pgbouncer iproute2

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt
	touch $@

run: install
	DEBUG=$${DEBUG:-true} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-true} $(PY) manage.py collectstatic --noinput -v 0
	@echo ""
	@echo "  API      http://127.0.0.1:$(PORT)/api/v1/webhooks"
	@echo "  API docs http://127.0.0.1:$(PORT)/api/docs/"
	@echo "  Admin    http://127.0.0.1:$(PORT)/admin/"
	@echo "  Health   http://127.0.0.1:$(PORT)/health"
	@echo ""
	@echo "  Create an API key:   DEBUG=true $(PY) manage.py create_api_key --client acme --scope subscriptions --scope publish"
	@echo "  Create an admin:     DEBUG=true $(PY) manage.py createsuperuser"
	@echo "  A local receiver:    DEBUG=true $(PY) manage.py run_receiver --port 9000"
	@echo ""
	@echo "  WEBHOOK_ALLOW_PRIVATE_DESTINATIONS=true: local development may deliver to"
	@echo "  127.0.0.1 and private networks (never set this in production)."
	@echo ""
	mkdir -p $(PROMETHEUS_MULTIPROC_DIR) && rm -f $(PROMETHEUS_MULTIPROC_DIR)/*.db
	PATH="$(abspath $(BIN)):$$PATH" PORT=$(PORT) WEBHOOK_ALLOW_PRIVATE_DESTINATIONS=true \
		PROMETHEUS_MULTIPROC_DIR=$(abspath $(PROMETHEUS_MULTIPROC_DIR)) \
		DEBUG=$${DEBUG:-true} $(BIN)/honcho start -f Procfile web worker beat

# The screenshot test and `make screenshots` drive Debian's chromium (playwright's
# own browser download cannot be used); installed when missing and we are root.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium); } || \
		{ echo "chromium is missing: apt-get install chromium (as root)"; exit 1; }

# The PgBouncer tests (tests/faults/test_pgbouncer.py) start Debian's pgbouncer
# in transaction pooling mode; installed when missing and we are root.
pgbouncer:
	@command -v pgbouncer >/dev/null || test -x /usr/sbin/pgbouncer || { [ "$$(id -u)" = 0 ] && \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbouncer); } || \
		{ echo "pgbouncer is missing: apt-get install pgbouncer (as root)"; exit 1; }

# The multi-host tests (tests/multihost) make hosts with iproute2's `ip netns`;
# installed when missing and we are root (without root they are skipped).
iproute2:
	@command -v ip >/dev/null || test -x /usr/sbin/ip || test -x /sbin/ip || \
		{ [ "$$(id -u)" = 0 ] && (apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q iproute2); } || \
		echo "iproute2 is missing: the multi-host tests will be skipped"

check-services: install
	@DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m tests.check_services

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	DEBUG=true DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) \
		$(PY) manage.py makemigrations --check --dry-run

test: install browser pgbouncer iproute2 check-services lint
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) \
		$(BIN)/pytest $(PYTEST_ARGS)

bench: install
	$(PY) -m bench $(BENCH_ARGS)

# Admin screenshots (Debian's chromium, driven by playwright) into $(SCREENSHOTS_DIR).
screenshots: install browser
	DATABASE_URL=$(SCREENSHOTS_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) \
		$(PY) scripts/screenshots.py $(SCREENSHOTS_DIR) --fresh
