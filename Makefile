# The two commands of the README, and the tools around them.
#   make demo   runs callbridge against its simulator on embedded defaults
#   make test   runs every test (what .ci/run calls)
#   make services  installs what the tests start (MariaDB, Redis, Chromium) on Debian/Ubuntu
# The bootstrap needs only python3: it installs uv through pip when missing and
# builds .venv/ from the committed lock file, every workspace package editable.

PYTHON ?= python3
VENV := .venv
UV := $(shell command -v uv 2>/dev/null || echo $(VENV)-tools/bin/uv)
STAMP := $(VENV)/.synced

# The Debian/Ubuntu packages the tests need: the one list, used by `make services` (and so by
# .ci/run). Without them the tests that start MariaDB, Redis or headless Chromium skip, and
# `make test` ends with a line saying so. Elsewhere, install the same programs with your
# package manager (mariadbd + mariadb-install-db, redis-server, chromium on PATH).
# gcc, libmariadb-dev and curl: the sys_exec tests compile a small test UDF (tests/mysql/udf/)
# and run a real curl.
DEBIAN_PACKAGES := mariadb-server redis-server chromium gcc libmariadb-dev curl
APT_GET ?= apt-get
SUDO ?= $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint typecheck bench bench-scale soak docs docs-gen shell clean bootstrap browser services bench-mysql dist

$(VENV)-tools/bin/uv:
	$(PYTHON) -m venv $(VENV)-tools
	$(VENV)-tools/bin/pip install --quiet uv

# --inexact: a plugin you installed into .venv yourself (`uv pip install -e ./callbridge-acme`,
# or `callbridge new-plugin NAME --install`) survives the next sync; an exact sync would
# uninstall it (tests/docs/test_docs_commands.py checks this).
$(STAMP): uv.lock pyproject.toml core/pyproject.toml $(wildcard connectors/*/pyproject.toml) $(wildcard examples/*/pyproject.toml) | $(UV)
	$(UV) sync --frozen --all-packages --inexact --python $(PYTHON)
	touch $(STAMP)

bootstrap: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/callbridge demo $(ARGS)

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/python tools/check_size.py
	$(VENV)/bin/hadolint Dockerfile
	$(VENV)/bin/shellcheck docker/entrypoint.sh
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy core/src $(wildcard connectors/*/src) $(wildcard examples/*/src)

# Everything measured: the service (bench/run.py: acks, pops, then many companies) and the
# engine workers on Redis (bench-scale). About three minutes on a 2-core machine.
bench: $(STAMP)
	$(VENV)/bin/python bench/run.py
	$(VENV)/bin/python bench/scale.py

# Engine workers on one Redis journal alone: calls/s with 1, 2, 3 workers, CPU per call,
# takeover after kill -9 (about a minute; see bench/scale.py).
bench-scale: $(STAMP)
	$(VENV)/bin/python bench/scale.py

# What the MySQL triggers cost the PBX's writes, and write-to-journal latency (docs/mysql.md).
bench-mysql: $(STAMP)
	$(VENV)/bin/python bench/mysql.py

# A steady load against a failing, stalling CRM for SOAK_MINUTES (default 30); see bench/soak.py.
soak: $(STAMP)
	$(VENV)/bin/python bench/soak.py --minutes $${SOAK_MINUTES:-30}

# The strict site build; it fails when a generated page (configuration reference, HTTP API,
# command samples) no longer matches the code: `make docs-gen` rewrites them (docs/hooks.py).
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

docs-gen: $(STAMP)
	$(VENV)/bin/python docs/hooks.py

# A shell with .venv activated: `callbridge` (and pytest, ruff) on PATH. Leave it with `exit`.
shell: $(STAMP)
	@echo "callbridge is on PATH in this shell (.venv activated); 'exit' leaves it"
	@. $(VENV)/bin/activate && exec $${SHELL:-/bin/sh} -i

# Installs the packages of DEBIAN_PACKAGES that dpkg does not list as installed; needs
# Debian/Ubuntu (apt-get) and root or sudo. APT_GET and SUDO can be overridden.
services:
	@command -v dpkg-query >/dev/null 2>&1 || { \
	    echo "make services: not a Debian/Ubuntu system; install these with your package manager:" \
	         "MariaDB server, Redis server, Chromium ($(DEBIAN_PACKAGES) on Debian)" >&2; exit 1; }
	@missing=""; \
	for package in $(DEBIAN_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' "$$package" 2>/dev/null | grep -q "ok installed" \
	        || missing="$$missing $$package"; \
	done; \
	if [ -z "$$missing" ]; then echo "make services: installed already: $(DEBIAN_PACKAGES)"; exit 0; fi; \
	echo "make services: installing$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	$(SUDO) $(APT_GET) update -qq && \
	$(SUDO) $(APT_GET) install -y -qq --no-install-recommends $$missing

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
