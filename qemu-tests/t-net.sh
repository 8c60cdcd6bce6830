# User-mode networking (sbx-vmm --net user, libslirp) with sbx-init's
# sbx.net= set-up, under the default seccomp filter. L1 has no network card, so
# the "outside" is L1 itself: an HTTP server and a DNS server on its loopback
# (/etc/resolv.conf bind-mounted to name the latter). Guest 1 (--net user):
# eth0 has 10.0.2.15/24 and a default route, resolv.conf names 10.0.2.3, the
# gateway answers ping, DNS through 10.0.2.3 resolves (forwarded to L1's
# resolver), and the host's loopback (10.0.2.2) is refused at once, the server
# seeing no request. Guest 2 (--net user,host-loopback=on): busybox wget gets
# the page from 10.0.2.2. Guest 3: the Debian root filesystem from a snapfs disk,
# where curl, getent and python3 use the resolv.conf sbx-init wrote there, and
# 8 MiB go each way intact.
# timeout: 720
set -eu
source qemu-tests/lib/guest.sh
INITRD=$SBX_BUILD/images/initrd-busybox.cpio.gz
CTL=$SBX_BUILD/bin/sbx-agentctl
NET="sbx.net=10.0.2.15/24,10.0.2.2,10.0.2.3"
work=/run/sbx-tests/net
rm -rf "$work"
mkdir -p "$work/www"
echo "hello over slirp" > "$work/www/index.html"
head -c 8M /dev/urandom > "$work/www/blob"
blob_sum=$(sha256sum < "$work/www/blob" | cut -d' ' -f1)
ctl() { timeout 120 "$CTL" --vsock-uds "$VSOCK" "$@"; }
gexec() { ctl exec --no-stdin -- "$@"; }
check() { # WHAT EXPECTED ACTUAL
    if [[ "$3" != "$2" ]]; then echo "FAIL: $1: expected '$2', got '$3'"; exit 1; fi
    echo "ok: $1"
}
pids=()
cleanup() {
    for p in "${pids[@]}" ${guest_pid:-}; do kill "$p" 2>/dev/null || true; done
    umount /etc/resolv.conf 2>/dev/null || true
}
trap cleanup EXIT

# L1's services, loopback only. (busybox 1.35's wget crashes with -T: timeout instead.)
python3 -m http.server 8080 --bind 127.0.0.1 --directory "$work/www" >> "$work/http.log" 2>&1 &
pids+=($!)
cat > "$work/dns.py" <<'PY'
# Answers every A query with 192.0.2.7 (other types: no answer).
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
while True:
    q, peer = s.recvfrom(512)
    if len(q) < 17:
        continue
    i = 12
    while i < len(q) and q[i] != 0:
        i += q[i] + 1
    qend = i + 5
    qtype = q[i + 1:i + 3]
    answer = b""
    if qtype == b"\x00\x01":
        answer = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes([192, 0, 2, 7])
    head = q[:2] + b"\x81\x80" + q[4:6] + (b"\x00\x01" if answer else b"\x00\x00") + b"\x00\x00\x00\x00"
    s.sendto(head + q[12:qend] + answer, peer)
PY
python3 "$work/dns.py" > "$work/dns.log" 2>&1 &
pids+=($!)
cat > "$work/sink.py" <<'PY'
# Reads one connection to its end, answers with the bytes' sha256.
import hashlib, socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8081))
s.listen(1)
while True:
    c, _ = s.accept()
    h = hashlib.sha256()
    while True:
        b = c.recv(65536)
        if not b:
            break
        h.update(b)
    c.sendall(h.hexdigest().encode())
    c.close()
PY
python3 "$work/sink.py" > "$work/sink.log" 2>&1 &
pids+=($!)
echo "nameserver 127.0.0.1" > "$work/resolv.conf"
mount --bind "$work/resolv.conf" /etc/resolv.conf
page=""
for _ in $(seq 1 60); do  # python starts slowly under TCG
    page=$(wget -q -T 5 -O - http://127.0.0.1:8080/index.html 2>/dev/null) && break
    sleep 1
done
check "L1's HTTP server" "hello over slirp" "$page"
: > "$work/http.log"

# Guest 1: the default (host loopback refused).
start_guest 1 "$NET" --net user
check "eth0 address" "10.0.2.15/24" \
    "$(gexec sh -c "ip -4 addr show eth0 | awk '/inet /{print \$2}'")"
check "default route" "default via 10.0.2.2 dev eth0" \
    "$(gexec sh -c "ip route | grep ^default | cut -d' ' -f1-5")"
check "resolv.conf" "nameserver 10.0.2.3" "$(gexec cat /etc/resolv.conf)"
gexec ping -c 1 -W 10 10.0.2.2 > "$SBX_OUT/ping.log" 2>&1 || { cat "$SBX_OUT/ping.log"; echo "FAIL: ping 10.0.2.2"; exit 1; }
echo "ok: the gateway answers ping"
dns=$(gexec nslookup sbx-test.example 10.0.2.3 2>&1 || true)
echo "$dns"
grep -q "192.0.2.7" <<< "$dns" || { echo "FAIL: DNS through 10.0.2.3"; exit 1; }
echo "ok: DNS through 10.0.2.3"
start=$(date +%s)
set +e
out=$(gexec timeout 30 wget -q -O - http://10.0.2.2:8080/index.html 2>&1)
rc=$?
set -e
took=$(( $(date +%s) - start ))
echo "wget to the host's loopback: exit $rc after ${took}s: $out"
[[ $rc -ne 0 ]] || { echo "FAIL: the host's loopback was reachable by default"; exit 1; }
[[ $rc -ne 139 && $rc -ne 143 && $took -lt 20 ]] || { echo "FAIL: not refused (a crash or a timeout)"; exit 1; }
grep -q "GET /index.html" "$work/http.log" && { echo "FAIL: the server saw a request"; exit 1; }
echo "ok: the host's loopback is refused by default"
ctl shutdown
wait_guest_exit
check "sbx-vmm exit after shutdown" 0 "$guest_rc"

# Guest 2: host-loopback=on.
start_guest 1 "$NET" --net user,host-loopback=on
check "wget from the host's loopback" "hello over slirp" \
    "$(gexec timeout 30 wget -q -O - http://10.0.2.2:8080/index.html)"
grep -q "GET /index.html" "$work/http.log" || { echo "FAIL: the server saw no request"; exit 1; }
ctl shutdown
wait_guest_exit
check "sbx-vmm exit after the second shutdown" 0 "$guest_rc"

# Guest 3: the default sandbox root filesystem (Debian 12), as sbx-api starts
# it: sbx-init writes resolv.conf into the new root; curl, the C library's
# resolver and python3 work.
IMAGE=$SBX_BUILD/images/rootfs.ext4
if [[ ! -f $IMAGE ]]; then
    echo "note: no $IMAGE, the Debian part is skipped"
    exit 0
fi
"$SBX_BUILD/bin/snapfs" --store "$work/store" import --level 1 "$IMAGE" debian
"$SBX_BUILD/bin/snapfs" --store "$work/store" overlay debian "$work/ovl"
start_guest 1 "sbx.root=/dev/vda $NET" --disk "store=$work/store,overlay=$work/ovl" \
    --net user,host-loopback=on -v
check "Debian: resolv.conf in the root disk" "nameserver 10.0.2.3" "$(gexec cat /etc/resolv.conf)"
check "Debian: getent hosts" "192.0.2.7" \
    "$(gexec getent ahostsv4 sbx-test.example | awk 'NR == 1 { print $1 }')"
check "Debian: curl" "hello over slirp" \
    "$(gexec curl -sS --max-time 30 http://10.0.2.2:8080/index.html)"
check "Debian: python3 urllib" "hello over slirp" \
    "$(gexec python3 -c 'import urllib.request as u; print(u.urlopen("http://10.0.2.2:8080/index.html", timeout=30).read().decode().strip())')"
t1=$SECONDS
check "Debian: 8 MiB download (sha256)" "$blob_sum" \
    "$(gexec sh -c 'curl -sS --max-time 300 http://10.0.2.2:8080/blob | sha256sum | cut -d" " -f1')"
echo "download: $((SECONDS - t1))s"
t1=$SECONDS
check "Debian: 8 MiB upload (sha256)" "$blob_sum" \
    "$(gexec python3 -c '
import socket, urllib.request as u
data = u.urlopen("http://10.0.2.2:8080/blob", timeout=300).read()
s = socket.create_connection(("10.0.2.2", 8081), timeout=300)
s.sendall(data)
s.shutdown(socket.SHUT_WR)
print(s.recv(100).decode())')"
echo "download and upload: $((SECONDS - t1))s"
ctl shutdown
wait_guest_exit
check "sbx-vmm exit after the third shutdown" 0 "$guest_rc"
grep "virtio-net:\|net:" "$SBX_OUT/vmm-$guest_n.log" || true
