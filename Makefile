# Two commands on a fresh machine: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup demo test test-fast lint format clean

$(BIN)/seci: pyproject.toml requirements.lock
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: anything that depends on it would otherwise pull a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

setup: $(BIN)/seci

demo: setup
	$(BIN)/seci batch data/samples --out runs/demo --resume
	$(BIN)/seci timeline runs/demo --out runs/demo/report
	@echo "The report is at runs/demo/report/index.html"

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not corpus and not browser"

lint: setup
	$(BIN)/ruff check pipeline tests scripts
	$(BIN)/ruff format --check pipeline tests scripts

format: setup
	$(BIN)/ruff format pipeline tests scripts
	$(BIN)/ruff check --fix pipeline tests scripts

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
