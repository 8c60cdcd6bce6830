#!/usr/bin/env bash
# Streams through the router: server-sent events arrive as sent, a WebSocket echoes,
# large uploads (sized and chunked) and downloads pass in bounded router memory.
. "$(dirname "$(readlink -f "$0")")/lib.sh"

start_backend box1:8080
start_router
tok=$(mint box1 8080)
hdr="X-Sbx-Service-Token: $tok"
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$ROUTER_PID/status"; } # KiB

say "server-sent events are not buffered"
out=$(timeout 20 python3 - "$PORT" "$tok" <<'PY'
import socket, sys, time
port, tok = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
s.sendall(("GET /sse HTTP/1.1\r\nHost: box1--8080.localhost\r\nAccept: text/event-stream\r\n"
           "X-Sbx-Service-Token: %s\r\n\r\n" % tok).encode())
t0, data, first = time.time(), b"", None
while b"0\r\n\r\n" not in data:
    b = s.recv(65536)
    if not b:
        break
    data += b
    if first is None and b"data: one" in data:
        first = time.time() - t0
total = time.time() - t0
print("first=%s total_ok=%s three=%s" % (first is not None and first < 2.5, total >= 2.9,
                                         b"data: three" in data))
PY
)
check "first event before the pause, all after it" "first=True total_ok=True three=True" "$out"

say "WebSocket echo"
check_ws_echo "$(host box1 8080)" "Cookie: sbx_svc=$tok"

say "large download in bounded memory"
before=$(hwm)
out=$(c -H "$hdr" "$(url box1 8080 /download?size=104857600)" | sha256sum | cut -d' ' -f1)
want=$(python3 -c "
import hashlib
p = bytes(range(256)) * 256
h = hashlib.sha256()
for _ in range(104857600 // len(p)): h.update(p)
print(h.hexdigest())")
check "100 MiB download intact" "$want" "$out"

say "large uploads in bounded memory"
head -c 67108864 /dev/urandom > "$WORK/up"
want=$(sha256sum < "$WORK/up" | cut -d' ' -f1)
out=$(c -H "$hdr" --data-binary @"$WORK/up" "$(url box1 8080 /upload)")
check_has "64 MiB upload (Content-Length, Expect: 100-continue) intact" "\"sha256\": \"$want\"" "$out"
out=$(c -H "$hdr" -H "Transfer-Encoding: chunked" -H "Expect:" --data-binary @"$WORK/up" "$(url box1 8080 /upload)")
check_has "64 MiB chunked upload intact" "\"sha256\": \"$want\"" "$out"
out=$(timeout 40 python3 - "$PORT" "$tok" "$ROUTER_PID" <<'PY'
import socket, sys, time
port, tok, pid = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.sendall(("GET /download?size=104857600 HTTP/1.1\r\nHost: box1--8080.localhost\r\n"
           "X-Sbx-Service-Token: %s\r\nConnection: close\r\n\r\n" % tok).encode())
time.sleep(2)  # a client that does not read: the router must hold back, not buffer
got = 0
while True:
    b = s.recv(1 << 20)
    if not b:
        break
    got += len(b)
print(got > 104857600)
PY
)
check "stalled reader gets everything afterwards" "True" "$out"
after=$(hwm)
echo "router peak RSS: before ${before} KiB, after ${after} KiB"
if (( after - before > 32768 )); then fail "router memory grew by $((after - before)) KiB"; else echo "ok   memory bounded"; fi

finish
