# cnnsearch: `make demo` (set-up + the demo search) and `make test` (the whole suite).
# `make help` lists every target: the `## ` comment after a target is its description.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FASHION_DIR := /usr/share/datasets/fashion-mnist
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# torch/torchvision: a range in pyproject; here the releases this machine has on disk. The
# Dockerfile's TORCH_PINS default is the same (tests/test_compose.py checks) and `make up`
# passes this value to the image build.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.PHONY: setup dataset tools demo test lint clean-demo help bench bench-rejection bench-choose bench-headline image up up-cpu scale scale-cpu bench-scale \
	down logs dashboard gpu-check up-packed up-mps

help: ## list the targets
	@awk 'BEGIN { FS = ":.*## " } /^[a-z][a-z-]*:.*## / { printf "make %-10s %s\n", $$1, $$2 }' \
	  $(MAKEFILE_LIST)

setup: $(VENV)/.installed ## create .venv and install cnnsearch with the test extras

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PINS) || $(BIN)/pip install -q torch torchvision
	$(BIN)/pip install -q -e '.[test]'
	touch $@

dataset: ## install Fashion-MNIST from Debian (dataset-fashion-mnist) if missing
	@if [ ! -f $(FASHION_DIR)/train-images-idx3-ubyte.gz ]; then \
	  echo "installing Debian package dataset-fashion-mnist"; \
	  $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q dataset-fashion-mnist; \
	fi

demo: setup dataset ## set up, then search configs/fashion-mnist.yaml into sqlite:///cnnsearch.db
	$(BIN)/cnnsearch search --config configs/fashion-mnist.yaml

test: setup dataset tools ## set up, then run the whole test suite
	$(BIN)/python -m pytest -q --durations=20

tools: ## install shellcheck from Debian if missing (the Slurm script's test uses it)
	@command -v shellcheck > /dev/null || { echo "installing Debian package shellcheck"; \
	  $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q shellcheck; }

# Search strategies benchmark (issues 5 and 9), full mode as in BENCHMARKS.md: 7 strategies x 10 seeds (6 took 85 min beside other runs; ours_sh adds about a minute a seed).
bench: setup dataset ## the search strategies benchmark, full mode (7 strategies x 10 seeds, ~1.5 h on 2 cores)
	$(BIN)/python -m benchmarks.strategies

# The range test as gate and bound-setter: SEEDS=dev (0,1) or report (300,301,302) on the
# contest protocol; any other config with CONFIG=FILE.
comma := ,
space := $(empty) $(empty)
SEEDS ?= report
CONFIG ?= benchmarks/protocols/contest.yaml
OUT ?= benchmarks/out
bench-rejection: setup dataset ## the gate and bound protocol (SEEDS=dev|report, CONFIG=FILE; hours a seed on 1 core)
	$(BIN)/python -m benchmarks.rejection --config $(CONFIG) --seeds $(SEEDS) --out $(OUT)/rejection-$(SEEDS)

# The method chosen on the development seeds (issue 20): their tables, then every ramp
# variant and bound rule read against them. Never run on reporting seeds.
bench-choose: setup dataset ## development seeds 0 and 1: tables, then the ramp and bound choice (choice-*.json)
	$(BIN)/python -m benchmarks.replay.table --config $(CONFIG) --seeds 0 --parts grid,lrfree --out $(OUT)/table-dev
	$(BIN)/python -m benchmarks.replay.table --config $(CONFIG) --seeds 1 --parts grid,lrfree --out $(OUT)/table-dev1
	$(BIN)/python -m benchmarks.rejection.choose --tables 0=$(OUT)/table-dev --out $(OUT)/choice/choice-0.json
	$(BIN)/python -m benchmarks.rejection.choose --tables 1=$(OUT)/table-dev1 --out $(OUT)/choice/choice-1.json
	$(BIN)/python -m benchmarks.rejection.choice_table $(OUT)/choice/choice-0.json $(OUT)/choice/choice-1.json --out benchmarks/results/contest-dev/choice.md

# The fair contest's headline (issue 20) from a clean clone: the reporting seeds' tables,
# the gate protocol on them, the replay over 100 seeds, live searches on 3 seeds, pooled.
REPORT_SEEDS := 300 301 302
bench-headline: setup dataset ## every fair-contest headline: tables, gate protocol, replay, live, pooled (days on 2 cores)
	for s in $(REPORT_SEEDS); do \
	  $(BIN)/python -m benchmarks.replay.table --config $(CONFIG) --seeds $$s --parts grid,lrfree,ours --out $(OUT)/contest-report/$$s || exit 1; \
	  $(BIN)/python -m benchmarks.rejection --config $(CONFIG) --extremes --seeds $$s --out $(OUT)/contest-report/rejection-$$s || exit 1; \
	done
	$(BIN)/python -m benchmarks.replay --config $(CONFIG) --tables $(addprefix $(OUT)/contest-report/,$(REPORT_SEEDS)) --data-seeds $(subst $(space),$(comma),$(REPORT_SEEDS)) --seeds 100 --out $(OUT)/replay
	for s in $(REPORT_SEEDS); do \
	  $(BIN)/python -m benchmarks.strategies --config $(CONFIG) --data-seed $$s --seeds 0,1,2 --replay $(OUT)/replay --out $(OUT)/live-$$s || exit 1; \
	done
	$(BIN)/python -m benchmarks.headline --rejection $(addprefix $(OUT)/contest-report/rejection-,$(REPORT_SEEDS)) --replay $(OUT)/replay --live $(addprefix $(OUT)/live-,$(REPORT_SEEDS)) --out benchmarks/results/contest

# The GPU check (issue 21, docs/gpu.md): on a machine with a CUDA GPU, under 8 minutes.
gpu-check: setup dataset ## on a CUDA GPU: its tests, the demo on the card, the throughput table, 4 packed workers on PostgreSQL; figures in gpu-check/
	$(BIN)/python -m benchmarks.gpu.check --out gpu-check

lint: setup ## ruff on the sources and tests
	$(BIN)/ruff check search models data tests benchmarks

clean-demo: ## remove the demo's database and artifacts
	rm -f cnnsearch.db
	rm -rf cnnsearch-artifacts

# ---- many GPUs: docker compose (see docs/distributed.md) ----
COMPOSE ?= docker compose
N ?= 2

secrets/postgres_password.txt:
	@mkdir -p secrets
	@umask 077; $(PYTHON) -c "import secrets; print(secrets.token_urlsafe(24) + '@:/%')" > $@
	@echo "wrote a random database password to $@"

image: secrets/postgres_password.txt ## build the one image, cnnsearch:local (torch from TORCH_PINS)
	$(COMPOSE) build --build-arg TORCH_PINS='$(TORCH_PINS)' create-study

up: image ## postgres + proxy + create-study + 1 GPU worker + dashboard (docker compose)
	$(COMPOSE) up -d

up-cpu: image ## the same with 1 CPU worker (compose profile `cpu`, no GPU needed)
	$(COMPOSE) --profile cpu up -d worker-cpu dashboard

up-packed: image ## postgres + create-study + 1 worker packing trials on every GPU (TRIALS_PER_GPU=auto|N) + dashboard
	$(COMPOSE) --profile packed up -d worker-packed dashboard

up-mps: image ## the same under CUDA MPS (compose profile `mps`: the MPS daemon and the packed worker)
	$(COMPOSE) --profile mps up -d mps worker-mps dashboard

scale: secrets/postgres_password.txt ## run N GPU workers (make scale N=8)
	$(COMPOSE) up -d --scale worker=$(N)

scale-cpu: secrets/postgres_password.txt ## run N CPU workers (make scale-cpu N=8)
	$(COMPOSE) --profile cpu up -d --scale worker-cpu=$(N) worker-cpu dashboard

down: ## stop and remove every container (volumes are kept)
	$(COMPOSE) --profile cpu --profile packed --profile mps down

logs: ## follow the containers' logs
	$(COMPOSE) --profile cpu --profile packed --profile mps logs -f --tail=100

# The scale benchmark (issue 24): 16, 64 and 256 lightweight workers through one proxy.
bench-scale: setup ## workers through one proxy: 16, 64, 256 processes, SIGKILLs, a database restart (~15 min)
	$(BIN)/python -m benchmarks.scale.run --out benchmarks/out/scale

dashboard: ## start the dashboard on http://127.0.0.1:8080 (no authentication)
	@echo "optuna-dashboard: http://127.0.0.1:8080 (no authentication; loopback only)"
	$(COMPOSE) up -d dashboard
