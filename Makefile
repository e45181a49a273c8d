# ordertwin — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
KAFKA := bash deploy/kafka/kafka.sh
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	@touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create the virtualenv and install ordertwin with test tools

.PHONY: tools
tools: ## Install prometheus/promtool and chromium (Debian) for the deploy and ops-page tests, if missing
	@if command -v promtool >/dev/null && command -v prometheus >/dev/null && command -v chromium >/dev/null; then \
		echo "prometheus, promtool and chromium are installed"; \
	else \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			prometheus chromium >/dev/null; \
	fi

.PHONY: rules-test
rules-test: ## Unit-test the Prometheus alerting rules (promtool)
	cd deploy/prometheus && promtool check rules rules.yml && promtool test rules tests.yml

.PHONY: notify
notify: venv ## Deliver alerts to WeCom/DingTalk/webhooks (ORDERTWIN_NOTIFY_TARGETS)
	$(VENV)/bin/ordertwin notify

.PHONY: kafka-up
kafka-up: ## Fetch (first time) and start the local Kafka broker (idempotent)
	$(KAFKA) up

.PHONY: kafka-down
kafka-down: ## Stop the local Kafka broker
	$(KAFKA) down

.PHONY: kafka-status
kafka-status: ## Is the local broker running?
	$(KAFKA) status

.PHONY: topics
topics: venv kafka-up ## Create every topic of the catalogue (safe to re-run)
	$(VENV)/bin/ordertwin topics create

.PHONY: run
run: venv ## Kafka, topics, a scenario on every simulator, a connector per source, the worker; Ctrl-C stops them
	$(VENV)/bin/ordertwin dev

.PHONY: test
test: venv ## Run the whole suite (unit + agent + live) against a real local broker
	@started=0; \
	if ! $(KAFKA) status >/dev/null 2>&1; then $(KAFKA) up || exit 1; started=1; fi; \
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$started = 1 ]; then $(KAFKA) down; fi; \
	exit $$rc

.PHONY: test-unit
test-unit: venv ## Only the tests that need no broker
	$(PY) -m pytest -m "not live" $(PYTEST_ARGS)

.PHONY: lint
lint: venv ## ruff (lint + format check) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

.PHONY: check
check: lint test ## What CI runs: lint, then the whole suite

.PHONY: clean
clean: ## Remove worker state and caches (keeps the venv and Kafka jars)
	rm -rf var .pytest_cache .mypy_cache .ruff_cache .hypothesis

.PHONY: schema-snapshot
schema-snapshot: ## Freeze schemas/ as a released version for the compatibility tests: make schema-snapshot V=v2
	@test -n "$(V)" || (echo "usage: make schema-snapshot V=v2" && exit 2)
	@test ! -e schemas/history/$(V) || (echo "schemas/history/$(V) exists" && exit 2)
	mkdir -p schemas/history/$(V) && cp schemas/*.avsc schemas/history/$(V)/

.PHONY: bench
bench: venv ## Benchmarks against the local broker (BENCH_ARGS=--quick for a short run); appends bench/RESULTS.md
	@started=0; \
	if ! $(KAFKA) status >/dev/null 2>&1; then $(KAFKA) up || exit 1; started=1; fi; \
	$(PY) -m bench.run $(BENCH_ARGS); rc=$$?; \
	if [ $$started = 1 ]; then $(KAFKA) down; fi; \
	exit $$rc
