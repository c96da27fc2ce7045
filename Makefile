# The verbs of the project. Every target installs what it needs first, so on a fresh
# machine `make up` and `make test` are the only commands to type.

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
KAFKA_LIBS := .local/kafka/libs/.resolved
SERVICES := order inventory fulfilment returns notification operations

.DEFAULT_GOAL := help
.PHONY: help install up down status demo test test-fast contracts lint infra-up infra-down clean faults bench bench-quick

help: ## List the verbs
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

install: $(INSTALLED) ## Create the virtual environment with every dependency

infra-up: $(INSTALLED) ## Start Kafka (KRaft) and PostgreSQL locally; a no-op when running
	PYTHON=$(PY) bash deploy/local/infra.sh up

infra-down: ## Stop the local Kafka and PostgreSQL
	bash deploy/local/infra.sh down

# The demo runs fulfilment in automatic mode (the warehouse and the carrier simulated).
DEMO_ENV := OMS_FULFILMENT_AUTO=true

up: infra-up ## Start the infrastructure and the five services, then run the demo
	$(DEMO_ENV) PYTHON=$(PY) bash deploy/local/services.sh start mail $(SERVICES)
	$(PY) -m demo

demo: ## Push another stream of demo orders through the running system
	$(PY) -m demo

down: ## Stop the services and the infrastructure
	bash deploy/local/services.sh stop $(SERVICES) mail
	bash deploy/local/infra.sh down

status: ## Show what is running
	bash deploy/local/infra.sh status; bash deploy/local/services.sh status mail $(SERVICES)

test: $(INSTALLED) ## Run every test (starts its own Kafka and PostgreSQL when none is given)
	$(VENV)/bin/pytest

test-fast: $(INSTALLED) ## Run the tests that need no broker or database
	$(VENV)/bin/pytest -m "not integration and not e2e"

faults: $(INSTALLED) ## Fault suite, long budget and three brokers (report: reports/faults.json)
	OMS_FAULTS_BUDGET=long OMS_FAULTS_BROKERS=3 $(VENV)/bin/pytest -m faults -s

bench: $(INSTALLED) ## Benchmark: every phase on its own Kafka and PostgreSQL (report: reports/bench.json)
	$(PY) -m bench $(BENCH_ARGS)

bench-quick: $(INSTALLED) ## The benchmark with short steps (about ten minutes)
	$(PY) -m bench --quick $(BENCH_ARGS)

contracts: $(INSTALLED) ## Export the event JSON Schemas and the AsyncAPI document
	$(PY) -m contracts.export

lint: $(INSTALLED) ## ruff, mypy and the import contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy contracts services adapters cli demo bench tests
	$(VENV)/bin/lint-imports

clean: down ## Stop everything and delete local state (Kafka data, databases, logs)
	rm -rf .local/kafka-data .local/postgres-data .local/postgres-run .local/logs .local/run \
		.local/kafka-cluster .local/kafka-cluster-data .local/test-infra .local/bench-infra \
		.local/bench-logs
