#!/usr/bin/env bash
# Routing by Host, the clear answers (unknown sandbox, nothing listening, not a service
# host), forwarded headers, public ports and keep-alive to clients.
. "$(dirname "$(readlink -f "$0")")/lib.sh"

start_backend box1:8080 box1:9000 box2:8080 box1:7070
start_router
t11=$(mint box1 8080) t19=$(mint box1 9000) t21=$(mint box2 8080)

say "routing"
out=$(c -H "X-Sbx-Service-Token: $t11" "$(url box1 8080 /headers)")
check_has "box1:8080 reached" '"service": "box1:8080"' "$out"
out=$(c -H "X-Sbx-Service-Token: $t19" "$(url box1 9000 /headers)")
check_has "box1:9000 reached" '"service": "box1:9000"' "$out"
out=$(c -H "Authorization: Bearer $t21" "$(url box2 8080 /headers)")
check_has "box2:8080 reached" '"service": "box2:8080"' "$out"
out=$(c -H "X-Sbx-Service-Token: $t11" "http://BOX1--8080.LocalHost:$PORT/headers")
check_has "host is case-insensitive" '"service": "box1:8080"' "$out"

say "forwarded headers"
out=$(c -H "X-Sbx-Service-Token: $t11" -H "X-Forwarded-For: 6.6.6.6" -H "Cookie: a=1; sbx_svc=$t11; b=2" \
    "$(url box1 8080 '/headers?x=1')")
check_has "Host kept" "[\"Host\", \"box1--8080.localhost:$PORT\"]" "$out"
check_has "X-Forwarded-For is the client" '["X-Forwarded-For", "127.0.0.1"]' "$out"
check_lacks "client X-Forwarded-For dropped" '6.6.6.6' "$out"
check_has "X-Forwarded-Proto" '["X-Forwarded-Proto", "http"]' "$out"
check_has "X-Forwarded-Host" "[\"X-Forwarded-Host\", \"box1--8080.localhost:$PORT\"]" "$out"
check_lacks "token header not forwarded" "$t11" "$out"
check_has "other cookies forwarded" '["Cookie", "a=1; b=2"]' "$out"
check_has "path and query kept" '"path": "/headers?x=1"' "$out"
out=$(c -H "X-Sbx-Service-Token: $t11" -H "Authorization: Bearer someone-elses" "$(url box1 8080 /headers)")
check_has "foreign bearer forwarded" '["Authorization", "Bearer someone-elses"]' "$out"

say "clear answers"
out=$(c -i -H "X-Sbx-Service-Token: $t11" "$(url nobox 8080 /)")
check_has "unknown sandbox is 404" "HTTP/1.1 404" "$out"
check_has "unknown sandbox says so" "Unknown sandbox" "$out"
tn=$(mint box1 7777)
out=$(c -i -H "X-Sbx-Service-Token: $tn" "$(url box1 7777 /)")
check_has "nothing listening is 502" "HTTP/1.1 502" "$out"
check_has "nothing listening says so" "Service is not reachable" "$out"
check_has "machine-readable code" "X-Sbx-Error: unreachable" "$out"
out=$(c -i "http://example.com:$PORT/")
check_has "foreign host is 404" "Unknown service host" "$out"
out=$(c -i "http://box1-8080.localhost:$PORT/")
check_has "host without -- is 404" "Unknown service host" "$out"
out=$(c -i "http://box1--99999.localhost:$PORT/")
check_has "bad port is 404" "Unknown service host" "$out"
out=$(c -I -H "X-Sbx-Service-Token: $t11" "$(url box1 8080 /headers)")
check_has "HEAD answered" "HTTP/1.1 200" "$out"

say "public port"
out=$(c -o /dev/null -w '%{http_code}' "$(url box2 8080 /headers)")
check "private port needs a token" 401 "$out"
touch "$BOXES/box2/8080.public"
out=$(c "$(url box2 8080 /headers)")
check_has "public port open without token" '"service": "box2:8080"' "$out"
rm "$BOXES/box2/8080.public"

say "keep-alive"
out=$(c -v -H "X-Sbx-Service-Token: $t11" "$(url box1 8080 /headers)" "$(url box1 8080 /style.css)" 2>&1)
check_has "second request reuses the connection" "Re-using existing connection" "$out"
check_lacks "no close" "Connection: close" "$out"
out=$(c -v -H "X-Sbx-Service-Token: $t11" "$(url box1 8080 /nope)" "$(url box1 8080 /headers)" 2>&1)
check_has "404 from the service passed through" "HTTP/1.1 404 Not Found" "$out"
check_has "connection kept after a 404" "Re-using existing connection" "$out"
out=$(c -v "$(url box1 8080 /a)" "$(url box1 8080 /b)" 2>&1)
check_has "answers of the router keep the connection" "Re-using existing connection" "$out"

out=$(c --http1.0 -v -H "X-Sbx-Service-Token: $t11" "$(url box1 8080 /style.css)" 2>&1)
check_has "HTTP/1.0 client told the connection closes" "< Connection: close" "$out"
out=$(c --http1.0 -v -H "Connection: keep-alive" -H "X-Sbx-Service-Token: $t11" \
    "$(url box1 8080 /style.css)" "$(url box1 8080 /headers)" 2>&1)
check_has "HTTP/1.0 keep-alive client kept" "Re-using existing connection" "$out"
check_has "and told so" "< Connection: keep-alive" "$out"
check_has "second HTTP/1.0 request served" '"service": "box1:8080"' "$out"

say "service closing its side"
t17=$(mint box1 7070)
out=$(c -v -H "X-Sbx-Service-Token: $t11" "$(url box1 8080 /bye)" "$(url box1 8080 /headers)" 2>&1)
check_has "service's Connection: close does not close the client" "Re-using existing connection" "$out"
check_has "next request served on a new service connection" '"service": "box1:8080"' "$out"
out=$(timeout 20 python3 -c "
import socket, time
s = socket.create_connection(('127.0.0.1', $PORT))
req = b'GET /headers HTTP/1.1\r\nHost: box1--7070.localhost\r\nX-Sbx-Service-Token: $t17\r\n\r\n'
def get():
    s.sendall(req)
    d = b''
    while not d.endswith(b'}'):
        b = s.recv(65536)
        if not b: break
        d += b
    return d.split(b'\r\n')[0].decode()
first = get()
time.sleep(1)  # the service drops its idle connection meanwhile
print(first, get())")
check "request after the service dropped an idle connection" "HTTP/1.1 200 OK HTTP/1.1 200 OK" "$out"

say "pipelining, and several services on one client connection"
req="GET /headers HTTP/1.1\r\nHost: box1--8080.localhost\r\nX-Sbx-Service-Token: $t11\r\n\r\n"
req9="GET /headers HTTP/1.1\r\nHost: box1--9000.localhost\r\nX-Sbx-Service-Token: $t19\r\n\r\n"
out=$(printf "$req$req9${req/GET/HEAD}GET /x HTTP/1.1\r\nHost: box1--8080.localhost\r\nConnection: close\r\n\r\n" |
    timeout 10 python3 -c "
import socket,sys
s=socket.create_connection(('127.0.0.1',$PORT)); s.sendall(sys.stdin.buffer.read())
d=b''
while True:
    b=s.recv(65536)
    if not b: break
    d+=b
print(d.count(b'HTTP/1.1 200'), d.count(b'HTTP/1.1 401'), d.count(b'box1:9000'))")
check "three pipelined answers (one from port 9000) then the last" "3 1 1" "$out"

finish
