"""Runs inside L1 (see bench/boot/run): boots the same kernel and initramfs N times
with sbx-vmm and with QEMU's microvm, alternating, and prints medians of the guest's
boot-to-init time (kernel uptime when sbx-init says ready), wall time from process
start to exit, and peak RSS of each VMM process."""
import os, re, statistics, subprocess, sys, time

build, out = os.environ["SBX_BUILD"], os.environ["SBX_OUT"]
n = int(os.environ.get("BENCH_RUNS", "5"))
kernel, initrd = f"{build}/images/vmlinuz", f"{build}/images/initrd.cpio.gz"
cmdline = "console=ttyS0 reboot=k panic=-1 quiet sbx.poweroff"

def sbx_vmm(console):
    return [f"{build}/bin/sbx-vmm", "--kernel", kernel, "--initrd", initrd, "--mem", "256",
            "--vcpus", "1", "--cmdline", cmdline, "--console", console]

def qemu_microvm(console):
    return ["qemu-system-x86_64", "-M", "microvm,rtc=off", "-enable-kvm", "-cpu", "host",
            "-smp", "1", "-m", "256", "-nodefaults", "-no-user-config", "-display", "none",
            "-serial", f"file:{console}", "-kernel", kernel, "-initrd", initrd,
            "-append", cmdline, "-no-reboot"]

def boot(make_cmd, name, i):
    console = f"{out}/{name}-{i}.log"
    t0 = time.monotonic()
    p = subprocess.Popen(make_cmd(console), stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    m = re.search(r"sbx-init: ready uptime=([0-9.]+)s", open(console, errors="replace").read())
    if status != 0 or not m:
        sys.exit(f"{name} run {i}: exit status {status}, ready line {'found' if m else 'missing'}")
    return float(m.group(1)), wall, usage.ru_maxrss / 1024.0

results = {"sbx-vmm": [], "qemu-microvm": []}
for i in range(n):
    for name, make_cmd in (("sbx-vmm", sbx_vmm), ("qemu-microvm", qemu_microvm)):
        r = boot(make_cmd, name, i)
        results[name].append(r)
        print(f"run {i} {name:13s} boot-to-init {r[0]:6.2f}s  wall {r[1]:6.2f}s  peak RSS {r[2]:6.1f} MiB", flush=True)

med = {k: [statistics.median(x[j] for x in v) for j in range(3)] for k, v in results.items()}
s, q = med["sbx-vmm"], med["qemu-microvm"]
print(f"median boot-to-init: sbx-vmm {s[0]:.2f}s, qemu microvm {q[0]:.2f}s, ratio sbx/qemu {s[0]/q[0]:.2f}")
print(f"median wall to exit: sbx-vmm {s[1]:.2f}s, qemu microvm {q[1]:.2f}s, ratio sbx/qemu {s[1]/q[1]:.2f}")
print(f"median peak RSS:     sbx-vmm {s[2]:.1f} MiB, qemu microvm {q[2]:.1f} MiB, ratio sbx/qemu {s[2]/q[2]:.2f}")
