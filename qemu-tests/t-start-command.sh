# A snapshot's start command in a real sandbox: sbx-api builds a snapshot from a
# small busybox tree with `sbx snapshot build --start-command`; a sandbox made from it
# (with a disk larger than the snapshot) runs the command at boot (a busybox httpd
# that answers inside the guest), shows its command id, and runs it again after an
# orderly stop and a start; the root file system grew to the disk.
# timeout: 600
set -u
source qemu-tests/lib/guest.sh
B=$SBX_BUILD
SBX=$B/bin/sbx
work=/run/sbx-tests/startcmd
state=$work/state
rm -rf "$work"
mkdir -p "$state" "$work/tree/srv"
busybox_tree "$work/tree"
echo "served by the start command" > "$work/tree/srv/index.html"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/api-key"
export SBX_API_KEY=$(cat "$work/api-key") SBX_API_URL=http://127.0.0.1:18090
fails=0 api_pid=

ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
check() { # WHAT EXPECTED ACTUAL
    if [[ $3 == "$2" ]]; then ok "$1"; else bad "$1: expected [$2], got [$3]"; fi
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
finish() {
    [[ $fails -eq 0 ]] && { echo "all passed"; exit 0; }
    echo "--- sbx-api log"; tail -n 40 "$work/api.log"
    for d in "$state"/sandboxes/*/; do
        [[ -d $d ]] && { echo "--- $d console.log"; tail -n 30 "$d/console.log"; }
    done
    echo "$fails failed"
    exit 1
}
trap '[[ -n $api_pid ]] && kill $api_pid 2>/dev/null; pkill -f "$state/sandboxes"; wait' EXIT

"$B/bin/sbx-api" --listen 127.0.0.1:18090 --state-dir "$state" --api-key-file "$work/api-key" \
    --vmm "$B/bin/sbx-vmm" --kernel "$KERNEL" --initrd "$INITRD" --cmdline "$BASE_CMDLINE" \
    > "$work/api.log" 2>&1 &
api_pid=$!
for ((i = 0; i < 100; i++)); do
    curl -fsS -m 2 "$SBX_API_URL/healthz" > /dev/null 2>&1 && break
    sleep 0.2
done

"$SBX" snapshot build tiny --source "$work/tree" --capacity 1 --wait \
    --start-command 'echo started > /tmp/started; exec httpd -f -p 8001 -h /srv' > /dev/null ||
    { bad "snapshot build"; finish; }
check "the snapshot keeps the command" "sh -c" \
    "$("$SBX" snapshot get tiny | json '" ".join(d["image_config"]["command"][:2])')"
"$SBX" create web --snapshot tiny --vcpus 1 --memory 256mb --disk 2 > /dev/null ||
    { bad "create"; finish; }

# served: the start command's httpd answers inside the guest
served() {
    for ((i = 0; i < 90; i++)); do
        out=$("$SBX" exec web -- wget -qO- http://127.0.0.1:8001/index.html 2>/dev/null) &&
            [[ -n $out ]] && { echo "$out"; return; }
        sleep 1
    done
}
check "the start command serves" "served by the start command" "$(served)"
check "its command id is shown" yes \
    "$("$SBX" get web | json '"yes" if d["start_command"]["command_id"] else "no"')"
size=$("$SBX" exec web -- df -m / | awk 'NR == 2 {print $2}')
[[ $size -gt 1500 ]] && ok "the root grew to the 2 GiB disk ($size MiB)" ||
    bad "the root is $size MiB on a 2 GiB disk"

"$SBX" exec web -- sh -c 'echo unsynced > /root/note'
"$SBX" stop web > /dev/null || bad "stop"
grep -q "did not take the power-off\|did not power off" "$work/api.log" && bad "stop not orderly"
check "no start command while stopped" None "$("$SBX" get web | json 'd["start_command"]')"
"$SBX" start web > /dev/null || bad "start"
check "served again after a start" "served by the start command" "$(served)"
check "an unsynced file kept by the orderly stop" unsynced "$("$SBX" exec web -- cat /root/note)"
finish
