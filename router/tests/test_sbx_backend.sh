#!/usr/bin/env bash
# The "sbx" backend end to end without a VM: a fake sbx-api state folder
# (names/box1 -> ../sandboxes/ID), the real guest agent (sbx-init --agent-unix) behind a
# python stand-in for the VMM's vsock bridge at ID/vsock.sock, and the test service on
# loopback TCP, reached by the agent's TUNNEL. Then curl and python clients through
# sbx-router --backend sbx.
. "$(dirname "$(readlink -f "$0")")/lib.sh"

AGENT=$BUILD/bin/sbx-init
[[ -x $AGENT ]] || skip "no $AGENT (make build/bin/sbx-init)"
STATE=$WORK/state

wait_sock() { # PATH SECONDS
    wait_until "$2" test -S "$1" && return 0
    fail "no socket $1"
    exit 1
}

# sandbox NAME ID [AGENT_SOCKET [BRIDGE_OPTION]]: names/NAME -> ../sandboxes/ID with a
# bridge in it.
sandbox() {
    mkdir -p "$STATE/sandboxes/$2/public" "$STATE/names"
    ln -sfn "../sandboxes/$2" "$STATE/names/$1"
    python3 "$TESTS_DIR/sbx_bridge.py" ${4:-} "$STATE/sandboxes/$2/vsock.sock" \
        "${3:-$WORK/agent.sock}" 2>> "$WORK/bridge.log" &
    EXTRA_PIDS+=($!)
    wait_sock "$STATE/sandboxes/$2/vsock.sock" 10
}

"$AGENT" --agent-unix "$WORK/agent.sock" 2> "$WORK/agent.log" &
EXTRA_PIDS+=($!)
wait_sock "$WORK/agent.sock" 10
start_sbx_service box1
DEAD=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

sandbox box1 0001
sandbox box3 0003 "$WORK/no-agent.sock"         # the VMM runs, the agent does not answer
sandbox box4 0005 "$WORK/agent.sock" --coalesce  # tunnel OK and service bytes in one piece
sandbox box5 0006 "$WORK/agent.sock" --hang      # the bridge never answers CONNECT
mkdir -p "$STATE/sandboxes/0002"                 # box2: named, but no VMM socket (stopped)
ln -sfn ../sandboxes/0002 "$STATE/names/box2"
mkdir -p "$STATE/sandboxes/0004"                 # a folder that is not a name link
start_router --backend sbx --backend-arg "$STATE" --idle-timeout 3 --header-timeout 2 -v
tok=$(mint box1 "$HTTP")

say "through the agent's tunnel"
out=$(c -w '\n%{http_code}' -H "X-Sbx-Service-Token: $tok" "$(url box1 "$HTTP" /headers)")
check_has "200" $'\n200' "$out"
check_has "service's body" '"service": "box1"' "$out"
check_has "Host kept" "[\"Host\", \"box1--$HTTP.localhost:$PORT\"]" "$out"
out=$(c -v -H "X-Sbx-Service-Token: $tok" "$(url box1 "$HTTP" /style.css)" "$(url box1 "$HTTP" /headers)" 2>&1)
check_has "keep-alive over one tunnel" "Re-using existing connection" "$out"
check_has "second answer" '"service": "box1"' "$out"

want=$(python3 -c "
import hashlib
p = bytes(range(256)) * 256
print(hashlib.sha256(p * 160).hexdigest())")
out=$(c -H "X-Sbx-Service-Token: $tok" "$(url box1 "$HTTP" '/download?size=10485760')" | sha256sum | cut -d' ' -f1)
check "10 MiB download intact" "$want" "$out"
head -c 3000000 /dev/urandom > "$WORK/up"
want=$(sha256sum < "$WORK/up" | cut -d' ' -f1)
out=$(c -H "X-Sbx-Service-Token: $tok" --data-binary @"$WORK/up" "$(url box1 "$HTTP" /upload)")
check_has "3 MB upload intact" "\"sha256\": \"$want\"" "$out"

tb=$(mint box4 "$BANNER")
out=$(c -H "X-Sbx-Service-Token: $tb" "$(url box4 "$BANNER" /)")
check "bytes right after the tunnel's OK kept" "spoken first" "$out"

pids=()
for i in $(seq 1 16); do
    c -o /dev/null -w '%{http_code}\n' -H "X-Sbx-Service-Token: $tok" \
        "$(url box1 "$HTTP" /headers)" > "$WORK/par.$i" &
    pids+=($!)
done
wait "${pids[@]}"
check "16 tunnels at once" 16 "$(cat "$WORK"/par.* | grep -c '^200$')"

say "WebSocket echo"
check_ws_echo "$(host box1 "$HTTP")" "X-Sbx-Service-Token: $tok"

say "clear answers"
out=$(c -i -H "X-Sbx-Service-Token: $tok" "$(url nobox "$HTTP" /)")
check_has "unknown sandbox is 404" "HTTP/1.1 404" "$out"
check_has "unknown sandbox says so" "Unknown sandbox" "$out"
out=$(c -i -H "X-Sbx-Service-Token: $(mint box2 "$HTTP")" "$(url box2 "$HTTP" /)")
check_has "named sandbox without VMM socket is unknown" "Unknown sandbox" "$out"
out=$(c -i -H "X-Sbx-Service-Token: $(mint 0004 "$HTTP")" "$(url 0004 "$HTTP" /)")
check_has "a sandbox id is no name" "Unknown sandbox" "$out"
td=$(mint box1 "$DEAD")
out=$(c -i -H "X-Sbx-Service-Token: $td" "$(url box1 "$DEAD" /)")
check_has "nothing listening is 502" "HTTP/1.1 502" "$out"
check_has "nothing listening says so" "Service is not reachable" "$out"
check_has "machine-readable code" "X-Sbx-Error: unreachable" "$out"
out=$(c -H "X-Sbx-Service-Token: $tok" "$(url box1 "$HTTP" /headers)")
check_has "agent still serves after a refusal" '"service": "box1"' "$out"
out=$(c -i -H "X-Sbx-Service-Token: $(mint box3 "$HTTP")" "$(url box3 "$HTTP" /)")
check_has "no agent behind the VMM is 502" "Service is not reachable" "$out"

# A VMM that never answers: given up at the head timeout (2 s here) with a 502, by
# conn.c's sweep, rather than held until the idle timeout.
t0=$(date +%s)
out=$(c -i -H "X-Sbx-Service-Token: $(mint box5 "$HTTP")" "$(url box5 "$HTTP" /)" 2>&1)
took=$(($(date +%s) - t0))
check "silent VMM given up at the head timeout" yes "$([[ $took -ge 1 && $took -le 8 ]] && echo yes || echo "no ($took s)")"
check_has "and answered as unreachable" "HTTP/1.1 502" "$out"

say "public port"
out=$(c -o /dev/null -w '%{http_code}' "$(url box1 "$HTTP" /headers)")
check "private port needs a token" 401 "$out"
touch "$STATE/names/box1/public/$HTTP"
out=$(c -w '\n%{http_code}' "$(url box1 "$HTTP" /headers)")
check_has "public port open without token" $'\n200' "$out"
check_has "public port's body" '"service": "box1"' "$out"
out=$(c -o /dev/null -w '%{http_code}' "$(url box1 "$BANNER" /)")
check "another port stays private" 401 "$out"
rm "$STATE/names/box1/public/$HTTP"
out=$(c -o /dev/null -w '%{http_code}' "$(url box1 "$HTTP" /headers)")
check "private again" 401 "$out"

finish
