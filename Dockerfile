# syntax=docker/dockerfile:1
# The callbridge image, built from the wheels of `make dist` (never from the source tree):
#
#   make dist
#   docker build --build-arg CONNECTORS="salesforce" -t callbridge:$(cat VERSION) .
#
# CONNECTORS names the connectors/plugins to install, separated by spaces (salesforce,
# hubspot, pipedrive, zoho, example-missed-calls); empty installs the core alone. docs/install.md
# says what of this file is tested (linted by hadolint in `make lint`; the entrypoint script
# run by tests/dist/test_entrypoint.py) and what is not (no image is built in CI: no Docker
# engine).

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG CONNECTORS="salesforce"
SHELL ["/bin/bash", "-euo", "pipefail", "-c"]
COPY dist/*.whl /wheels/
# The core and each chosen connector from its wheel file (a path, so no package index can
# substitute another "callbridge"); their third-party dependencies from the index.
RUN python -m venv /opt/callbridge \
    && set -- /wheels/callbridge-[0-9]*.whl \
    && for name in ${CONNECTORS}; do \
         set -- "$@" /wheels/callbridge_"$(echo "${name}" | tr - _)"-[0-9]*.whl; \
       done \
    && for wheel in "$@"; do \
         [ -f "${wheel}" ] || { echo "no wheel ${wheel}: run make dist, check CONNECTORS" >&2; exit 1; }; \
       done \
    && /opt/callbridge/bin/pip install --no-cache-dir --disable-pip-version-check "$@" \
    && /opt/callbridge/bin/callbridge --version

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 callbridge \
    && useradd --system --no-log-init --uid 10001 --gid callbridge \
         --home-dir /srv/callbridge --create-home callbridge \
    && install -d -o callbridge -g callbridge -m 0700 /data
COPY --from=build /opt/callbridge /opt/callbridge
COPY docker/entrypoint.sh /usr/local/bin/callbridge-entrypoint

# Inside a container the service listens on every address of the container; the compose
# file's proxy shares the container's network and may keep it on 127.0.0.1.
ENV PATH=/opt/callbridge/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    CALLBRIDGE_DATA_DIR=/data \
    CALLBRIDGE_SERVER__HOST=0.0.0.0 \
    CALLBRIDGE_SERVER__PORT=8765

# The journal (journal.sqlite3, journal-state.sqlite3): keep it on a volume, back it up.
VOLUME ["/data"]
USER 10001:10001
WORKDIR /srv/callbridge
EXPOSE 8765
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["callbridge-entrypoint", "healthcheck"]
# uvicorn drains requests on SIGTERM and `serve` then stops the engine and closes the journal
# (tests/dist/test_wheels.py checks the clean exit). Allow it time: docker stop -t 30.
STOPSIGNAL SIGTERM
ENTRYPOINT ["callbridge-entrypoint"]
CMD ["serve"]
