# byom: the two commands of the quick start, and what they build on.
#   make run    set up, register the sample model, open the console
#   make test   set up, then lint and type-check, and run every test (what CI runs)

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
UV      = $(VENV)/bin/uv
BYOM    = $(VENV)/bin/byom
PORT   ?= 8501
# pytest workers: the machines here have 2 cores
WORKERS ?= 2
LATEST ?= .venv-latest

.PHONY: setup run test lint typecheck lock test-latest bench clean-venv

setup: $(VENV)/.installed

# Installs exactly requirements.txt, the lock, and nothing else: uv first (its
# own pinned, hashed line of the lock), then the whole tree, then byom itself
# without dependencies. The stamp makes a second `make` install nothing.
$(VENV)/.installed: requirements.txt pyproject.toml setup.py
	@rm -f $@
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	awk '/^uv==/{p=1; print; next} p && /^ /{print; next} {p=0}' requirements.txt >$(VENV)/uv-lock.txt
	$(PY) -m pip install --quiet --no-deps --require-hashes -r $(VENV)/uv-lock.txt
	$(UV) pip sync --quiet --python $(PY) --require-hashes requirements.txt
	$(UV) pip install --quiet --python $(PY) --no-deps --no-build-isolation -e .
	$(PY) scripts/check_lock.py
	touch $@

run: setup
	$(BYOM) console --setup-demo --port $(PORT)

test: lint
	bash scripts/ensure-chromium.sh
	$(VENV)/bin/pytest -n $(WORKERS) --dist loadgroup --durations 15

lint: setup
	$(PY) scripts/check_lock.py
	$(VENV)/bin/ruff check .
	MYPY=$(VENV)/bin/mypy bash scripts/typecheck.sh

typecheck: setup
	MYPY=$(VENV)/bin/mypy bash scripts/typecheck.sh

# Regenerate the lock from pyproject.toml, keeping every pin that still fits.
# Upgrade one dependency: make lock ARGS="-P transformers"; all: ARGS=--upgrade.
lock: setup
	UV=$(UV) PYTHON=$(PY) bash scripts/lock.sh $(ARGS)

# The whole suite on the newest versions pyproject.toml allows, in a venv of
# its own; it tells early what the next `make lock --upgrade` would break.
test-latest:
	test -x $(LATEST)/bin/python || $(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade uv
	$(LATEST)/bin/uv pip install --quiet --python $(LATEST)/bin/python --upgrade \
	  --find-links /opt/wheels -e '.[dev]'
	$(LATEST)/bin/uv pip install --quiet --python $(LATEST)/bin/python --no-deps \
	  $$($(PYTHON) scripts/check_lock.py --inputs | sed '/^--$$/q' | sed '$$d')
	bash scripts/ensure-chromium.sh
	$(LATEST)/bin/pytest -n $(WORKERS) --dist loadgroup -p no:cacheprovider

bench: setup
	for script in bench/*.py; do $(PY) $$script || exit 1; done

clean-venv:
	rm -rf $(VENV) $(LATEST)
