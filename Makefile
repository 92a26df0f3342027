# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench lab clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV) || { apt-get update && apt-get install -y python3-venv && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[spark,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m linkis_magic.cli demo

lint: $(STAMP)
	$(VENV)/bin/ruff check linkis_magic tests
	$(VENV)/bin/mypy

test: $(STAMP) lint
	$(VENV)/bin/pytest -ra

bench: $(STAMP)
	$(PY) -m bench

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --ServerApp.ip=127.0.0.1

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
