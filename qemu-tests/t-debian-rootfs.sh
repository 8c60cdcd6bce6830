# The default sandbox root filesystem (build/images/rootfs.ext4, Debian 12 from
# images/build-rootfs) imported into a snapfs store and booted on one vCPU: sbx-init
# switches to it with the kernel mounts, hostname and loopback in place; python3
# runs through the agent with a sane environment; sshd started through the agent
# makes its own host keys and logs a client in over an agent tunnel; a file is
# written and synced, and power-off leaves the disk read-only (clean).
# timeout: 420
set -eu
source qemu-tests/lib/guest.sh
CTL=$SBX_BUILD/bin/sbx-agentctl
SNAPFS=$SBX_BUILD/bin/snapfs
IMAGE=$SBX_BUILD/images/rootfs.ext4
work=/run/sbx-tests/debian
if [[ ! -f $IMAGE ]]; then
    echo "SKIP: no $IMAGE (make $IMAGE builds it, as root with network)"
    exit 77
fi
rm -rf "$work"
mkdir -p "$work"
t0=$SECONDS
"$SNAPFS" --store "$work/store" import --level 1 "$IMAGE" debian
"$SNAPFS" --store "$work/store" overlay debian "$work/ovl"
echo "import and overlay: $((SECONDS - t0))s"
ctl() { timeout 120 "$CTL" --vsock-uds "$VSOCK" "$@"; }
run() { ctl exec --no-stdin -- "$@"; }
check() { # WHAT EXPECTED ACTUAL
    if [[ "$3" != "$2" ]]; then echo "FAIL: $1: expected '$2', got '$3'"; exit 1; fi
    echo "ok: $1"
}
check_match() { # WHAT REGEX ACTUAL
    if [[ ! "$3" =~ $2 ]]; then echo "FAIL: $1: '$3' does not match '$2'"; exit 1; fi
    echo "ok: $1 ($3)"
}

start_guest 1 "sbx.root=/dev/vda sbx.hostname=deb-1" --disk "store=$work/store,overlay=$work/ovl"
trap 'kill $guest_pid 2>/dev/null || true' EXIT
echo "ready after $((SECONDS - t0))s"

check "root is the disk" "/dev/vda ext4" "$(run awk '$2 == "/" { print $1, $3 }' /proc/mounts)"
check "kernel mounts in the new root" "/proc /sys /dev /dev/pts /dev/shm /run /tmp" \
    "$(run sh -c 'for m in /proc /sys /dev /dev/pts /dev/shm /run /tmp; do
        awk -v m="$m" '\''$2 == m { print m; exit }'\'' /proc/mounts; done' | tr '\n' ' ' | sed 's/ $//')"
check "Debian 12" "12" "$(run sh -c '. /etc/os-release; echo $VERSION_ID')"
check "hostname" "deb-1" "$(run hostname)"
check_match "loopback up" "UP" "$(run ip -o link show lo)"
check_match "python3 --version" "^Python 3\.11\.[0-9]+$" "$(run python3 --version)"
check "python3 runs code" "42 deb-1" "$(run python3 -c 'import socket; print(6 * 7, socket.gethostname())')"
check "environment" "HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PWD=/" \
    "$(run bash -c 'echo HOME=$HOME PATH=$PATH PWD=$PWD')"
check "/dev/fd (bash process substitution)" "via /dev/fd" "$(run bash -c 'cat <(echo via /dev/fd)')"
check "root's shell" "/bin/bash" "$(run getent passwd root | cut -d: -f7)"
check "no host keys in the image" "0" "$(run sh -c 'ls /etc/ssh/ssh_host_* 2>/dev/null | wc -l')"

# sshd as a sandbox would start it; its banner and a key login through the tunnel.
t1=$SECONDS
run sh -c 'ssh-keygen -A && mkdir -p /run/sshd && /usr/sbin/sshd'
echo "ssh-keygen -A and sshd: $((SECONDS - t1))s"
check_match "sshd banner through an agent tunnel" "^SSH-2\.0-OpenSSH_9\.2p1 Debian" \
    "$(ctl tunnel 22 < /dev/null | head -n 1 | tr -d '\r')"
ssh-keygen -q -t ed25519 -N '' -f "$work/id"
ctl mkdir -p /root/.ssh
ctl put "$work/id.pub" /root/.ssh/authorized_keys 0600
run sh -c 'cat /etc/ssh/ssh_host_ed25519_key.pub' | awk '{ print "[sandbox]:22", $1, $2 }' > "$work/known_hosts"
check "ssh login with the sandbox's own host key" "root@deb-1 Python 3.11" \
    "$(timeout 120 ssh -F /dev/null -i "$work/id" -o BatchMode=yes -o StrictHostKeyChecking=yes \
        -o UserKnownHostsFile="$work/known_hosts" -o HostKeyAlias="[sandbox]:22" \
        -o ProxyCommand="$CTL --vsock-uds $VSOCK tunnel 22" root@sandbox \
        'echo $(whoami)@$(hostname) $(python3 --version | cut -d. -f1,2)')"

run sh -c 'echo "written in the sandbox" > /root/note && sync'
check "file written" "written in the sandbox" "$(run cat /root/note)"
ctl shutdown
wait_guest_exit
trap - EXIT
check "sbx-vmm exit after shutdown" 0 "$guest_rc"
if grep -q "stays writable" "$console"; then
    echo "FAIL: root disk not made read-only before power-off"; grep "sbx-init" "$console"; exit 1
fi
"$SNAPFS" --store "$work/store" verify --overlay "$work/ovl"
# The disk as the guest left it: the file is there, and the file system is clean
# (no journal to replay), as sbx-init remounted it read-only before power-off.
"$SNAPFS" --store "$work/store" export --overlay "$work/ovl" "$work/after.raw"
check "file on the disk after power-off" "written in the sandbox" \
    "$(debugfs -R "cat /root/note" "$work/after.raw" 2>/dev/null)"
check "file system clean" "clean" \
    "$(dumpe2fs -h "$work/after.raw" 2>/dev/null | awk -F': *' '$1 == "Filesystem state" { print $2 }')"
if dumpe2fs -h "$work/after.raw" 2>/dev/null | grep -q needs_recovery; then
    echo "FAIL: the journal needs recovery"; exit 1
fi
e2fsck -fn "$work/after.raw"
echo "total $((SECONDS - t0))s"
