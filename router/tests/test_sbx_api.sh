#!/usr/bin/env bash
# sbx-router --backend sbx against a real sbx-api: the API's stand-in VMM
# (api/tests/agent_vmm.py: the real guest agent behind a vsock-bridge stand-in), a
# sandbox created over REST, a service URL from POST .../service-url, and the router
# reading the same state folder: the names link, vsock.sock and STATE/service.key.
# Checks that what sbx-api hands out works through the router, and what stopping and
# deleting the sandbox do.
. "$(dirname "$(readlink -f "$0")")/lib.sh"

start_sbx_api
printf 'not a file system\n' | dd of="$STATE/snapshots/base.img" conv=notrunc status=none
api() { # METHOD PATH [BODY]
    curl -sS --max-time 20 -X "$1" -H "Authorization: Bearer $APIKEY" \
        -H "Content-Type: application/json" ${3:+--data "$3"} "$API$2"
}
status_is() { [[ $(json "$(api GET "/v1/sandboxes/$1")" status) == "$2" ]]; } # NAME STATUS
wait_status() { wait_until 10 status_is "$@"; } # NAME STATUS

start_sbx_service web

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
