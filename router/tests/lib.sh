# Shared by router/tests/test_*.sh: a scratch folder, a key, the python test service
# (backend.py) on Unix sockets and sbx-router on a free loopback port.
# Tests run from the build tree (build/tests/router/NAME -> router/tests/NAME.sh).
set -uo pipefail
TESTS_DIR=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
BUILD=${SBX_BUILD:-$(cd "$(dirname "$0")/../.." && pwd)}
[[ -x $BUILD/bin/sbx-router ]] || BUILD=$(cd "$TESTS_DIR/../.." && pwd)/build
ROUTER=$BUILD/bin/sbx-router
[[ -x $BUILD/san-bin/sbx-router ]] && ROUTER=$BUILD/san-bin/sbx-router
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}

WORK=$(mktemp -d /tmp/sbx-router-test.XXXXXX)
BOXES=$WORK/boxes
KEY=$WORK/key
FAILS=0
BACKEND_PID= ROUTER_PID= PORT=
EXTRA_PIDS=()   # a test's other background processes (sbx-api, agents...): cleanup ends them
DOMAIN=${DOMAIN:-localhost} SCHEME=${SCHEME:-http}
head -c 32 /dev/urandom > "$KEY"
chmod 600 "$KEY"
mkdir -p "$BOXES"
trap cleanup EXIT
trap 'cleanup; exit 1' TERM INT

say() { echo "-- $*"; }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
skip() { echo "$*"; cleanup; exit 77; }

# check NAME EXPECTED ACTUAL
check() {
    if [[ $2 == "$3" ]]; then echo "ok   $1"; else fail "$1: expected [$2], got [$3]"; fi
}
# check_has NAME NEEDLE HAYSTACK
check_has() {
    if [[ $3 == *"$2"* ]]; then echo "ok   $1"; else fail "$1: [$2] not in [$3]"; fi
}
check_lacks() {
    if [[ $3 != *"$2"* ]]; then echo "ok   $1"; else fail "$1: [$2] unexpectedly in [$3]"; fi
}

wait_until() { # SECONDS COMMAND...: until COMMAND succeeds (0), tried every 50 ms, or 1
    local i
    for ((i = 0; i < $1 * 20; i++)); do
        "${@:2}" && return 0
        sleep 0.05
    done
    return 1
}
wait_file() { wait_until "$2" test -s "$1"; } # FILE SECONDS: until FILE is not empty

start_backend() { # SANDBOX:PORT...
    python3 "$TESTS_DIR/backend.py" "$BOXES" "$@" 2> "$WORK/backend.log" &
    BACKEND_PID=$!
    wait_file "$BOXES/ready" 20 || { cat "$WORK/backend.log"; fail "backend did not start"; exit 1; }
}

start_router() { # extra sbx-router options
    rm -f "$WORK/port"
    "$ROUTER" --listen 127.0.0.1:0 --port-file "$WORK/port" --domain "$DOMAIN" \
        --backend-arg "$BOXES" --key-file "$KEY" "$@" 2>> "$WORK/router.log" &
    ROUTER_PID=$!
    wait_file "$WORK/port" 20 || { cat "$WORK/router.log"; fail "router did not start"; exit 1; }
    PORT=$(cat "$WORK/port")
}

stop_router() {
    [[ -n $ROUTER_PID ]] || return 0
    kill -TERM "$ROUTER_PID" 2>/dev/null
    wait "$ROUTER_PID"
    local rc=$?
    ROUTER_PID=
    [[ $rc -eq 0 ]] || fail "router exited with $rc"
    if grep -q 'Sanitizer' "$WORK/router.log"; then
        fail "sanitizer report in router log"
        grep -A30 'Sanitizer' "$WORK/router.log" | head -60
    fi
}

cleanup() {
    local p
    for p in "${EXTRA_PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    EXTRA_PIDS=()
    stop_router
    [[ -n $BACKEND_PID ]] && kill "$BACKEND_PID" 2>/dev/null && wait "$BACKEND_PID" 2>/dev/null
    BACKEND_PID=
    rm -rf "$WORK"
}

finish() {
    stop_router
    if [[ $FAILS -ne 0 ]]; then
        echo "--- router log"; tail -n 40 "$WORK/router.log"
    fi
    cleanup
    [[ $FAILS -eq 0 ]] && { echo "all passed"; exit 0; }
    echo "$FAILS failed"; exit 1
}

# start_sbx_api: a real sbx-api on $WORK/state with the stand-in VMM (api/tests/
# agent_vmm.py: the real guest agent behind a vsock-bridge stand-in) and a 1 MiB image
# in its snapshot folder; sets STATE, APIKEY and API. Skips (77) without the binaries.
start_sbx_api() {
    local api_bin=$BUILD/bin/sbx-api init=$BUILD/bin/sbx-init
    local vmm=$TESTS_DIR/../../api/tests/agent_vmm.py f
    for f in "$api_bin" "$init" "$vmm"; do [[ -x $f ]] || skip "needs $f"; done
    STATE=$WORK/state
    APIKEY=router-test-key-0123456789abcdef
    mkdir -p "$STATE/snapshots"
    truncate -s 1M "$STATE/snapshots/base.img"
    SBX_API_KEY=$APIKEY SBX_TEST_PID=$$ SBX_TEST_INIT=$init "$api_bin" --listen 127.0.0.1:0 \
        --port-file "$WORK/api-port" --state-dir "$STATE" --vmm "$vmm" --service-domain "$DOMAIN" \
        --stop-grace-ms 2000 2> "$WORK/api.log" &
    EXTRA_PIDS+=($!)
    wait_file "$WORK/api-port" 20 || { cat "$WORK/api.log"; fail "sbx-api did not start"; exit 1; }
    API=http://127.0.0.1:$(cat "$WORK/api-port")
}

# start_sbx_service SANDBOX: the stand-in for a sandbox's own services (sbx_service.py);
# sets HTTP (its web port) and BANNER (its banner port).
start_sbx_service() {
    python3 "$TESTS_DIR/sbx_service.py" "$WORK/ports" "$1" 2> "$WORK/service.log" &
    EXTRA_PIDS+=($!)
    wait_file "$WORK/ports" 20 || { cat "$WORK/service.log"; fail "service did not start"; exit 1; }
    read -r HTTP BANNER < "$WORK/ports"
}

# json TEXT KEY: the value of KEY in the JSON object TEXT ("" if absent).
json() { python3 -c 'import json, sys; print(json.loads(sys.argv[1]).get(sys.argv[2], ""))' "$1" "$2"; }

mint() { # SANDBOX PORT [mint-token options]
    "$BUILD/bin/sbx-router" mint-token --key-file "$KEY" --sandbox "$1" --port "$2" "${@:3}"
}

host() { echo "$1--$2.$DOMAIN"; } # SANDBOX PORT
url() { echo "$SCHEME://$1--$2.$DOMAIN:$PORT$3"; } # SANDBOX PORT PATH

# c ARGS...: curl through the router, whatever host the URL names.
c() { curl -sS --max-time 20 --connect-to "::127.0.0.1:$PORT" "$@"; }

# check_ws_echo HOST HEADER: a WebSocket through the router to the service's /ws echoes
# messages and passes the close on (ws_echo.py; HEADER carries the token).
check_ws_echo() {
    local out
    out=$(timeout 20 python3 "$TESTS_DIR/ws_echo.py" "$PORT" "$1" "$2")
    check "messages echoed, close passed" "echo=True eof=True" "$out"
}
