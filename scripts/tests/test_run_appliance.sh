#!/usr/bin/env bash
# `make run` on a machine without a usable /dev/kvm, driven as a user would: scripts/
# run-service (which execs scripts/run-appliance: the L1 appliance under QEMU TCG) on
# free loopback ports with a temporary --run-dir (the user's BUILD/run is never
# touched), then the real sbx CLI against the URL and key it printed: list; the default
# snapshot debian-12 becomes ready; create a sandbox; exec shows Debian 12; a file
# round trip with cp. SIGTERM powers the appliance off (the script exits 0, QEMU is
# gone); a restart on the same run dir still lists the sandbox and the snapshot, and
# the sandbox, started again, still has the file (the state disk survives); SIGINT
# to its process group (as Ctrl-C) stops it again.
# Where /dev/kvm is usable (VMX/SVM), `make run` runs sbx-api directly (covered by
# qemu-tests/t-sandbox-cli.sh); there this test forces the appliance with
# SBX_RUN_MODE=appliance, so it tests the same path on every machine.
# Takes about 2 to 3 minutes under TCG on 2 cores. Exit 0 pass, 1 fail, 77 skip.
# timeout: 1200
set -uo pipefail
REPO=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
BUILD=${SBX_BUILD:-$(cd "$(dirname "$0")/../.." && pwd)}
[[ -x $BUILD/bin/sbx ]] || BUILD=$REPO/build
SBX=$BUILD/bin/sbx
BOOT_LIMIT=${SBX_TEST_BOOT_LIMIT:-600}   # seconds for the URL and key to appear
STOP_LIMIT=90                             # seconds for a power-off (the script gives 60)

skip() { echo "SKIP: $*"; exit 77; }
command -v qemu-system-x86_64 > /dev/null || skip "needs qemu-system-x86_64"
for f in bin/sbx bin/sbx-api bin/sbx-vmm images/vmlinuz images/initrd.cpio.gz images/rootfs.ext4; do
    [[ -e $BUILD/$f ]] || skip "needs $BUILD/$f"
done

WORK=$(mktemp -d /tmp/sbx-test-run-appliance.XXXXXX)
RUN=$WORK/run
fails=0 pid=
t0=$SECONDS

say() { echo "== $* ($((SECONDS - t0)) s)"; }
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
check() { if [[ $3 == "$2" ]]; then ok "$1"; else bad "$1: expected [$2], got [$3]"; fi; }
check_has() { if [[ $3 == *"$2"* ]]; then ok "$1"; else bad "$1: [$2] not in [$3]"; fi; }
dump_logs() {
    local f
    for f in "$WORK"/service-*.err "$RUN"/appliance/test.log "$RUN"/appliance/qemu.log \
             "$RUN"/appliance/l1-console.log; do
        [[ -s $f ]] && { echo "--- $f"; tail -n 40 "$f"; }
    done
}
fatal() { bad "$*"; dump_logs; exit 1; }
qemu_pid() { cat "$RUN/appliance/qemu.pid" 2>/dev/null; }
# alive PID NEEDLE: PID runs and its command line holds NEEDLE (not a reused pid).
alive() { [[ -n $1 ]] && tr '\0' ' ' 2>/dev/null < "/proc/$1/cmdline" | grep -qF -- "$2"; }

cleanup() {
    local q i
    q=$(qemu_pid)
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        # Short: run-tests' timeout sends SIGKILL 10 s after SIGTERM; the state is scratch.
        kill -TERM "$pid" 2>/dev/null
        for ((i = 0; i < 12; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$pid" 2>/dev/null
    fi
    alive "$q" "$RUN/" && kill -KILL "$q" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Two free loopback ports (for sbx-api and sbx-router).
read -r API_PORT ROUTER_PORT < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')
export SBX_APPLIANCE_MEM=${SBX_APPLIANCE_MEM:-2G}
appliance_forced=0
if [[ -c /dev/kvm ]] && grep -qwE 'vmx|svm' /proc/cpuinfo; then
    export SBX_RUN_MODE=appliance appliance_forced=1
else
    unset SBX_RUN_MODE
fi

# start_service N: scripts/run-service in the background (its own process group under
# job control, so that SIGINT reaches it as Ctrl-C would); waits for URL and key.
start_service() {
    local n=$1 i
    set -m
    "$REPO/scripts/run-service" --build "$BUILD" --listen "127.0.0.1:$API_PORT" \
        --router-port "$ROUTER_PORT" --run-dir "$RUN" > "$WORK/service-$n.out" 2> "$WORK/service-$n.err" &
    pid=$!
    set +m
    for ((i = 0; i < BOOT_LIMIT; i++)); do
        grep -q '^SBX_API_KEY=' "$WORK/service-$n.out" && break
        kill -0 "$pid" 2>/dev/null || fatal "run-service exited before printing the URL and key"
        sleep 1
    done
    grep -q '^SBX_API_KEY=' "$WORK/service-$n.out" || fatal "no URL and key within $BOOT_LIMIT s"
    export SBX_API_URL SBX_API_KEY
    SBX_API_URL=$(sed -n 's/^SBX_API_URL=//p' "$WORK/service-$n.out")
    SBX_API_KEY=$(sed -n 's/^SBX_API_KEY=//p' "$WORK/service-$n.out")
    check "printed URL" "http://127.0.0.1:$API_PORT" "$SBX_API_URL"
    check "printed key is the run dir's" "$(cat "$RUN/api-key")" "$SBX_API_KEY"
    [[ $appliance_forced == 1 ]] ||
        check_has "no usable /dev/kvm: the appliance" "starting the appliance" "$(cat "$WORK/service-$n.err")"
}

# stop_service SIGNAL N: the script powers the appliance off and exits 0; QEMU is gone.
stop_service() {
    local sig=$1 n=$2 q i rc
    q=$(qemu_pid)
    alive "$q" "$RUN/" || bad "QEMU pid file names a running QEMU"
    # SIGINT as a terminal's Ctrl-C sends it: to the whole (foreground) process group.
    if [[ $sig == INT ]]; then kill -INT -- -"$pid"; else kill -"$sig" "$pid"; fi
    for ((i = 0; i < STOP_LIMIT * 2; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && fatal "run-service still running $STOP_LIMIT s after SIG$sig"
    wait "$pid"
    rc=$?
    pid=
    check "SIG$sig: run-service exits 0" 0 "$rc"
    check_has "SIG$sig: powered off, not killed" "run: appliance stopped" "$(cat "$WORK/service-$n.err")"
    alive "$q" "$RUN/" && bad "QEMU still running after SIG$sig" || ok "QEMU gone after SIG$sig"
    check "the job in the appliance ended cleanly" 0 "$(cat "$RUN/appliance/rc" 2>/dev/null)"
}

exec_ready() { # NAME: until a command runs in the sandbox (its agent answers)
    local i
    for ((i = 0; i < 60; i++)); do
        [[ $(timeout 30 "$SBX" exec "$1" -- echo ready 2>/dev/null) == ready ]] && return 0
        sleep 2
    done
    fatal "sandbox $1 never ran a command"
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

say "make run (scripts/run-service), run dir $RUN"
start_service 1
say "URL and key printed"
out=$("$SBX" list 2>&1) || fatal "sbx list: $out"
check "sbx list on a fresh appliance" 0 "$(echo "$out" | json 'len(d) if isinstance(d, list) else len(d["sandboxes"])')"

for ((i = 0; i < 420; i++)); do
    s=$("$SBX" snapshot get debian-12 2>/dev/null | json 'd["status"]' 2>/dev/null)
    [[ $s == ready || $s == failed ]] && break
    sleep 1
done
check "default snapshot debian-12" ready "$s"
[[ $s == ready ]] || fatal "snapshot: $("$SBX" snapshot get debian-12 2>&1)"
say "debian-12 ready"

out=$(timeout 300 "$SBX" create box1 --snapshot debian-12 --vcpus 1 --memory 512mb --wait 2>&1) ||
    fatal "create: $out"
exec_ready box1
say "box1 created"
osr=$(timeout 60 "$SBX" exec box1 -- cat /etc/os-release 2>&1)
check_has "exec: Debian" 'ID=debian' "$osr"
check_has "exec: version 12" 'VERSION_ID="12"' "$osr"

head -c 1000000 /dev/urandom > "$WORK/blob"
timeout 120 "$SBX" cp "$WORK/blob" box1:/root/blob > /dev/null || bad "cp to the sandbox"
timeout 120 "$SBX" cp box1:/root/blob "$WORK/blob.back" > /dev/null || bad "cp from the sandbox"
check "cp round trip" "$(sha256sum < "$WORK/blob")" "$(sha256sum < "$WORK/blob.back" 2>/dev/null)"
# Stopping the appliance is a power cut for the sandboxes: flush the file first.
timeout 60 "$SBX" exec box1 -- sync || bad "sync in the sandbox"
say "exec and cp done"

stop_service TERM 1
say "stopped"

start_service 2
say "restarted"
names=$("$SBX" list 2>&1 | json '" ".join(x["name"] for x in (d if isinstance(d, list) else d["sandboxes"]))')
check_has "box1 listed after a restart (state disk kept)" box1 "$names"
check "debian-12 still ready" ready "$("$SBX" snapshot get debian-12 2>/dev/null | json 'd["status"]' 2>/dev/null)"
check "box1 was stopped by the power-off" stopped "$("$SBX" get box1 2>/dev/null | json 'd["status"]' 2>/dev/null)"
timeout 300 "$SBX" start box1 --wait > /dev/null || bad "start box1 after the restart"
exec_ready box1
check "the sandbox's file kept over the restart" "$(sha256sum < "$WORK/blob")" \
    "$(timeout 60 "$SBX" exec box1 -- cat /root/blob | sha256sum)"
say "box1 runs again"
stop_service INT 2
say "stopped again"

[[ $fails -eq 0 ]] || { dump_logs; echo "$fails failed"; exit 1; }
echo "all passed in $((SECONDS - t0)) s"
