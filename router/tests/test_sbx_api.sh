#!/usr/bin/env bash
# sbx-router --backend sbx against a real sbx-api: the API's stand-in VMM
# (api/tests/agent_vmm.py: the real guest agent behind a vsock-bridge stand-in), a
# sandbox created over REST, a service URL from POST .../service-url, and the router
# reading the same state folder: the names link, vsock.sock and STATE/service.key.
# Checks that what sbx-api hands out works through the router, and what stopping and
# deleting the sandbox do.
. "$(dirname "$(readlink -f "$0")")/lib.sh"

API_BIN=$BUILD/bin/sbx-api
INIT=$BUILD/bin/sbx-init
VMM=$TESTS_DIR/../../api/tests/agent_vmm.py
for f in "$API_BIN" "$INIT" "$VMM"; do [[ -x $f ]] || skip "needs $f"; done
STATE=$WORK/state
APIKEY=router-test-key-0123456789abcdef

mkdir -p "$STATE/snapshots"
echo "not a file system" > "$STATE/snapshots/base.img"
truncate -s 1M "$STATE/snapshots/base.img"
SBX_API_KEY=$APIKEY SBX_TEST_PID=$$ SBX_TEST_INIT=$INIT "$API_BIN" --listen 127.0.0.1:0 \
    --port-file "$WORK/api-port" --state-dir "$STATE" --vmm "$VMM" --service-domain "$DOMAIN" \
    --stop-grace-ms 2000 2> "$WORK/api.log" &
EXTRA_PIDS+=($!)
wait_file "$WORK/api-port" 20 || { cat "$WORK/api.log"; fail "sbx-api did not start"; exit 1; }
API=http://127.0.0.1:$(cat "$WORK/api-port")
api() { # METHOD PATH [BODY]
    curl -sS --max-time 20 -X "$1" -H "Authorization: Bearer $APIKEY" \
        -H "Content-Type: application/json" ${3:+--data "$3"} "$API$2"
}
json() { python3 -c 'import json, sys; print(json.loads(sys.argv[1]).get(sys.argv[2], ""))' "$1" "$2"; }
status_is() { [[ $(json "$(api GET "/v1/sandboxes/$1")" status) == "$2" ]]; } # NAME STATUS
wait_status() { wait_until 10 status_is "$@"; } # NAME STATUS

python3 "$TESTS_DIR/sbx_service.py" "$WORK/ports" web 2> "$WORK/service.log" &
EXTRA_PIDS+=($!)
wait_file "$WORK/ports" 20 || { cat "$WORK/service.log"; fail "service did not start"; exit 1; }
read -r HTTP _ < "$WORK/ports"

say "a sandbox from sbx-api"
api POST /v1/snapshots "{\"name\":\"base\",\"image_path\":\"$STATE/snapshots/base.img\"}" > /dev/null
api POST /v1/sandboxes '{"name":"web","snapshot":"base"}' > /dev/null
wait_status web running || { tail "$WORK/api.log"; fail "sandbox did not run"; exit 1; }
check "names/web is a link" yes "$([[ -L $STATE/names/web ]] && echo yes)"
wait_until 10 test -S "$STATE/names/web/vsock.sock"
check "its VMM socket" yes "$([[ -S $STATE/names/web/vsock.sock ]] && echo yes)"

svc=$(api POST /v1/sandboxes/web/service-url "{\"port\":$HTTP}")
tok=$(json "$svc" token)
burl=$(json "$svc" browser_url)
check_has "service URL names the host" "web--$HTTP.$DOMAIN" "$(json "$svc" url)"
start_router --backend sbx --backend-arg "$STATE" --key-file "$STATE/service.key"

say "through the router with sbx-api's token"
out=$(c -w '\n%{http_code}' -H "X-Sbx-Service-Token: $tok" "$(url web "$HTTP" /headers)")
check_has "200" $'\n200' "$out"
check_has "the service answered" '"service": "web"' "$out"
out=$(c -o /dev/null -w '%{http_code}' "$(url web "$HTTP" /headers)")
check "no token: 401" 401 "$out"
out=$(c -i "$(url web "$HTTP" "/_svc/auth?${burl#*\?}")")
check_has "browser URL sets the cookie" "Set-Cookie: sbx_svc=" "$out"
check_has "and redirects" "HTTP/1.1 302" "$out"
other=$(json "$(api POST /v1/sandboxes/web/service-url '{"port":8000}')" token)
out=$(c -o /dev/null -w '%{http_code}' -H "X-Sbx-Service-Token: $other" "$(url web "$HTTP" /)")
check "a token for another port: 403" 403 "$out"

say "stopped, then deleted"
api POST /v1/sandboxes/web/stop > /dev/null
wait_status web stopped || fail "sandbox did not stop"
out=$(c -i -H "X-Sbx-Service-Token: $tok" "$(url web "$HTTP" /headers)")
check_lacks "stopped sandbox not reached" "HTTP/1.1 200" "$out"
check_has "stopped sandbox: an error of the router" "X-Sbx-Error:" "$out"
api DELETE /v1/sandboxes/web > /dev/null
wait_status web "" || true
wait_until 5 test ! -L "$STATE/names/web"
out=$(c -i -H "X-Sbx-Service-Token: $tok" "$(url web "$HTTP" /headers)")
check_has "deleted sandbox is unknown" "Unknown sandbox" "$out"

finish
