# SoftFactory: `make run` and `make test` set everything up themselves (README.md).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STACK := scripts/stack
# The local stack's addresses plus a per-checkout development SECRET_KEY.
WITH_ENV = set -a && eval "$$($(STACK) env)" && SECRET_KEY="$$(cat var/secret_key)" && set +a &&
# Static checks import settings but touch no server: placeholder addresses are enough.
LINT_ENV = DEBUG=True DATABASE_URL=postgres://lint@127.0.0.1:1/lint REDIS_URL=redis://127.0.0.1:1/0 DATABASE_REPLICA_URLS=

.PHONY: help venv stack migrate static run test chaos lint stop clean promtool

# promtool (Prometheus rule checks and rule unit tests) from Debian's `prometheus` package,
# unpacked into var/tools: nothing is installed and no service starts.
PROMTOOL := var/tools/promtool
PROM_RULES := deploy/prometheus/rules/*.yml
PROM_RULE_TESTS := deploy/prometheus/tests/*.yml

help:
	@echo "make run    set up everything and serve SoftFactory"
	@echo "make test   set up everything and run the test suite"
	@echo "make chaos  kill workers and beats while 2,000 posts are published (tests/celery/test_chaos.py)"
	@echo "make lint   ruff, mypy, import-linter, migrations check"
	@echo "make stop   stop the local stack"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
		{ echo "SoftFactory needs Python 3.11 (found $$($(PYTHON) --version)); set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

var/secret_key:
	@mkdir -p var
	@$(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))' > $@

stack: var/secret_key
	@$(STACK) start > /dev/null

migrate: venv stack
	@$(WITH_ENV) $(PY) manage.py migrate --noinput

static: venv
	@$(WITH_ENV) $(PY) manage.py collectstatic --noinput --verbosity 0

# A small demo set and the demo staff user, once per checkout's database.
var/demo_seeded: | migrate
	@$(WITH_ENV) $(PY) manage.py seed --scale demo
	@touch $@

run: migrate static var/demo_seeded
	@$(WITH_ENV) $(PY) manage.py schedule_demo_post
	@echo "  Demo data: staff login staff@softfactory.local / softfactory-demo (admin and API)."
	@$(WITH_ENV) port=$$($(PY) -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	for p in 8000 8001 8002 8080; do (exec 3<>/dev/tcp/127.0.0.1/$$p) 2>/dev/null || { port=$$p; break; }; done; \
	echo ""; echo "SoftFactory is starting on http://127.0.0.1:$$port/"; \
	echo "  health: http://127.0.0.1:$$port/healthz   readiness: http://127.0.0.1:$$port/readyz"; \
	echo "  API docs: http://127.0.0.1:$$port/api/docs/   admin: http://127.0.0.1:$$port/admin/"; \
	echo "  Ctrl-C stops the web server; \`make stop\` stops the database and Redis servers."; echo ""; \
	eval "$$($(STACK) start --with-pgbouncer | grep '^export DATABASE_POOL_')"; \
	export PROMETHEUS_MULTIPROC_DIR=$(CURDIR)/var/prometheus && rm -rf "$$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$$PROMETHEUS_MULTIPROC_DIR"; \
	$(VENV)/bin/celery -A softfactory worker -n worker1@%h -l INFO & worker=$$!; \
	$(VENV)/bin/celery -A softfactory beat -S django_celery_beat.schedulers:DatabaseScheduler \
		--pidfile var/celerybeat.pid -l INFO & beat=$$!; \
	trap 'kill -TERM $$worker $$beat 2>/dev/null; wait $$worker $$beat 2>/dev/null' EXIT INT TERM; \
	echo "  Celery: one worker (pid $$worker, every queue) and one beat (pid $$beat); they stop with the web server."; \
	echo "  More workers (never more beats): set -a; eval \"\$$($(STACK) env)\"; SECRET_KEY=\$$(cat var/secret_key); set +a;"; \
	echo "    $(VENV)/bin/celery -A softfactory worker -n worker2@%h   (docs/SCHEDULING.md)"; echo ""; \
	GUNICORN_BIND=127.0.0.1:$$port $(VENV)/bin/gunicorn softfactory.wsgi -c gunicorn.conf.py

test: venv stack static promtool
	@$(WITH_ENV) $(VENV)/bin/pytest $(PYTEST_ARGS) && \
		$(PY) manage.py migrate --noinput --verbosity 0 && \
		$(PY) manage.py check_indexes

# Fault-injection runs with real workers and beats (tests/celery/test_chaos.py, ~2 minutes).
chaos: venv stack static
	@$(WITH_ENV) $(VENV)/bin/pytest -m chaos -s $(PYTEST_ARGS)

lint: venv promtool
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(LINT_ENV) $(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports
	$(LINT_ENV) $(PY) -W ignore::RuntimeWarning manage.py makemigrations --check --dry-run > /dev/null
	$(PROMTOOL) check rules $(PROM_RULES)
	$(PROMTOOL) test rules $(PROM_RULE_TESTS)

$(PROMTOOL):
	@mkdir -p var/tools/deb
	@cd var/tools/deb && { apt-get download prometheus > /dev/null 2>&1 || \
		{ [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get download prometheus > /dev/null 2>&1; } || \
		{ echo "could not download Debian's prometheus package for promtool (as root this runs apt-get update first)"; exit 1; }; }
	@dpkg-deb -x var/tools/deb/prometheus_*.deb var/tools/deb/root
	@cp var/tools/deb/root/usr/bin/promtool $@ && rm -rf var/tools/deb
	@$@ --version | head -1

promtool: $(PROMTOOL)

stop:
	@$(STACK) stop

clean: stop
	$(STACK) destroy
	rm -rf $(VENV) var

# The benchmark (bench/run.py, docs/PERFORMANCE.md): its own private stack under var/bench, its
# own gunicorn and Celery worker; the load tool lives in bench/.venv, apart from the app.
.PHONY: bench bench-smoke
BENCH_VENV := bench/.venv
SCALE ?= full

$(BENCH_VENV)/.installed: requirements-bench.txt
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -r requirements-bench.txt
	touch $@

bench: venv var/secret_key $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python bench/run.py --scale $(SCALE)

bench-smoke:
	$(MAKE) bench SCALE=small
