#!/usr/bin/env bash
# Bad and slow peers: malformed and oversized requests, slow heads, idle keep-alive,
# ambiguous Hosts, random bytes, broken service responses. The router answers
# clearly or closes, and keeps serving.
. "$(dirname "$(readlink -f "$0")")/lib.sh"

start_backend box1:8080
start_router --header-timeout 1 --idle-timeout 2
tok=$(mint box1 8080)

# raw SCRIPT: runs python with `s` connected to the router and helpers.
raw() {
    timeout 20 python3 -c "
import os, socket, sys, time
s = socket.create_connection(('127.0.0.1', $PORT))
s.settimeout(10)
def readall():
    d = b''
    while True:
        try:
            b = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not b: break
        d += b
    return d
tok = '$tok'
$1"
}

# status_line BYTES: the status line the router answers to BYTES (a python expression).
status_line() { raw "s.sendall($1); print(readall().split(b'\r\n')[0].decode())"; }

say "malformed requests"
out=$(status_line "b'BLAH\r\n\r\n'")
check "garbage request line" "HTTP/1.1 400 Bad Request" "$out"
out=$(status_line "b'GET / HTTP/1.1\r\nHost: box1--8080.localhost\r\nX: ' + b'a' * 20000 + b'\r\n\r\n'")
check "head over 16 KiB" "HTTP/1.1 431 Request Header Fields Too Large" "$out"
out=$(status_line "b'GET / HTTP/1.1\r\nHost: box1--8080.localhost\r\nHost: evil--80.localhost\r\n\r\n'")
check "two Host headers" "HTTP/1.1 400 Bad Request" "$out"
out=$(status_line "b'GET http://box1--8080.localhost/ HTTP/1.1\r\nHost: box1--8080.localhost\r\n\r\n'")
check "absolute-form target" "HTTP/1.1 400 Bad Request" "$out"
out=$(status_line "b'CONNECT box1--8080.localhost:443 HTTP/1.1\r\nHost: box1--8080.localhost\r\n\r\n'")
check "CONNECT" "HTTP/1.1 405 Method Not Allowed" "$out"
out=$(raw "s.sendall(b'POST /upload HTTP/1.1\r\nHost: box1--8080.localhost\r\nX-Sbx-Service-Token: ' + tok.encode() + b'\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'); print(len(readall()))")
check "bad chunk framing closes" "0" "$out"

say "slow and idle clients"
out=$(raw "s.sendall(b'GET / HTTP/1.1\r\nHost: box'); t=time.time(); d=readall(); print(d.split(b'\r\n')[0].decode(), 0.9 <= time.time()-t < 5)")
check "slow head answered 408 after --header-timeout" "HTTP/1.1 408 Request Timeout True" "$out"
out=$(raw "t=time.time(); d=readall(); print(len(d), time.time()-t < 5)")
check "silent client closed" "0 True" "$out"
out=$(raw "
s.sendall(b'GET /headers HTTP/1.1\r\nHost: box1--8080.localhost\r\nX-Sbx-Service-Token: ' + tok.encode() + b'\r\n\r\n')
first = s.recv(65536)
while not first.endswith(b'}'):
    first += s.recv(65536)
t = time.time(); d = readall()
print(first.split(b'\r\n')[0].decode(), len(d), 1.5 <= time.time() - t < 6)")
check "idle keep-alive closed after --idle-timeout" "HTTP/1.1 200 OK 0 True" "$out"

say "broken services"
out=$(c -i -H "X-Sbx-Service-Token: $tok" "$(url box1 8080 /garbage)")
check_has "malformed response is 502" "HTTP/1.1 502" "$out"
check_has "and says so" "Bad response from service" "$out"
c -H "X-Sbx-Service-Token: $tok" "$(url box1 8080 /truncated)" > /dev/null 2>&1
check "cut body is cut for the client too (curl 18)" 18 "$?"

say "random bytes"
raw "
import random
random.seed(7)
for i in range(300):
    t = socket.create_connection(('127.0.0.1', $PORT))
    n = random.randrange(1, 3000)
    b = bytes(random.randrange(256) for _ in range(n))
    if i % 3 == 0:
        b = b'GET /' + b + b'\r\n\r\n'
    elif i % 3 == 1:
        b = b'GET / HTTP/1.1\r\nHost: box1--8080.localhost\r\n' + b + b'\r\n\r\n'
    try:
        t.sendall(b)
        t.shutdown(socket.SHUT_WR)
        t.settimeout(5)
        while t.recv(65536): pass
    except OSError:
        pass
    t.close()
print('done')" > /dev/null
out=$(c -H "X-Sbx-Service-Token: $tok" "$(url box1 8080 /headers)")
check_has "still serving after random bytes" '"service": "box1:8080"' "$out"
kill -0 "$ROUTER_PID" && echo "ok   router alive" || fail "router died"

say "connection limit"
stop_router
start_router --max-conns 2
out=$(raw "
a = socket.create_connection(('127.0.0.1', $PORT))  # s is the first
b = socket.create_connection(('127.0.0.1', $PORT))
b.settimeout(5)
third = b.recv(10)  # over the limit: closed at once
a.close(); b.close(); time.sleep(0.3)
t = socket.create_connection(('127.0.0.1', $PORT))
t.sendall(b'GET /headers HTTP/1.1\r\nHost: box1--8080.localhost\r\nX-Sbx-Service-Token: ' + tok.encode() + b'\r\nConnection: close\r\n\r\n')
t.settimeout(10)
print(third == b'', t.recv(100).split(b'\r\n')[0].decode())")
check "third connection refused, served again once below the limit" "True HTTP/1.1 200 OK" "$out"

finish
