# The two commands of the README, and the tools around them.
#   make demo   runs callbridge against its simulator on embedded defaults
#   make test   runs every test (what .ci/run calls)
# The bootstrap needs only python3: it installs uv through pip when missing and
# builds .venv/ from the committed lock file, every workspace package editable.

PYTHON ?= python3
VENV := .venv
UV := $(shell command -v uv 2>/dev/null || echo $(VENV)-tools/bin/uv)
STAMP := $(VENV)/.synced

.PHONY: demo test lint typecheck bench soak docs clean bootstrap browser

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

typecheck: $(STAMP)
	$(VENV)/bin/mypy core/src $(wildcard connectors/*/src) $(wildcard examples/*/src)

bench: $(STAMP)
	$(VENV)/bin/python bench/run.py

# A steady load against a failing, stalling CRM for SOAK_MINUTES (default 30); see bench/soak.py.
soak: $(STAMP)
	$(VENV)/bin/python bench/soak.py --minutes $${SOAK_MINUTES:-30}

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) $(VENV)-tools site
