# Office Actions Portal. `make help` lists the targets.
# Everything a fresh Debian machine with Python 3.11 needs is installed from here.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
# Debian packages the tests start for real: an IMAP server, a browser and PostgreSQL.
TEST_PACKAGES := dovecot-imapd chromium postgresql
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.DEFAULT_GOAL := help
.PHONY: help run serve test lint format install install-test system-packages build-packages migrate bench bench-load clean

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-16s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-venv && \
		$(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python build-packages
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python build-packages
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed ## Create .venv and install the app

install-test: $(VENV)/.installed-test system-packages ## Install what the tests need

build-packages: ## Install what PyICU builds with (ICU headers, pkg-config, a C++ compiler) when missing
	@missing=""; \
	pkg-config --exists icu-uc 2>/dev/null || missing="$$missing libicu-dev pkg-config"; \
	command -v g++ >/dev/null || missing="$$missing g++"; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

system-packages: ## Install Dovecot, Chromium and PostgreSQL from Debian when missing
	@missing=""; \
	[ -x /usr/sbin/dovecot ] || missing="$$missing dovecot-imapd"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq; \
		printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null; \
		$(SUDO) chmod +x /usr/sbin/policy-rc.d; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
		status=$$?; $(SUDO) rm -f /usr/sbin/policy-rc.d; exit $$status; \
	fi

migrate: $(VENV)/.installed ## Apply database migrations (SQLite under instance/ by default)
	$(BIN)/flask --app wsgi db upgrade

# Links in mail follow the address `make run` serves on, unless PORTAL_PUBLIC_URL is set (in the
# environment or in .env).
run: migrate ## Serve the portal on http://HOST:PORT (127.0.0.1:5000) with SQLite, and the mail delivery worker
	@if [ -z "$${PORTAL_PUBLIC_URL:-}" ] && ! grep -qs '^ *PORTAL_PUBLIC_URL=' .env; then \
		export PORTAL_PUBLIC_URL="http://$(HOST):$(PORT)"; fi; \
	$(BIN)/flask --app wsgi outbox run & worker=$$!; \
	$(BIN)/flask --app wsgi first-steps --wait & steps=$$!; \
	trap 'kill $$worker $$steps 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/flask --app wsgi run --host $(HOST) --port $(PORT)

serve: $(VENV)/.installed ## gunicorn as in production (deploy/gunicorn.conf.py) on HOST:PORT; no migrate, no workers
	PORTAL_BIND="$${PORTAL_BIND:-$(HOST):$(PORT)}" $(BIN)/gunicorn --config deploy/gunicorn.conf.py

lint: $(VENV)/.installed-test ## ruff: lint and check formatting
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-test ## ruff: fix what can be fixed and format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Which databases `make test` covers: sqlite, postgresql or both (each database test runs twice).
PORTAL_TEST_DATABASE ?= both
export PORTAL_TEST_DATABASE

test: install-test lint ## Lint, then the whole suite on SQLite and PostgreSQL against real servers
	$(BIN)/pytest

bench: install-test ## Run the benchmarks (see bench/README.md; the inbox seed takes ~6 min, 2.5 GB)
	$(BIN)/python -m bench.bench_mailbridge
	if [ -f bench/results/inbox.sqlite3 ]; then $(BIN)/python -m bench.seed_inbox --upgrade-only; \
	else $(BIN)/python -m bench.seed_inbox; fi
	$(BIN)/python -m bench.bench_inbox

bench-load: $(VENV)/.installed-test ## Load benchmark: gunicorn, 40 filers + 10 staff for 60 s (BENCH_LOAD_ARGS=...)
	$(BIN)/python -m bench.bench_load $(BENCH_LOAD_ARGS)

clean: ## Remove the virtualenv and caches (keeps instance/)
	rm -rf $(VENV) .pytest_cache .ruff_cache
