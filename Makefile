# cnnsearch: `make demo` (set-up + the demo search) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FASHION_DIR := /usr/share/datasets/fashion-mnist
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# torch/torchvision: a range in pyproject; here the releases this machine has on disk.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.PHONY: setup dataset demo test lint clean-demo help bench up scale down logs dashboard

help:
	@echo "make demo   - set up, then search configs/fashion-mnist.yaml into sqlite:///cnnsearch.db"
	@echo "make test   - set up, then run the whole test suite"
	@echo "make lint   - ruff"

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PINS) || $(BIN)/pip install -q torch torchvision
	$(BIN)/pip install -q -e '.[test]'
	touch $@

dataset:
	@if [ ! -f $(FASHION_DIR)/train-images-idx3-ubyte.gz ]; then \
	  echo "installing Debian package dataset-fashion-mnist"; \
	  $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q dataset-fashion-mnist; \
	fi

demo: setup dataset
	$(BIN)/cnnsearch search --config configs/fashion-mnist.yaml

test: setup dataset
	$(BIN)/python -m pytest -q

# Search strategies benchmark (issue 5), full mode as in BENCHMARKS.md: ~11 min on 2 cores.
bench: setup dataset
	$(BIN)/python -m benchmarks.strategies

lint: setup
	$(BIN)/ruff check search models data tests benchmarks

clean-demo:
	rm -f cnnsearch.db
	rm -rf cnnsearch-artifacts

# ---- many GPUs: docker compose (see README "Running on many GPUs") ----
COMPOSE ?= docker compose
N ?= 2

secrets/postgres_password.txt:
	@mkdir -p secrets
	@umask 077; $(PYTHON) -c "import secrets; print(secrets.token_urlsafe(24) + '@:/%')" > $@
	@echo "wrote a random database password to $@"

up: secrets/postgres_password.txt
	$(COMPOSE) up -d --build

scale: secrets/postgres_password.txt
	$(COMPOSE) up -d --scale worker=$(N)

down:
	$(COMPOSE) down

logs:
	$(COMPOSE) logs -f --tail=100

dashboard:
	@echo "optuna-dashboard: http://127.0.0.1:8080 (no authentication; loopback only)"
	$(COMPOSE) up -d dashboard
