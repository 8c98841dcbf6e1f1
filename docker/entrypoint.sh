#!/bin/sh
# The callbridge image's entrypoint (tests/dist/test_entrypoint.py runs it directly).
#
#   (no arguments) | serve ...   callbridge serve ...
#   healthcheck                  exit 0 when /healthz answers 200 (the image's HEALTHCHECK)
#   sh|bash|python|python3|/path ... that program, for debugging
#   anything else ...            callbridge <arguments>, e.g. plugins, config, --version
#
# Environment: every CALLBRIDGE_<NAME>_FROM_FILE=/path sets CALLBRIDGE_<NAME> to the file's
# content (Docker/compose secrets), so a token need not sit in the environment of the
# container's definition. Setting both is refused, and so is an unreadable file; values are
# never printed. The data directory (CALLBRIDGE_DATA_DIR, a volume) must be writable by this
# user: a volume created by root is named in the error, with the fix.
#
# The last step is exec: callbridge becomes the process the container's stop signal
# (SIGTERM) reaches, and serve stops cleanly on it.
set -eu

fail() {
    echo "callbridge-entrypoint: $*" >&2
    exit 2
}

load_secret_files() {
    # Only the names of exported variables go through this loop, never their values.
    for name in $(export -p | sed -n 's/^export \(CALLBRIDGE_[A-Za-z0-9_]*_FROM_FILE\)=.*/\1/p'); do
        target=${name%_FROM_FILE}
        path=
        already=
        eval "path=\${$name}"
        eval "already=\${$target+set}"
        if [ "${already:-}" = set ]; then
            fail "both $target and $name are set; keep one"
        fi
        if [ ! -r "$path" ] || [ -d "$path" ]; then
            fail "$name: $path is not a readable file"
        fi
        # $(...) drops trailing newlines, as a secret file usually ends with one.
        value=$(cat "$path")
        export "$target=$value"
        unset "$name"
    done
}

check_data_dir() {
    dir=${CALLBRIDGE_DATA_DIR:-}
    [ -n "$dir" ] || return 0
    case $dir in
        redis://* | sqlite://*) return 0 ;;
    esac
    if [ ! -d "$dir" ]; then
        mkdir -p "$dir" 2>/dev/null || fail "CALLBRIDGE_DATA_DIR=$dir does not exist and cannot be made by uid $(id -u)"
    fi
    if [ ! -w "$dir" ]; then
        fail "CALLBRIDGE_DATA_DIR=$dir is not writable by uid $(id -u); give the volume to it: chown -R $(id -u):$(id -g) on the host's copy, or start with a fresh named volume"
    fi
}

healthcheck() {
    port=${CALLBRIDGE_SERVER__PORT:-8765}
    exec python -c 'import sys, urllib.request
try:
    ok = urllib.request.urlopen(sys.argv[1], timeout=4).status == 200
except Exception as exc:
    print(f"healthcheck: {exc}", file=sys.stderr)
    ok = False
sys.exit(0 if ok else 1)' "http://127.0.0.1:$port/healthz"
}

load_secret_files

if [ $# -eq 0 ]; then
    set -- serve
fi

case $1 in
    healthcheck) healthcheck ;;
    sh | bash | python | python3 | */*) exec "$@" ;;
    callbridge) shift ;;
esac

if [ "${1:-serve}" = serve ]; then
    check_data_dir
fi
exec callbridge "$@"
