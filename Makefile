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

.PHONY: help venv stack migrate static run test lint stop clean

help:
	@echo "make run    set up everything and serve SoftFactory"
	@echo "make test   set up everything and run the test suite"
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

run: migrate static
	@$(WITH_ENV) port=$$($(PY) -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	for p in 8000 8001 8002 8080; do (exec 3<>/dev/tcp/127.0.0.1/$$p) 2>/dev/null || { port=$$p; break; }; done; \
	echo ""; echo "SoftFactory is starting on http://127.0.0.1:$$port/"; \
	echo "  health: http://127.0.0.1:$$port/healthz   readiness: http://127.0.0.1:$$port/readyz"; \
	echo "  API docs: http://127.0.0.1:$$port/api/docs/   admin: http://127.0.0.1:$$port/admin/"; \
	echo "  Ctrl-C stops the web server; \`make stop\` stops the database and Redis servers."; echo ""; \
	GUNICORN_BIND=127.0.0.1:$$port exec $(VENV)/bin/gunicorn softfactory.wsgi -c gunicorn.conf.py

test: venv stack static
	@$(WITH_ENV) $(VENV)/bin/pytest $(PYTEST_ARGS) && \
		$(PY) manage.py migrate --noinput --verbosity 0 && \
		$(PY) manage.py check_indexes

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(LINT_ENV) $(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports
	$(LINT_ENV) $(PY) -W ignore::RuntimeWarning manage.py makemigrations --check --dry-run > /dev/null

stop:
	@$(STACK) stop

clean: stop
	$(STACK) destroy
	rm -rf $(VENV) var
