# Two entry points: `make run` (data, then the whole study) and `make test`.
# Both create or reuse .venv and install requirements.txt into it first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SEED ?= 641

P1 := problem1/results
P2 := problem2/results
P1_RUNS := $(P1)/vanilla $(P1)/fixed_feature_matching $(P1)/fixed_unrolled $(P1)/fixed_minibatch
# A run folder that already has a checkpoint is continued (--resume), so an interrupted
# `make run` picks up where it stopped instead of starting over.
resume_if = $(if $(wildcard $(1)),--resume,)

.PHONY: venv data test run problem1 problem2 notebook clean-venv

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

data: data/fonts/metadata.json data/drums/patterns.npz

data/fonts/metadata.json data/drums/patterns.npz: | $(VENV)/.installed
	$(PY) setup_data.py --seed $(SEED)

test: $(VENV)/.installed-dev
	$(PY) -m pytest -q

run: problem1 problem2 notebook

# Problem 1: four 100-epoch letter GANs, the known-mode benchmark, the comparison.
$(P1)/vanilla/checkpoint_epoch100.pth: | data
	$(PY) problem1/train.py --experiment vanilla $(call resume_if,$(@D)/checkpoint_last.pth)

# The unrolled default (k = 5, differentiated through) costs 10.9x a vanilla step on a
# CPU, so the study runs k = 3 first order, which stays under an hour.
P1_FLAGS_unrolled := --unroll-steps 3 --unroll-first-order

$(P1)/fixed_%/checkpoint_epoch100.pth: | data
	$(PY) problem1/train.py --experiment fixed --fix $* $(P1_FLAGS_$*) $(call resume_if,$(@D)/checkpoint_last.pth)

problem1: $(addsuffix /checkpoint_epoch100.pth,$(P1_RUNS))
	$(PY) problem1/toy_mixture.py
	$(PY) problem1/evaluate.py --runs $(P1_RUNS)

# Problem 2: the default drum VAE, the schedule comparison, the latent analysis.
# evaluation.json is written last, so its presence marks a finished run.
$(P2)/evaluation.json: | data
	$(PY) problem2/train.py $(call resume_if,$(@D)/last.pth)

$(P2)/compare/%/evaluation.json: | data
	$(PY) problem2/train.py --out $(@D) $(COMPARE_FLAGS_$*) $(call resume_if,$(@D)/last.pth)

COMPARE_RUNS := linear none cyclical_no_free_bits none_no_free_bits
COMPARE_FLAGS_linear := --anneal linear
COMPARE_FLAGS_none := --anneal none
COMPARE_FLAGS_cyclical_no_free_bits := --free-bits-high 0
COMPARE_FLAGS_none_no_free_bits := --anneal none --free-bits-high 0

problem2: $(P2)/evaluation.json $(foreach run,$(COMPARE_RUNS),$(P2)/compare/$(run)/evaluation.json)
	$(PY) problem2/evaluate.py --compare $(P2) $(addprefix $(P2)/compare/,$(COMPARE_RUNS))
	$(PY) problem2/analyze_latent.py

notebook: problem2
	$(PY) -m jupyter execute problem2/experiments.ipynb --output results/experiments_executed

clean-venv:
	rm -rf $(VENV)
