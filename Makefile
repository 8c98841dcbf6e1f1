# The two commands of the README, and the tools around them.
#   make demo   runs callbridge against its simulator on embedded defaults
#   make test   runs every test (what .ci/run calls)
# The bootstrap needs only python3: it installs uv through pip when missing and
# builds .venv/ from the committed lock file, every workspace package editable.

PYTHON ?= python3
VENV := .venv
UV := $(shell command -v uv 2>/dev/null || echo $(VENV)-tools/bin/uv)
STAMP := $(VENV)/.synced

.PHONY: demo test lint typecheck bench docs clean bootstrap browser dist

$(VENV)-tools/bin/uv:
	$(PYTHON) -m venv $(VENV)-tools
	$(VENV)-tools/bin/pip install --quiet uv

$(STAMP): uv.lock pyproject.toml core/pyproject.toml $(wildcard connectors/*/pyproject.toml) $(wildcard examples/*/pyproject.toml) | $(UV)
	$(UV) sync --frozen --all-packages --python $(PYTHON)
	touch $(STAMP)

bootstrap: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/callbridge demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/hadolint Dockerfile
	$(VENV)/bin/shellcheck docker/entrypoint.sh

typecheck: $(STAMP)
	$(VENV)/bin/mypy core/src $(wildcard connectors/*/src) $(wildcard examples/*/src)

bench: $(STAMP)
	$(VENV)/bin/python bench/run.py

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) $(VENV)-tools site

# A wheel and an sdist of every distribution (core, connectors, examples) into $(DIST)/, all
# with the version in VERSION, and their metadata checked as a package index would. The
# HubSpot wheel ships the calling-extensions SDK, built from npm first.
# docs/install.md says how to install from there; tests/dist/ runs this target.
DIST ?= dist
dist: $(STAMP)
	rm -rf $(DIST)
	$(MAKE) -C connectors/hubspot sdk
	$(UV) build --all-packages --out-dir $(DIST)
	$(VENV)/bin/twine check --strict $(DIST)/*
