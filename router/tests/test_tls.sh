#!/usr/bin/env bash
# HTTPS with a wildcard certificate: requests, keep-alive, the Secure bootstrap
# cookie, X-Forwarded-Proto, a WebSocket and a large download over TLS.
DOMAIN=sbx.test SCHEME=https
. "$(dirname "$(readlink -f "$0")")/lib.sh"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -keyout "$WORK/tls.key" -out "$WORK/tls.crt" -subj "/CN=*.sbx.test" \
    -addext "subjectAltName=DNS:*.sbx.test" 2> "$WORK/openssl.log" || { cat "$WORK/openssl.log"; fail "openssl"; finish; }
start_backend box1:8080
start_router --tls-cert "$WORK/tls.crt" --tls-key "$WORK/tls.key"
tok=$(mint box1 8080)
ct() { c --cacert "$WORK/tls.crt" "$@"; }

say "https"
out=$(ct -H "X-Sbx-Service-Token: $tok" "$(url box1 8080 /headers)")
check_has "request over TLS" '"service": "box1:8080"' "$out"
check_has "X-Forwarded-Proto https" '["X-Forwarded-Proto", "https"]' "$out"
out=$(ct -v -H "X-Sbx-Service-Token: $tok" "$(url box1 8080 /headers)" "$(url box1 8080 /style.css)" 2>&1)
check_has "keep-alive over TLS" "Re-using existing connection" "$out"
check_has "certificate verified" "SSL certificate verify ok" "$out"
out=$(ct -i "$(url box1 8080 "/_svc/auth?token=$tok&next=/x")")
check_has "bootstrap cookie is Secure under TLS" "HttpOnly; SameSite=Lax; Secure" "$out"
out=$(ct -i "$(url box1 8080 /headers)")
check_has "no token over TLS" "Authentication required" "$out"
check "plain HTTP to the TLS port fails" "fail" "$(curl -s --max-time 5 --connect-to "::127.0.0.1:$PORT" \
    "http://box1--8080.sbx.test:$PORT/" > /dev/null && echo ok || echo fail)"

say "large download over TLS"
out=$(ct -H "X-Sbx-Service-Token: $tok" "$(url box1 8080 /download?size=52428800)" | wc -c)
check "50 MiB over TLS" 52428800 "$out"

say "WebSocket over TLS"
out=$(timeout 20 python3 - "$PORT" "$tok" "$WORK/tls.crt" <<'PY'
import os, socket, ssl, sys
port, tok, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="box1--8080.sbx.test")
s.sendall(("GET /ws HTTP/1.1\r\nHost: box1--8080.sbx.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
           "X-Sbx-Service-Token: %s\r\n\r\n" % tok).encode())
f = s.makefile("rb")
ok = f.readline().startswith(b"HTTP/1.1 101")
while f.readline() not in (b"\r\n", b""):
    pass
mask = os.urandom(4)
s.sendall(bytes([0x81, 0x85]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(b"hello")))
print(ok and f.read(7) == b"\x81\x05hello")
PY
)
check "echo over TLS" "True" "$out"

finish
