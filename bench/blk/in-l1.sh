# Runs inside L1 (see bench/blk/run): the same guest reads and writes through
# sbx-vmm (snapfs, io=uring and io=sync) and QEMU microvm (qcow2 over raw).
set -eu
source qemu-tests/lib/guest.sh
B=$SBX_BUILD
CTL=$B/bin/sbx-agentctl
RUNS=${BENCH_RUNS:-3}
w=/run/bench-blk
rm -rf "$w"; mkdir -p "$w"
cp -a "$BENCH_STORE" "$w/store"      # into L1's memory, like the raw image
cp --sparse=always "$B/images/rootfs.ext4" "$w/rootfs.ext4"
GUEST_MEM=512
READ='tar -C / -cf - usr | wc -c'
# 4 threads x 500 random 4 KiB O_DIRECT reads of /dev/vda: the device path alone.
RAND='python3 -c "
import mmap, os, random, threading
fd = os.open(\"/dev/vda\", os.O_RDONLY | os.O_DIRECT)
blocks = os.lseek(fd, 0, 2) // 4096
def work(seed):
    r, m = random.Random(seed), mmap.mmap(-1, 4096)
    for _ in range(500):
        os.preadv(fd, [m], r.randrange(blocks) * 4096)
ts = [threading.Thread(target=work, args=(s,)) for s in range(4)]
[t.start() for t in ts]
[t.join() for t in ts]
"'
WRITE='dd if=/dev/zero of=/root/w bs=1M count=64 conv=fsync 2>/dev/null; rm /root/w'
now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cleanup() { pkill -x socat 2>/dev/null; pkill -x qemu-system-x86_64 2>/dev/null; pkill -x sbx-vmm 2>/dev/null; }
trap 'rc=$?; set +e; cleanup; exit $rc' EXIT

# timed SOCKOPT SOCK CMD: prints the milliseconds CMD took in the guest.
timed() {
    local t0 t1
    t0=$(now)
    "$CTL" $1 "$2" exec --no-stdin -- sh -c "$3" > /dev/null
    t1=$(now)
    ms "$t0" "$t1"
}

declare -A rd wr rr
run_sbx() { # KIND(uring|sync) N
    rm -rf "$w/ovl"
    "$B/bin/snapfs" --store "$w/store" overlay debian "$w/ovl"
    start_guest 1 "sbx.root=/dev/vda" --disk "store=$w/store,overlay=$w/ovl,io=$1"
    rd[$1]+="$(timed --vsock-uds "$VSOCK" "$READ") "
    rr[$1]+="$(timed --vsock-uds "$VSOCK" "$RAND") "
    wr[$1]+="$(timed --vsock-uds "$VSOCK" "$WRITE") "
    "$CTL" --vsock-uds "$VSOCK" shutdown > /dev/null 2>&1 || true
    wait_guest_exit
}
run_qemu() { # N
    local sock=$w/q.sock cid=$(($1 + 2))
    rm -f "$w/q.qcow2" "$sock"
    qemu-img create -q -f qcow2 -b "$w/rootfs.ext4" -F raw "$w/q.qcow2"
    qemu-system-x86_64 -M microvm,rtc=off -enable-kvm -cpu host -smp 1 -m "$GUEST_MEM" -nodefaults \
        -no-user-config -display none -serial "file:$w/q.console" -kernel "$KERNEL" \
        -initrd "$INITRD" -append "$BASE_CMDLINE sbx.root=/dev/vda" -no-reboot \
        -drive "id=d0,file=$w/q.qcow2,if=none,format=qcow2,cache=writeback" \
        -device virtio-blk-device,drive=d0 -device vhost-vsock-device,guest-cid=$cid \
        > "$w/q.log" 2>&1 &
    local qpid=$!
    socat UNIX-LISTEN:$sock,fork VSOCK-CONNECT:$cid:52 2>/dev/null &
    local spid=$!
    until [[ -S $sock ]] && "$CTL" --unix "$sock" exec --no-stdin -- true > /dev/null 2>&1; do
        kill -0 $qpid 2>/dev/null || { echo "qemu died"; cat "$w/q.log"; exit 1; }
        sleep 0.2
    done
    rd[qemu]+="$(timed --unix "$sock" "$READ") "
    rr[qemu]+="$(timed --unix "$sock" "$RAND") "
    wr[qemu]+="$(timed --unix "$sock" "$WRITE") "
    "$CTL" --unix "$sock" shutdown > /dev/null 2>&1 || true
    wait $qpid 2>/dev/null || true
    kill $spid 2>/dev/null || true
}

for i in $(seq 1 "$RUNS"); do
    run_sbx uring "$i"
    run_sbx sync "$i"
    run_qemu "$i"
    last() { local a=($1); echo "${a[-1]}"; }
    echo "run $i: read /usr ms: uring $(last "${rd[uring]}") sync $(last "${rd[sync]}")" \
         "qemu $(last "${rd[qemu]}"); write 64 MiB+fsync ms: uring $(last "${wr[uring]}")" \
         "sync $(last "${wr[sync]}") qemu $(last "${wr[qemu]}")"
done
med() { printf '%s\n' $1 | median; }
echo "all runs (ms): read uring [${rd[uring]}] sync [${rd[sync]}] qemu [${rd[qemu]}]"
echo "all runs (ms): random 4K reads uring [${rr[uring]}] sync [${rr[sync]}] qemu [${rr[qemu]}]"
echo "all runs (ms): write uring [${wr[uring]}] sync [${wr[sync]}] qemu [${wr[qemu]}]"
ru=$(med "${rd[uring]}") rs=$(med "${rd[sync]}") rq=$(med "${rd[qemu]}")
xu=$(med "${rr[uring]}") xs=$(med "${rr[sync]}") xq=$(med "${rr[qemu]}")
wu=$(med "${wr[uring]}") ws=$(med "${wr[sync]}") wq=$(med "${wr[qemu]}")
ratio() { awk "BEGIN {printf \"%.2f\", $1 / $2}"; }
echo "median read /usr: sbx io=uring ${ru} ms, io=sync ${rs} ms, qemu qcow2/raw ${rq} ms;" \
     "ratio uring/qemu $(ratio "$ru" "$rq"), uring/sync $(ratio "$ru" "$rs") (lower is better)"
echo "median 2000 random 4 KiB direct reads (4 threads): sbx io=uring ${xu} ms, io=sync ${xs} ms," \
     "qemu ${xq} ms; ratio uring/qemu $(ratio "$xu" "$xq"), uring/sync $(ratio "$xu" "$xs")"
echo "median write 64 MiB + fsync: sbx io=uring ${wu} ms, io=sync ${ws} ms, qemu ${wq} ms;" \
     "ratio uring/qemu $(ratio "$wu" "$wq"), uring/sync $(ratio "$wu" "$ws")"
exit 0
