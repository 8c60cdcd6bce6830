# Runs inside L1 (see bench/vsock/run): the guest agent reached over sbx-vmm's
# virtio-vsock bridge, and over QEMU microvm's vhost-vsock with socat bridging a Unix
# socket to AF_VSOCK, with the same kernel, initramfs (sbx-init + busybox) and client.
set -eu
source qemu-tests/lib/guest.sh
INITRD=$SBX_BUILD/images/initrd-busybox.cpio.gz
CTL=$SBX_BUILD/bin/sbx-agentctl
RUNS=${BENCH_RUNS:-30}
MIB=${BENCH_MIB:-128}
mkdir -p /run/bench
now() { date +%s%N; }

measure() { # NAME CTL-ARGS...: prints exec round trip and stream throughput
    local name=$1 t0 t1 times=() rates=()
    shift
    for _ in $(seq 1 "$RUNS"); do
        t0=$(now); "$CTL" "$@" exec --no-stdin -- true 2>/dev/null; t1=$(now)
        times+=($(( (t1 - t0) / 1000 )))
    done
    for _ in 1 2 3; do
        t0=$(now)
        "$CTL" "$@" exec --no-stdin -- head -c $((MIB << 20)) /dev/zero 2>/dev/null | wc -c > /run/bench/bytes
        t1=$(now)
        [[ $(cat /run/bench/bytes) -eq $((MIB << 20)) ]] || { echo "$name: short stream"; exit 1; }
        rates+=($(awk "BEGIN {printf \"%.2f\", $((MIB << 20)) / (($t1 - $t0) / 1000)}"))
    done
    local rtt=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    local mbs=$(printf '%s\n' "${rates[@]}" | sort -g | awk '{a[NR]=$1} END {print a[2]}')
    echo "$name exec_rtt_us=$rtt stream_MBps=$mbs" | tee -a /run/bench/results
}

# sbx-vmm
GUEST_MEM=512
start_guest 1 ""
measure sbx-vmm --vsock-uds "$VSOCK"
"$CTL" --vsock-uds "$VSOCK" shutdown
wait_guest_exit

# QEMU microvm + vhost-vsock + socat
qconsole=$SBX_OUT/qemu-console.log
: > "$qconsole"
qemu-system-x86_64 -M microvm,rtc=off -enable-kvm -cpu host -smp 1 -m 512 -nodefaults \
    -no-user-config -display none -serial "file:$qconsole" -kernel "$KERNEL" -initrd "$INITRD" \
    -append "$BASE_CMDLINE" -device vhost-vsock-device,guest-cid=3 -no-reboot \
    > "$SBX_OUT/qemu.log" 2>&1 &
qpid=$!
for _ in $(seq 1 120); do grep -q 'sbx-init: ready' "$qconsole" && break; sleep 1; done
grep -q 'sbx-init: ready' "$qconsole" || { echo "qemu guest not ready"; cat "$SBX_OUT/qemu.log"; exit 1; }
socat UNIX-LISTEN:/run/bench/q.sock,fork VSOCK-CONNECT:3:52 &
spid=$!
for _ in $(seq 1 50); do [[ -S /run/bench/q.sock ]] && break; sleep 0.1; done
measure qemu-vhost-socat --unix /run/bench/q.sock
"$CTL" --unix /run/bench/q.sock shutdown || true
kill $spid 2>/dev/null || true
wait $qpid || true

awk '{for (i = 2; i <= NF; i++) {split($i, kv, "="); v[$1, kv[1]] = kv[2]}}
     END {printf "ratio sbx-vmm/qemu: exec round trip %.2f (lower is better), stream throughput %.2f (higher is better)\n",
          v["sbx-vmm", "exec_rtt_us"] / v["qemu-vhost-socat", "exec_rtt_us"],
          v["sbx-vmm", "stream_MBps"] / v["qemu-vhost-socat", "stream_MBps"]}' /run/bench/results
