#!/usr/bin/env bash
# Public ports end to end: sbx-router --backend sbx against a real sbx-api (the stand-in
# VMM api/tests/agent_vmm.py runs the real guest agent). A request without a token gets
# 401 while the port is private, 200 once it is made public through the API or the CLI
# (sbx port public), and 401 again once it is private; a port public from the create
# request is served at once, and sbx service-url gives a public port's URL with no token.
. "$(dirname "$(readlink -f "$0")")/lib.sh"

CLI=$BUILD/bin/sbx
[[ -x $CLI ]] || skip "needs $CLI"
start_sbx_api
api() { # METHOD PATH [BODY]: prints the body, then the HTTP status on a line of its own
    curl -sS --max-time 20 -X "$1" -H "Authorization: Bearer $APIKEY" -w '\n%{http_code}' \
        -H "Content-Type: application/json" ${3:+--data "$3"} "$API$2"
}
sbx() { SBX_API_URL=$API SBX_API_KEY=$APIKEY "$CLI" "$@"; }
status_is() { [[ $(json "$(api GET "/v1/sandboxes/$1" | head -n -1)" status) == "$2" ]]; }
code() { c -o /dev/null -w '%{http_code}' "$(url "$1" "$2" /headers)"; } # SANDBOX PORT

start_sbx_service web

say "two sandboxes from sbx-api, one with the port public from the start"
api POST /v1/snapshots "{\"name\":\"base\",\"image_path\":\"$STATE/snapshots/base.img\"}" > /dev/null
api POST /v1/sandboxes '{"name":"web","snapshot":"base"}' > /dev/null
api POST /v1/sandboxes "{\"name\":\"open\",\"snapshot\":\"base\",\"public_ports\":[$HTTP]}" \
    > /dev/null
wait_until 10 status_is web running || { tail "$WORK/api.log"; fail "web did not run"; exit 1; }
wait_until 10 status_is open running || { tail "$WORK/api.log"; fail "open did not run"; exit 1; }
wait_until 10 test -S "$STATE/names/web/vsock.sock"
wait_until 10 test -S "$STATE/names/open/vsock.sock"
start_router --backend sbx --backend-arg "$STATE" --key-file "$STATE/service.key"

say "private, then public, then private again (REST)"
check "private port, no token: 401" 401 "$(code web "$HTTP")"
check "PUT .../public: 204" 204 "$(api PUT "/v1/sandboxes/web/ports/$HTTP/public" | tail -n 1)"
check "public port, no token: 200" 200 "$(code web "$HTTP")"
out=$(c "$(url web "$HTTP" /headers)")
check_has "the service answered" '"service": "web"' "$out"
check "another port stays private" 401 "$(code web 8000)"
check "the sandbox lists it" "[$HTTP]" "$(api GET /v1/sandboxes/web | head -n -1 |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["public_ports"])')"
check "DELETE .../public: 204" 204 "$(api DELETE "/v1/sandboxes/web/ports/$HTTP/public" | tail -n 1)"
check "private again, no token: 401" 401 "$(code web "$HTTP")"

say "public from the create request"
check "created public: 200" 200 "$(code open "$HTTP")"

say "the CLI"
sbx port public web "$HTTP" > "$WORK/cli.out" || fail "sbx port public failed"
check "sbx port public: 200" 200 "$(code web "$HTTP")"
out=$(sbx service-url web --port "$HTTP")
check_has "service-url of a public port: the URL" "web--$HTTP.$DOMAIN" "$out"
check_lacks "and no token" "token" "$out"
out=$(sbx service-url web --port 8000)
check_has "service-url of a private port has a token" '"token"' "$out"
sbx port private web "$HTTP" > /dev/null || fail "sbx port private failed"
check "sbx port private: 401" 401 "$(code web "$HTTP")"

say "kept over a stop and start"
api PUT "/v1/sandboxes/web/ports/$HTTP/public" > /dev/null
api POST /v1/sandboxes/web/stop > /dev/null
wait_until 10 status_is web stopped || fail "web did not stop"
api POST /v1/sandboxes/web/start > /dev/null
wait_until 10 status_is web running || fail "web did not start again"
wait_until 10 test -S "$STATE/names/web/vsock.sock"
wait_until 10 bash -c "[[ \$(curl -sS --max-time 5 --connect-to ::127.0.0.1:$PORT -o /dev/null -w '%{http_code}' '$(url web "$HTTP" /headers)') == 200 ]]"
check "public after a restart of the sandbox: 200" 200 "$(code web "$HTTP")"

finish
