# The guest agent over the real virtio-vsock of a guest under sbx-vmm: exec with
# output and exit code, stdin, a PTY (tty names a pty; the window size and a resize
# show in stty size), a 64 MiB file written and read back with the same sha256, a
# tunnel to a TCP server in the guest, then an orderly shutdown (sbx-vmm exits 0).
# timeout: 360
set -eu
source qemu-tests/lib/guest.sh
INITRD=$SBX_BUILD/images/initrd-busybox.cpio.gz
CTL=$SBX_BUILD/bin/sbx-agentctl
GUEST_MEM=512
start_guest 2 ""
trap 'kill $guest_pid 2>/dev/null || true' EXIT
ctl() { timeout 120 "$CTL" --vsock-uds "$VSOCK" "$@"; }
check() { # WHAT EXPECTED ACTUAL
    if [[ "$3" != "$2" ]]; then echo "FAIL: $1: expected '$2', got '$3'"; exit 1; fi
    echo "ok: $1"
}

check "echo" "hello from the guest" "$(ctl exec --no-stdin -- echo hello from the guest)"
set +e; ctl exec --no-stdin -- sh -c 'echo err >&2; exit 7' 2>/dev/null; rc=$?; set -e
check "exit code" 7 "$rc"
check "stdin" "$(printf 'line one\nline two')" "$(printf 'line one\nline two\n' | ctl exec -- cat)"
check "hostname" "sandbox" "$(ctl exec --no-stdin -- hostname)"

# PTY: run the client on a pseudo-terminal of its own (script), sized 33x77, then
# resized to 50x132 while the guest command runs.
cat > "$SBX_OUT/pty.sh" <<PTY
stty rows 33 cols 77
"$CTL" --vsock-uds "$VSOCK" exec --pty -- sh -c 'tty; stty size; sleep 8; stty size' < /dev/tty &
client=\$!
sleep 4
stty rows 50 cols 132
kill -WINCH \$client
wait \$client
PTY
script -qfec "bash $SBX_OUT/pty.sh" /dev/null < /dev/null | tr -d '\r' > "$SBX_OUT/pty.out" || true
cat "$SBX_OUT/pty.out"
grep -q '^/dev/pts/[0-9]' "$SBX_OUT/pty.out" || { echo "FAIL: tty is not a pty"; exit 1; }
grep -qx '33 77' "$SBX_OUT/pty.out" || { echo "FAIL: initial window size"; exit 1; }
grep -qx '50 132' "$SBX_OUT/pty.out" || { echo "FAIL: resize not seen"; exit 1; }
echo "ok: pty"

head -c 64M /dev/urandom > /tmp/blob
want=$(sha256sum < /tmp/blob | cut -d' ' -f1)
start=$(date +%s.%N)
ctl put /tmp/blob /tmp/blob
mid=$(date +%s.%N)
check "sha256 in the guest" "$want" "$(ctl exec --no-stdin -- sha256sum /tmp/blob | cut -d' ' -f1)"
ctl get /tmp/blob /tmp/blob.back
end=$(date +%s.%N)
check "sha256 read back" "$want" "$(sha256sum < /tmp/blob.back | cut -d' ' -f1)"
echo "64 MiB put $(awk "BEGIN{print $mid - $start}")s, sha256+get $(awk "BEGIN{print $end - $mid}")s"

ctl exec --no-stdin -- sh -c 'mkdir -p /www && echo tunnel-ok > /www/index.html && httpd -p 127.0.0.1:8080 -h /www'
reply=$( (printf 'GET /index.html HTTP/1.0\r\n\r\n'; sleep 5) | ctl tunnel 8080 | tr -d '\r')
echo "$reply" | grep -qx 'tunnel-ok' || { echo "FAIL: tunnel reply: $reply"; exit 1; }
echo "ok: tunnel"

ctl shutdown
wait_guest_exit
trap - EXIT
check "sbx-vmm exit after shutdown" 0 "$guest_rc"
