# Two entry points: `make run` (data, then the whole study) and `make test`.
# Both create or reuse .venv and install requirements.txt into it first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SEED ?= 641

.PHONY: venv data test run clean-venv

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

data: venv
	$(PY) setup_data.py --seed $(SEED)

test: $(VENV)/.installed-dev
	$(PY) -m pytest -q

run: data

clean-venv:
	rm -rf $(VENV)
