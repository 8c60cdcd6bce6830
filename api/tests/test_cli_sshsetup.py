#!/usr/bin/env python3
"""sbx ssh-setup against the real sbx-api and guest agent (test_cli_dataplane's
set-up, whose "sandbox" is this host): run in a private mount namespace where
/root, /etc/ssh and /run are fresh tmpfs (the rest of /root bound back), so the
key install, ssh-keygen -A and the host key read go through the real one-shot
exec without touching this host. Needs root, unshare, and no /usr/sbin/sshd here
(it would really start); else exit 77."""
import os
import shlex
import subprocess
import sys
import tempfile

build = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(sys.argv[0]))))
driver = os.path.join(build, "tests", "api", "test_cli_dataplane")
if os.geteuid() != 0 or os.path.exists("/usr/sbin/sshd") or not os.access(driver, os.X_OK) \
        or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
    print("SKIP: needs root, unshare -m, %s and no /usr/sbin/sshd" % driver)
    sys.exit(77)
orig = tempfile.mkdtemp(prefix="sbx-cli-ns-")
script = """set -e
mount --make-rprivate /
mount --bind /root {orig}
mount -t tmpfs -o mode=0700 none /root
for e in {orig}/* {orig}/.[!.]*; do
    [ -e "$e" ] || continue
    n=/root/${{e##*/}}
    if [ -d "$e" ]; then mkdir "$n"; else : > "$n"; fi
    mount --bind "$e" "$n"
done
mount -t tmpfs none /etc/ssh
mount -t tmpfs none /run
SBX_CLI_NS=1 exec {driver}
""".format(orig=shlex.quote(orig), driver=shlex.quote(driver))
try:
    rc = subprocess.run(["unshare", "-m", "sh", "-c", script]).returncode
finally:
    os.rmdir(orig)
sys.exit(rc)
