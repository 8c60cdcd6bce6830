# Runs inside L1 (see bench/api/run): create-to-first-exec latency of sbx (sbx-api +
# sbx-vmm, default Debian snapshot) beside QEMU microvm booting the same kernel,
# initramfs and rootfs (qcow2 overlay, vhost-vsock, guest agent reached through socat).
set -eu
source qemu-tests/lib/guest.sh
B=$SBX_BUILD
ROOTFS=$B/images/rootfs.ext4
CTL=$B/bin/sbx-agentctl
RUNS=${BENCH_RUNS:-3}
w=/run/bench-api
rm -rf "$w"; mkdir -p "$w/state"
echo bench-key > "$w/key"
export SBX_API_URL=http://127.0.0.1:18080 SBX_API_KEY=bench-key
now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

"$B/bin/sbx-api" --listen 127.0.0.1:18080 --state-dir "$w/state" --api-key-file "$w/key" \
    --vmm "$B/bin/sbx-vmm" --kernel "$KERNEL" --initrd "$INITRD" --cmdline "$BASE_CMDLINE" \
    --default-snapshot "$ROOTFS" > "$w/api.log" 2>&1 &
api=$!
cleanup() { kill $api 2>/dev/null; pkill -x socat 2>/dev/null; pkill -x qemu-system-x86_64 2>/dev/null; }
trap 'rc=$?; set +e; cleanup; exit $rc' EXIT
for _ in $(seq 1 600); do
    [[ $("$B/bin/sbx" snapshot get debian-12 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' 2>/dev/null) == ready ]] && break
    sleep 1
done

sbx_times=() qemu_times=()
for i in $(seq 1 "$RUNS"); do
    t0=$(now)
    # --disk 4: the snapshot's own size, as the peer's qcow2 overlay has (the default
    # 8 GiB disk would add sbx-init's online grow of the root to the measure).
    "$B/bin/sbx" create "b$i" --snapshot debian-12 --vcpus 1 --memory 512mb --disk 4 > /dev/null
    until "$B/bin/sbx" exec "b$i" -- true 2>/dev/null; do sleep 0.05; done
    t1=$(now)
    sbx_times+=($(ms "$t0" "$t1"))
    "$B/bin/sbx" delete "b$i" > /dev/null
    echo "run $i sbx create-to-first-exec $(ms "$t0" "$t1") ms"

    t0=$(now)
    qemu-img create -q -f qcow2 -b "$ROOTFS" -F raw "$w/q$i.qcow2"
    qemu-system-x86_64 -M microvm,rtc=off -enable-kvm -cpu host -smp 1 -m 512 -nodefaults \
        -no-user-config -display none -serial "file:$w/q$i.console" -kernel "$KERNEL" \
        -initrd "$INITRD" -append "$BASE_CMDLINE sbx.root=/dev/vda" -no-reboot \
        -drive "id=d0,file=$w/q$i.qcow2,if=none,format=qcow2" -device virtio-blk-device,drive=d0 \
        -device vhost-vsock-device,guest-cid=$((i + 2)) > "$w/q$i.log" 2>&1 &
    qpid=$!
    socat UNIX-LISTEN:$w/q$i.sock,fork VSOCK-CONNECT:$((i + 2)):52 2>/dev/null &
    spid=$!
    until [[ -S $w/q$i.sock ]] && "$CTL" --unix "$w/q$i.sock" exec --no-stdin -- true 2>/dev/null; do
        kill -0 $qpid 2>/dev/null || { echo "qemu died"; cat "$w/q$i.log"; exit 1; }
        sleep 0.05
    done
    t1=$(now)
    qemu_times+=($(ms "$t0" "$t1"))
    echo "run $i qemu-microvm create-to-first-exec $(ms "$t0" "$t1") ms"
    "$CTL" --unix "$w/q$i.sock" shutdown > /dev/null 2>&1 || true
    kill $spid 2>/dev/null || true
    wait $qpid 2>/dev/null || true
done
s=$(printf '%s\n' "${sbx_times[@]}" | median)
q=$(printf '%s\n' "${qemu_times[@]}" | median)
echo "median create-to-first-exec: sbx ${s} ms, qemu microvm script ${q} ms, ratio sbx/qemu $(awk "BEGIN {printf \"%.2f\", $s / $q}")"
exit 0
