# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# System packages come from apt-get (as root, or through sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CHROMIUM := /usr/bin/chromium

.PHONY: install system-deps browser-deps demo test lint bench lab clean

$(STAMP): pyproject.toml $(wildcard kernelspec/*/kernel.json)
	$(PYTHON) -m venv $(VENV) || { apt-get update && apt-get install -y python3-venv && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[spark,dev]'
	touch $(STAMP)

install: $(STAMP)

# Java 17 for the Spark engine, when no java is on the PATH; openssl for the TLS test's certificate.
system-deps:
	@command -v java >/dev/null || { $(SUDO) apt-get update && $(SUDO) apt-get install -y openjdk-17-jre-headless; }
	@command -v openssl >/dev/null || { $(SUDO) apt-get update && $(SUDO) apt-get install -y openssl; }

# Debian's Chromium for the browser test (Playwright's own browser download does not work offline).
browser-deps:
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }

demo: $(STAMP) system-deps
	$(PY) -m linkis_magic.cli demo

lint: $(STAMP)
	$(VENV)/bin/ruff check linkis_magic tests
	$(VENV)/bin/mypy

test: $(STAMP) system-deps browser-deps lint
	$(VENV)/bin/pytest -ra

bench: $(STAMP)
	$(PY) -m bench

lab: $(STAMP) system-deps
	$(PY) -m linkis_magic.demo lab

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
