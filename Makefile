# Entry points: `make demo` runs the whole system, `make test` passes every test.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
FIELDLINE := $(VENV)/bin/fieldline
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint fmt install services clean web

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

services: install
	$(FIELDLINE) services up

demo: services
	$(FIELDLINE) demo

# pytest exits 5 when it collected nothing: say so rather than fail.
test: services
	@$(PY) -m pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$status

# The map benchmark's baseline page loads MapLibre GL JS from web/node_modules.
bench: services web/node_modules
	$(PY) bench/run_all.py

web/node_modules: web/package-lock.json
	cd web && npm ci
	touch web/node_modules

# The map's script and styles: web/src bundled with MapLibre GL JS into
# fieldline/server/map/static/ (committed, so nothing else needs Node.js).
web:
	cd web && npm ci && npm run build

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy fieldline

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
